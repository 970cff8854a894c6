// views/apikeys.js: the admins' service accounts (GET/POST/DELETE
// /admin/service-accounts): the API keys integrations such as a CRM use,
// each with its scopes, the start of its key, when it was last used; a
// form to make one (the key shown once) and revocation.

import { h, field, fill, toast, errorText, fmtAgo, plural, copyText } from '../dom.js';
import { enc } from '../api.js';

// SCOPES are the contract's Scope values with what each allows.
const SCOPES = [
  ['rooms:read', 'Read rooms, their timelines, members and steps'],
  ['rooms:write', 'Open and update rooms by the CRM\u2019s id'],
  ['export:read', 'Export a room\u2019s timeline (JSON lines)'],
  ['backup:read', 'Take a backup of the whole server (embedded store)'],
];

export function integrationsNav(current) {
  return h('nav', { class: 'subnav', 'aria-label': 'Integrations' },
    [['/admin/webhooks', 'Webhooks'], ['/admin/api-keys', 'API keys'], ['/admin/backup', 'Backup']].map(([href, label]) =>
      h('a', { href, class: ['subnav-link', href === current && 'is-current'], 'aria-current': href === current ? 'page' : null, text: label })));
}

export function apiKeysView(ctx) {
  ctx.setTitle('API keys');
  let destroyed = false;

  const status = h('p', { class: 'muted', role: 'status', text: 'Loading the API keys…' });
  const list = h('ul', { class: 'apikey-list' });
  const keyBox = h('div', { class: 'apikey-new', hidden: true });
  const name = h('input', { type: 'text', required: true, maxLength: 100, placeholder: 'Salesforce' });
  const boxes = SCOPES.map(([s]) => h('input', { type: 'checkbox', value: s, checked: s === 'rooms:read' }));

  const showKey = (a) => {
    keyBox.hidden = false;
    fill(keyBox,
      h('p', {}, h('strong', { text: `The key of ${a.name}` }), ', shown this once: keep it in the integration\u2019s secret store.'),
      h('p', {}, h('code', { class: 'secret', dataset: { fk: 'api-key' }, text: a.key }), ' ',
        h('button', { type: 'button', class: 'ghost', text: 'Copy', on: { click: () => copyText(a.key) } })),
      h('p', { class: 'muted small' }, 'Send it as ', h('code', { text: 'Authorization: Bearer drk_…' }), '.'));
  };

  const form = h('form', {
    class: 'panel apikey-form',
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        const scopes = boxes.filter((b) => b.checked).map((b) => b.value);
        if (!scopes.length) {
          toast('Choose at least one scope.', { kind: 'error' });
          return;
        }
        try {
          const a = await ctx.api.post('/admin/service-accounts', { name: name.value.trim(), scopes });
          showKey(a);
          name.value = '';
          await load();
        } catch (err) {
          toast(errorText(err), { kind: 'error' });
        }
      },
    },
  },
  h('h2', { text: 'Make an API key' }),
  field('Name', name, 'What uses it: the integration, the system.'),
  h('fieldset', { class: 'scopes' }, h('legend', { text: 'Scopes' }),
    SCOPES.map(([s, what], i) => h('label', { class: 'check' }, boxes[i], ' ', h('code', { text: s }), h('span', { class: 'muted small', text: ` ${what}` })))),
  h('button', { type: 'submit', text: 'Make key' }));

  const row = (a) => h('li', { class: ['apikey', a.revoked_at && 'is-revoked'], dataset: { account: a.id } },
    h('div', {},
      h('strong', { text: a.name }), ' ',
      h('code', { text: `${a.key_start}…` }),
      h('span', { class: 'muted small', text: ` · ${a.scopes.join(', ')}` })),
    h('p', { class: 'muted small', dataset: { fk: 'used' },
      text: `Made ${fmtAgo(a.created_at)} · ${a.last_used_at ? `last used ${fmtAgo(a.last_used_at)}` : 'never used'}` }),
    a.revoked_at
      ? h('p', { class: 'warn-text', dataset: { fk: 'revoked' }, text: `Revoked ${fmtAgo(a.revoked_at)}` })
      : h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'ghost danger', text: 'Revoke',
          on: { click: () => { if (confirm(`Revoke the key of ${a.name}? Every request with it is refused from now on.`)) revoke(a); } } })));

  async function revoke(a) {
    try {
      await ctx.api.del(`/admin/service-accounts/${enc(a.id)}`);
      await load();
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  }

  async function load() {
    try {
      const r = await ctx.api.get('/admin/service-accounts');
      if (destroyed) return;
      const live = r.items.filter((a) => !a.revoked_at).length;
      status.textContent = `${plural(live, 'key')} in use${r.items.length > live ? `, ${r.items.length - live} revoked` : ''}`;
      // Keys in use first, then revoked ones; newest first within each.
      const items = [...r.items].sort((x, y) => (!!x.revoked_at - !!y.revoked_at) || y.created_at.localeCompare(x.created_at));
      fill(list, items.map(row));
    } catch (err) {
      status.textContent = errorText(err);
    }
  }
  load();

  const el = h('div', { class: 'page apikeys' },
    h('h1', { text: 'API keys' }),
    integrationsNav('/admin/api-keys'),
    h('p', { class: 'muted', text: 'Keys of service accounts, for integrations that call the API: a CRM opening rooms, an export job.' }),
    keyBox, status, list, form);
  return { el, destroy: () => { destroyed = true; } };
}
