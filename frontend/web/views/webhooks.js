// views/webhooks.js: the admins' webhook endpoints (GET/POST/PATCH/DELETE
// /admin/webhooks): the list with each endpoint's state, a form to add
// one (its secret shown once), pause and resume, a new secret, delete,
// and the delivery log of the one opened.

import { h, field, fill, toast, errorText, fmtAgo, plural, copyText } from '../dom.js';
import { enc } from '../api.js';
import { integrationsNav } from './apikeys.js';

export function webhooksView(ctx) {
  ctx.setTitle('Webhooks');
  let destroyed = false;
  let open = ''; // the endpoint whose log is shown

  const status = h('p', { class: 'muted', role: 'status', text: 'Loading the endpoints…' });
  const list = h('ul', { class: 'webhook-list' });
  const log = h('section', { class: 'webhook-log', 'aria-live': 'polite' });
  const secretBox = h('div', { class: 'webhook-secret', hidden: true });

  const url = h('input', { type: 'url', required: true, placeholder: 'https://crm.example.com/dealroom/events', maxLength: 2000 });
  const events = h('input', { type: 'text', placeholder: 'message.posted, task.updated (empty: all)' });
  const tags = h('input', { type: 'text', placeholder: 'emea, enterprise (empty: every room)' });
  const internal = h('input', { type: 'checkbox' });
  const words = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

  const showSecret = (e, secret) => {
    secretBox.hidden = false;
    fill(secretBox,
      h('p', {}, h('strong', { text: 'The secret of ' }), h('code', { text: e.url }), ', shown this once:'),
      h('p', {}, h('code', { class: 'secret', dataset: { fk: 'webhook-secret' }, text: secret }), ' ',
        h('button', { type: 'button', class: 'ghost', text: 'Copy', on: { click: () => copyText(secret) } })));
  };

  const form = h('form', {
    class: 'panel webhook-form',
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        try {
          const e = await ctx.api.post('/admin/webhooks', {
            url: url.value.trim(), events: words(events.value), room_tags: words(tags.value), internal: internal.checked,
          });
          showSecret(e, e.secret);
          url.value = events.value = tags.value = '';
          internal.checked = false;
          await load();
        } catch (err) {
          toast(errorText(err), { kind: 'error' });
        }
      },
    },
  },
  h('h2', { text: 'Add an endpoint' }),
  field('URL', url, 'https only; private and loopback addresses are refused.'),
  field('Event types', events),
  field('Rooms tagged', tags),
  h('label', { class: 'check' }, internal, ' Send internal (staff-only) events too'),
  h('button', { type: 'submit', text: 'Add endpoint' }));

  const act = async (fn) => {
    try {
      await fn();
      await load();
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  };

  const row = (e) => h('li', { class: ['webhook', e.paused && 'is-paused'], dataset: { webhook: e.id } },
    h('div', {},
      h('code', { text: e.url }),
      h('span', { class: 'muted small', text: ` · ${e.events.length ? e.events.join(', ') : 'all events'} · ${e.room_tags.length ? 'rooms tagged ' + e.room_tags.join(', ') : 'every room'}${e.internal ? ' · internal too' : ''}` })),
    e.paused ? h('p', { class: 'warn-text', dataset: { fk: 'paused' }, text: e.paused_reason ? `Paused by the server: ${e.paused_reason}` : 'Paused' }) : null,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'ghost', text: e.paused ? 'Resume' : 'Pause',
        on: { click: () => act(() => ctx.api.patch(`/admin/webhooks/${enc(e.id)}`, { paused: !e.paused })) } }),
      h('button', { type: 'button', class: 'ghost', text: 'Deliveries', on: { click: () => { open = e.id; showLog(); } } }),
      h('button', { type: 'button', class: 'ghost', text: 'New secret',
        on: { click: () => act(async () => { const r = await ctx.api.post(`/admin/webhooks/${enc(e.id)}/secret`); showSecret(r, r.secret); }) } }),
      h('button', { type: 'button', class: 'ghost danger', text: 'Delete',
        on: { click: () => { if (confirm(`Delete the endpoint ${e.url} and its delivery log?`)) act(() => ctx.api.del(`/admin/webhooks/${enc(e.id)}`)); } } })));

  async function showLog() {
    if (!open) {
      log.replaceChildren();
      return;
    }
    try {
      const r = await ctx.api.get(`/admin/webhooks/${enc(open)}/deliveries`, { limit: 50 });
      if (destroyed) return;
      fill(log, h('h2', { text: 'Deliveries' }),
        r.items.length ? h('table', { class: 'table' },
          h('thead', {}, h('tr', {}, ['Event', 'Room', 'Seq', 'State', 'Status', 'Latency', 'Attempts', 'Last error', 'When'].map((t) => h('th', { text: t })))),
          h('tbody', {}, r.items.map((d) => h('tr', { dataset: { delivery: d.id } },
            h('td', { text: d.type }), h('td', { text: d.room_id }), h('td', { text: String(d.seq) }),
            h('td', { text: d.state }), h('td', { text: d.status ? String(d.status) : '—' }),
            h('td', { text: `${d.latency_ms} ms` }), h('td', { text: String(d.attempts) }),
            h('td', { text: d.last_error || '' }), h('td', { text: fmtAgo(d.at) })))))
          : h('p', { class: 'muted', text: 'No delivery yet.' }));
    } catch (err) {
      fill(log, h('p', { class: 'warn-text', text: errorText(err) }));
    }
  }

  async function load() {
    try {
      const r = await ctx.api.get('/admin/webhooks');
      if (destroyed) return;
      status.textContent = plural(r.items.length, 'endpoint');
      fill(list, r.items.map(row));
      if (open && !r.items.some((e) => e.id === open)) open = '';
      showLog();
    } catch (err) {
      status.textContent = errorText(err);
    }
  }
  load();

  const el = h('div', { class: 'page webhooks' },
    h('h1', { text: 'Webhooks' }),
    integrationsNav('/admin/webhooks'),
    h('p', { class: 'muted', text: 'Endpoints that receive the rooms\u2019 events, signed per Standard Webhooks.' }),
    secretBox, status, list, form, log);
  return { el, destroy: () => { destroyed = true; } };
}
