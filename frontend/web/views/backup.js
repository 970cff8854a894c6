// views/backup.js: the admins' backup of the embedded store (GET
// /admin/backup): a link that downloads it, taken while the server runs
// (the browser saves it as it arrives, however big), and how to restore
// one.

import { h } from '../dom.js';
import { integrationsNav } from './apikeys.js';

export function backupView(ctx) {
  ctx.setTitle('Backup');
  const el = h('div', { class: 'page backup' },
    h('h1', { text: 'Backup' }),
    integrationsNav('/admin/backup'),
    h('div', { class: 'panel' },
      h('p', { text: 'A backup of everything the server keeps, taken while it goes on serving: the rooms with their whole history, and the attachments\u2019 files, as one tar file.' }),
      h('p', {}, h('a', { href: '/api/v1/admin/backup', class: 'button', download: '', text: 'Download a backup' })),
      h('p', { class: 'muted small' },
        'To restore one: stop the server, extract the file into an empty data directory (',
        h('code', { text: 'tar -xf dealroom-backup-\u2026.tar -C dealroom-data' }),
        '), put back the server\u2019s ', h('code', { text: 'jwt-secret' }),
        ' (it is not in a backup), and start it. For backups on a schedule, an API key with ',
        h('code', { text: 'backup:read' }), ' and ', h('code', { text: 'curl' }), ' do the same.'),
      h('p', { class: 'muted small', text: 'A server that keeps its data in MongoDB has no backup here: back MongoDB up with its own tools.' })));
  return { el, destroy: () => {} };
}
