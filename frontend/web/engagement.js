// engagement.js: what the server counts of people's visits to a room
// (GET /rooms/{room}/engagement), shown openly: the staff's panel, the
// customer's own record with the statement of what is recorded, the
// signal on room and pipeline cards, and "seen by" on files.

import { h, fill, uid, fmtAgo, fmtDateTime, errorText, plural } from './dom.js';
import { enc } from './api.js';

export const SIGNALS = {
  rising: { label: 'Rising', hint: 'The customer’s side came more this week than the week before.' },
  steady: { label: 'Steady', hint: 'The customer’s side came about as often as the week before.' },
  cooling: { label: 'Cooling', hint: 'The customer’s side came less this week than the week before.' },
  silent: { label: 'Silent', hint: 'Nobody from the customer’s side came in the last two weeks.' },
};

/** signalBadge shows a room's engagement signal; null when there is none (customers get none). */
export function signalBadge(signal) {
  const s = SIGNALS[signal];
  if (!s) return null;
  return h('span', { class: ['badge', 'signal', `signal-${signal}`], title: s.hint, text: `Engagement: ${s.label}` });
}

const DEVICE_WORDS = { desktop: 'desktop', phone: 'phone', tablet: 'tablet', other: 'other device' };

function devicesText(devices) {
  const parts = Object.entries(devices || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${n} on ${DEVICE_WORDS[k] || k}`);
  const used = Object.entries(devices || {}).filter(([, n]) => n === 0).map(([k]) => DEVICE_WORDS[k] || k);
  return [...parts, ...used.map((k) => `also ${k}`)].join(', ') || '—';
}

function timeText(seconds) {
  const s = Math.round(seconds || 0);
  if (s < 60) return s ? `${s} s` : '—';
  const m = Math.round(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function when(iso) {
  return iso ? h('time', { dateTime: iso, title: fmtDateTime(iso), text: fmtAgo(iso) }) : h('span', { class: 'muted', text: 'never' });
}

function opensText(x) {
  return [x.downloads ? plural(x.downloads, 'download') : '', x.views ? plural(x.views, 'view') : ''].filter(Boolean).join(', ');
}

/**
 * engagementPanel is the room's Engagement tab: for staff the room's
 * figures; for a customer (or when the server says the figures are not
 * theirs) what is recorded about them.
 */
export function engagementPanel(ctx, session) {
  const st = session.state;
  const headingId = uid('h');
  const heading = h('h2', { id: headingId, text: 'Engagement' });
  const status = h('p', { class: 'muted', role: 'status', text: 'Loading…' });
  const body = h('div', { class: 'engagement' });
  const refresh = h('button', { type: 'button', class: 'ghost small', text: 'Refresh', on: { click: () => load(true) } });
  const el = h('section', { class: 'panel', 'aria-labelledby': headingId },
    h('div', { class: 'panel-head' }, heading, refresh), status, body);
  let loadedAt = 0;
  let busy = false;
  let mine = session.me.kind !== 'staff';
  const base = `/rooms/${enc(session.id)}`;

  const renderStaff = (e) => {
    heading.textContent = 'Engagement';
    const people = [...e.people].sort((a, b) => (a.side === b.side ? (b.visits - a.visits) || a.name.localeCompare(b.name) : a.side === 'customer' ? -1 : 1));
    const names = (id) => st.name(id);
    fill(body,
      h('p', { class: 'engagement-signal' }, signalBadge(e.signal), ' ', h('span', { class: 'muted small', text: SIGNALS[e.signal]?.hint || '' })),
      h('h3', { text: 'People' }),
      h('table', { class: 'engagement-people' },
        h('thead', {}, h('tr', {}, ['Who', 'Visits', 'Devices', 'First visit', 'Last visit', 'Time in the room'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, people.map((p) => h('tr', { class: `side-${p.side}`, dataset: { user: p.user_id } },
          h('th', { scope: 'row' }, h('span', { text: p.name }), h('span', { class: 'muted small', text: p.side === 'customer' ? ' · customer' : ' · staff' })),
          h('td', { class: 'num', text: String(p.visits) }),
          h('td', { text: devicesText(p.devices) }),
          h('td', {}, when(p.first_visit_at)),
          h('td', {}, when(p.last_visit_at)),
          h('td', { class: 'num', text: timeText(p.seconds) }))))),
      h('h3', { text: 'Files' }),
      e.files.length ? h('ul', { class: 'engagement-files' }, e.files.map((f) => h('li', { dataset: { attachment: f.attachment_id } },
        h('strong', { text: f.name || 'A file' }), h('span', { class: 'muted', text: ` · ${opensText(f)}` }),
        h('ul', { class: 'engagement-by' }, f.by.map((b) => h('li', {},
          h('span', { text: names(b.user_id) }), h('span', { class: 'muted small', text: ` · ${opensText(b)} · last ` }), when(b.last_at)))))))
        : h('p', { class: 'empty small', text: 'Nobody has opened a file yet.' }),
      h('p', { class: 'muted small', text: 'Counted from what the server sees: the room open and in view, and files opened. No tracking pixels. The customer is told what is recorded and sees their own record.' }));
  };

  const renderMine = (m) => {
    heading.textContent = 'Your visits';
    const p = m.person;
    fill(body,
      h('div', { class: 'callout engagement-statement' }, h('h3', { text: 'What is recorded about you' }), h('p', { text: m.statement })),
      h('h3', { text: 'Your record in this room' }),
      h('dl', { class: 'engagement-mine' },
        h('dt', { text: 'Visits' }), h('dd', { text: String(p.visits) }),
        h('dt', { text: 'Devices' }), h('dd', { text: devicesText(p.devices) }),
        h('dt', { text: 'First visit' }), h('dd', {}, when(p.first_visit_at)),
        h('dt', { text: 'Last visit' }), h('dd', {}, when(p.last_visit_at)),
        h('dt', { text: 'Time in the room' }), h('dd', { text: timeText(p.seconds) })),
      h('h3', { text: 'Files you opened' }),
      m.files.length ? h('ul', { class: 'engagement-files' }, m.files.map((f) => h('li', {},
        h('span', { text: st.attachments.get(f.attachment_id)?.name || 'A file' }), h('span', { class: 'muted small', text: ` · ${opensText(f)} · last ` }), when(f.last_at))))
        : h('p', { class: 'empty small', text: 'None yet.' }));
  };

  const load = async (force) => {
    if (busy || (!force && Date.now() - loadedAt < 10000)) return;
    busy = true;
    try {
      if (!mine) {
        try {
          renderStaff(await session.api.get(`${base}/engagement`));
        } catch (err) {
          if (err.status !== 403) throw err;
          mine = true; // a staff token on a customer's membership
        }
      }
      if (mine) renderMine(await session.api.get(`${base}/engagement/me`));
      status.textContent = '';
      loadedAt = Date.now();
    } catch (err) {
      status.textContent = errorText(err);
    } finally {
      busy = false;
    }
  };
  return { el, update: () => load(false) };
}

/**
 * fileSeen keeps "seen by" of the room's files (GET /rooms/{room}/file-reads):
 * names of the members who opened each, other than its uploader and this
 * user; onChange is called when it changed. Refreshed at most every 5 s.
 */
export function fileSeen(session, onChange) {
  let by = new Map();
  let sig = '';
  let at = 0;
  let busy = false;
  const refresh = async () => {
    if (busy || Date.now() - at < 5000) return;
    busy = true;
    at = Date.now();
    try {
      const res = await session.api.get(`/rooms/${enc(session.id)}/file-reads`);
      by = new Map(res.items.map((f) => [f.attachment_id, f.seen_by.map((s) => s.user_id)]));
      const next = JSON.stringify([...by]);
      if (next !== sig) {
        sig = next;
        onChange();
      }
    } catch {
      // "seen by" is a nicety: the list stays as it was
    } finally {
      busy = false;
    }
  };
  return {
    refresh,
    /** names returns who opened the attachment, sorted. */
    names(att) {
      const st = session.state;
      return (by.get(att.id) || []).filter((u) => u !== att.uploaded_by && u !== st.me.user_id && st.members.has(u))
        .map((u) => st.name(u)).sort();
    },
  };
}
