// views/rooms.js: the rooms I am in (every room, for managers), and
// opening a new one from a plan template.

import { h, field, icon, toast, errorText, fmtAgo, fmtMoney, stageLabel, WINDOWS, WINDOW_ORDER, STAGES, daysSince, fill } from '../dom.js';
import { enc, newKey } from '../api.js';
import { signalBadge } from '../engagement.js';

export function roomsView(ctx) {
  const me = ctx.me;
  const staff = me.kind === 'staff';
  const oversees = staff && (me.role === 'manager' || me.role === 'admin');
  ctx.setTitle(oversees ? 'All rooms' : 'Your rooms');
  let rooms = null;

  const list = h('ul', { class: 'room-list' });
  const status = h('p', { class: 'muted', role: 'status', text: 'Loading rooms…' });
  const search = h('input', { type: 'search', placeholder: 'Name or company', autocomplete: 'off' });
  const stage = h('select', {}, h('option', { value: '', text: 'Every stage' }), Object.entries(STAGES).map(([v, l]) => h('option', { value: v, text: l })));
  search.addEventListener('input', () => render());
  stage.addEventListener('change', () => render());

  // Opening a room.
  const name = h('input', { type: 'text', required: true, maxLength: 200, placeholder: 'e.g. Acme – platform rollout', autocomplete: 'off' });
  const company = h('input', { type: 'text', required: true, maxLength: 200, placeholder: 'Acme Inc.', autocomplete: 'organization' });
  const template = h('select', {}, h('option', { value: 'tpl_standard', text: 'Standard mutual action plan' }), h('option', { value: '', text: 'Empty plan' }));
  const closeWin = h('select', {}, WINDOW_ORDER.map((w) => h('option', { value: w, text: WINDOWS[w] })));
  closeWin.value = 'unknown';
  const value = h('input', { type: 'number', min: 0, step: 'any', inputMode: 'decimal', placeholder: '50000' });
  const currency = h('input', { type: 'text', maxLength: 3, placeholder: 'EUR', pattern: '[A-Za-z]{3}', autocapitalize: 'characters' });
  const create = h('button', { type: 'submit', class: 'primary' }, icon('plus'), 'Create room');
  const createForm = h('form', { class: 'card room-new', 'aria-labelledby': 'new-room-h' },
    h('h2', { id: 'new-room-h', text: 'Open a room for a deal' }),
    h('div', { class: 'grid-2' }, field('Room name', name), field('Customer company', company)),
    h('div', { class: 'grid-2' }, field('Start from', template, 'A plan you can change: steps for both sides, from discovery to signature.'), field('Can be signed', closeWin)),
    h('div', { class: 'grid-2' }, field('Deal value (optional)', value), field('Currency', currency)),
    h('div', { class: 'form-end' }, create));
  const newKeyFor = { key: newKey() };
  createForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!createForm.checkValidity()) {
      createForm.reportValidity();
      return;
    }
    const draft = { name: name.value.trim(), company: company.value.trim(), close_window: closeWin.value };
    if (template.value) draft.template = template.value;
    if (value.value !== '') draft.value = Number(value.value);
    if (currency.value.trim()) draft.currency = currency.value.trim().toUpperCase();
    create.disabled = true;
    try {
      const room = await ctx.api.post('/rooms', draft, newKeyFor.key);
      newKeyFor.key = newKey();
      ctx.navigate(`/room/${enc(room.id)}`);
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    } finally {
      create.disabled = false;
    }
  });
  const toggle = h('button', { type: 'button', class: 'primary', 'aria-expanded': 'false' }, icon('plus'), 'New room');
  toggle.addEventListener('click', () => {
    const open = createForm.hidden;
    createForm.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) name.focus();
  });
  createForm.hidden = true;

  const card = (r) => {
    const quiet = staff && !['won', 'lost'].includes(r.stage) && daysSince(r.last_customer_activity_at || r.created_at) > 14;
    return h('li', {},
      h('a', { class: 'room-card', href: `/room/${enc(r.id)}` },
        h('span', { class: 'room-card-main' },
          h('strong', { class: 'room-card-name' }, r.name, unreadBadge(r.unread)),
          h('span', { class: 'muted', text: r.company })),
        h('span', { class: 'room-card-meta' },
          h('span', { class: ['stage-badge', `stage-${r.stage}`], text: stageLabel(r.stage) }),
          staff ? signalBadge(r.engagement) : null,
          staff && r.close_window && r.close_window !== 'unknown' ? h('span', { class: 'badge', text: `Sign: ${WINDOWS[r.close_window]}` }) : null,
          staff && r.value !== null && r.value !== undefined ? h('span', { class: 'badge', text: fmtMoney(r.value, r.currency) }) : null,
          staff ? h('span', { class: ['muted', 'small', quiet && 'warn-text'], text: r.last_customer_activity_at ? `Customer active ${fmtAgo(r.last_customer_activity_at)}` : 'No customer activity yet' })
            : h('span', { class: 'muted small', text: `Opened ${fmtAgo(r.created_at)}` }))));
  };

  const render = () => {
    if (!rooms) return;
    const q = search.value.trim().toLowerCase();
    const shown = rooms.filter((r) => (!stage.value || r.stage === stage.value) &&
      (!q || r.name.toLowerCase().includes(q) || r.company.toLowerCase().includes(q)));
    fill(list, ...shown.map(card));
    readAll.hidden = !rooms.some((r) => r.unread && r.unread.count > 0);
    if (!rooms.length) {
      fill(status, staff
        ? h('span', {}, h('strong', { text: 'No rooms yet. ' }), 'Open the first one: give it the deal’s name and the customer’s company; it starts with a standard plan you can change. Then invite the customer from the room’s People tab.')
        : h('span', { text: 'You are not in any room yet. Open the invite link you were sent to join one.' }));
      if (staff) {
        createForm.hidden = false;
        toggle.setAttribute('aria-expanded', 'true');
      }
    } else {
      status.textContent = shown.length ? '' : 'No room matches.';
    }
  };

  // Mark all read: every room's marker to its head, and the inbox.
  const readAll = h('button', { type: 'button', class: 'ghost', text: 'Mark all read', hidden: true });
  readAll.addEventListener('click', async () => {
    readAll.disabled = true;
    try {
      await ctx.api.post('/me/read-all');
      for (const r of rooms || []) if (r.unread) r.unread = { ...r.unread, count: 0, more: false };
      render();
      toast('Everything is marked read.');
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    } finally {
      readAll.disabled = false;
    }
  });

  const el = h('div', { class: 'page rooms' },
    h('div', { class: 'page-head' },
      h('h1', { text: oversees ? 'All rooms' : 'Your rooms' }),
      readAll,
      staff ? toggle : null),
    staff ? createForm : null,
    h('div', { class: 'filters' }, field('Search', search), staff ? field('Stage', stage) : null),
    status, list);

  (async () => {
    try {
      rooms = await ctx.api.all('/rooms', { limit: 200 });
      if (staff) {
        // A room can also start from another room's plan: a worked example.
        const examples = h('optgroup', { label: 'Copy the plan of a room' },
          rooms.slice(0, 50).map((r) => h('option', { value: r.id, text: r.name })));
        if (rooms.length) template.append(examples);
      }
      render();
      if (!rooms.length && staff) name.focus();
    } catch (err) {
      status.textContent = errorText(err);
    }
  })();
  return { el };
}

/** unreadBadge shows how many events of a room this user has not seen ("99+" past that). */
function unreadBadge(u) {
  if (!u || !u.count) return null;
  const text = u.more || u.count > 99 ? '99+' : String(u.count);
  return h('span', { class: 'badge unread', title: 'Not seen yet', 'aria-label': `${text} unread`, text });
}
