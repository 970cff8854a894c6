// views/pipeline.js: the manager's view across rooms: deals by stage or by
// when they can be signed, overdue next steps, rooms where the customer
// went quiet, and assigning a next step to anyone in a room from here.
// One request (GET /pipeline) brings it all: the cards with their next
// step, plan health and forecast slips, the overdue steps and the quiet
// rooms.

import {
  h, field, icon, uid, toast, errorText, fmtAgo, fmtMoney, fmtDay, stageLabel, dueInfo, addDays, todayISO,
  WINDOWS, WINDOW_ORDER, daysSince, plural, STAGES, fill,
} from '../dom.js';
import { enc, newKey } from '../api.js';
import { sideText, planHealth } from '../components.js';
import { signalBadge } from '../engagement.js';

const CLOSED = ['won', 'lost'];

/** closeSlips says how often a room's close window slid, or nothing. */
function closeSlips(room) {
  const n = room.forecast?.slips || 0;
  return n ? h('span', { class: 'flag flag-slipped', dataset: { fk: 'close-slips' }, title: `Close by ${room.forecast.close_by || 'unknown'}`, text: `Close slid ${n}×` }) : null;
}

export function pipelineView(ctx) {
  ctx.setTitle('Pipeline');
  let groupBy = localStorage.getItem('dealroom.pipelineGroup') || 'stage';
  let quietDays = Number(localStorage.getItem('dealroom.quietDays') || 14);
  let data = null; // GET /pipeline: {cards, overdue, quiet, quiet_days}
  let destroyed = false;
  let reloadTimer = 0;

  const status = h('p', { class: 'muted', role: 'status', text: 'Loading the pipeline…' });
  const stats = h('div', { class: 'stats' });
  const board = h('div', { class: 'board' });
  const overdue = h('ul', { class: 'overdue-list' });
  const quiet = h('ul', { class: 'quiet-list' });

  const groupButtons = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Group deals' },
    [['stage', 'By stage'], ['close_window', 'By close window']].map(([v, l]) => h('button', {
      type: 'button', text: l, 'aria-pressed': String(groupBy === v),
      on: {
        click: (e) => {
          groupBy = v;
          localStorage.setItem('dealroom.pipelineGroup', v);
          for (const b of groupButtons.children) b.setAttribute('aria-pressed', String(b === e.currentTarget));
          render();
        },
      },
    })));
  const quietInput = h('input', { type: 'number', min: 0, max: 365, value: quietDays, inputMode: 'numeric', class: 'narrow-input' });
  quietInput.addEventListener('input', () => {
    const n = Number(quietInput.value);
    if (Number.isInteger(n) && n >= 0 && n <= 365) {
      quietDays = n;
      localStorage.setItem('dealroom.quietDays', String(n));
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(load, 400);
    }
  });
  const refresh = h('button', { type: 'button', class: 'ghost', on: { click: () => load() } }, icon('refresh'), 'Refresh');
  // The export downloads (Content-Disposition: attachment): the page stays.
  const csv = h('button', { type: 'button', class: 'ghost', text: 'Download CSV', on: { click: () => { location.href = ctx.api.url('/pipeline', { format: 'csv', quiet_days: quietDays }); } } });

  const lastTouch = (r) => r.last_customer_activity_at || null;

  const roomCard = (d) => {
    const r = d.room;
    const next = d.next_step;
    const od = d.overdue;
    const info = next ? dueInfo(next.due, next.status) : null;
    return h('li', { class: ['deal', d.quiet && 'is-quiet', od && 'has-overdue'], dataset: { room: r.id } },
      h('a', { href: `/room/${enc(r.id)}`, class: 'deal-name', text: r.name }),
      h('span', { class: 'muted small', text: `${r.company} · ${d.owner.name || r.owner_id}` }),
      h('span', { class: 'deal-facts' },
        r.value !== null && r.value !== undefined ? h('strong', { text: fmtMoney(r.value, r.currency) }) : null,
        groupBy === 'stage' ? h('span', { class: 'badge', text: WINDOWS[r.close_window] || r.close_window })
          : h('span', { class: ['stage-badge', `stage-${r.stage}`], text: stageLabel(r.stage) })),
      next ? h('span', { class: 'deal-next' }, 'Next: ', h('span', { text: next.title }),
        info ? h('span', { class: ['due', info.overdue && 'overdue'], text: ` · ${info.label}` }) : null)
        : h('span', { class: 'deal-next warn-text', text: CLOSED.includes(r.stage) ? 'Closed' : 'No next step planned' }),
      planHealth(d.health),
      h('span', { class: 'deal-flags' },
        od ? h('span', { class: 'flag flag-overdue', text: `${od} overdue` }) : null,
        closeSlips(r),
        d.quiet ? h('span', { class: 'flag flag-quiet', text: lastTouch(r) ? `Customer quiet ${Math.floor(daysSince(lastTouch(r)))} d` : 'No customer touch yet' }) : null,
        engagementFlag(r, d.engagement)),
      CLOSED.includes(r.stage) ? null : h('button', { type: 'button', class: 'ghost small', text: 'Assign next step', on: { click: () => assignDialog(d) } }));
  };

  const render = () => {
    if (!data) return;
    const cards = data.cards;
    const byRoom = new Map(cards.map((d) => [d.room.id, d]));
    const open = cards.filter((d) => !CLOSED.includes(d.room.stage));
    const sum = (ds) => {
      const by = {};
      for (const d of ds) if (d.room.value) by[d.room.currency || ''] = (by[d.room.currency || ''] || 0) + d.room.value;
      return Object.entries(by).map(([c, v]) => fmtMoney(v, c)).join(' + ') || '—';
    };
    const thisMonth = open.filter((d) => d.room.close_window === 'this_month');
    const quietOnes = data.quiet.map((id) => byRoom.get(id)).filter(Boolean);
    const stat = (label, value, extra, cls) => h('div', { class: ['stat', cls] }, h('span', { class: 'stat-value', text: value }), h('span', { class: 'stat-label', text: label }), extra ? h('span', { class: 'muted small', text: extra }) : null);
    fill(stats,
      stat('Open deals', String(open.length), sum(open)),
      stat('Can be signed this month', String(thisMonth.length), sum(thisMonth)),
      stat('Overdue next steps', String(data.overdue.length), null, data.overdue.length ? 'bad' : ''),
      stat(`Quiet for more than ${plural(data.quiet_days, 'day')}`, String(quietOnes.length), null, quietOnes.length ? 'warn' : ''));

    const columns = groupBy === 'stage'
      ? [...new Set([...Object.keys(STAGES).filter((s) => !CLOSED.includes(s)), ...cards.map((d) => d.room.stage).filter((s) => !CLOSED.includes(s)), 'won', 'lost'])]
        .map((s) => [s, stageLabel(s), cards.filter((d) => d.room.stage === s)])
      : WINDOW_ORDER.map((w) => [w, WINDOWS[w], open.filter((d) => (d.room.close_window || 'unknown') === w)]);
    fill(board, ...columns.map(([key, label, ds]) => {
      const id = uid('col');
      return h('section', { class: ['column', `col-${key}`], 'aria-labelledby': id },
        h('h3', { id }, h('span', { text: label }), h('span', { class: 'count', text: String(ds.length) })),
        h('p', { class: 'muted small', text: sum(ds) }),
        ds.length ? h('ul', { class: 'deals' }, ds.map(roomCard)) : h('p', { class: 'empty small', text: 'No deals' }));
    }));

    fill(overdue, ...data.overdue.map(({ room_id: roomId, room_name: roomName, step: t, owners }) => h('li', { class: 'overdue-item' },
      h('a', { href: `/room/${enc(roomId)}/task/${enc(t.id)}`, text: t.title }),
      h('span', { class: 'muted', text: ` in ${roomName}` }),
      h('span', { class: 'due overdue', text: dueInfo(t.due, t.status).label }),
      h('span', { class: 'muted small', text: owners.length ? `Owner: ${owners.join(', ')}` : 'No owner' }),
      byRoom.get(roomId) ? h('button', { type: 'button', class: 'link', text: 'Assign a next step', on: { click: () => assignDialog(byRoom.get(roomId)) } }) : null)));
    if (!data.overdue.length) fill(overdue, h('li', { class: 'empty', text: 'No overdue steps. Well done.' }));

    fill(quiet, ...quietOnes.map((d) => h('li', { class: 'quiet-item' },
      h('a', { href: `/room/${enc(d.room.id)}`, text: d.room.name }),
      h('span', { class: 'muted', text: ` · ${d.room.company}` }),
      h('span', { class: 'warn-text', text: lastTouch(d.room) ? ` · customer last active ${fmtAgo(lastTouch(d.room))}` : ` · no customer touch since it opened ${fmtAgo(d.room.created_at)}` }),
      h('button', { type: 'button', class: 'link', text: 'Assign a follow-up', on: { click: () => assignDialog(d, 'Follow-up call with the customer') } }))));
    if (!quietOnes.length) fill(quiet, h('li', { class: 'empty', text: 'Every open deal had a customer touch recently.' }));
  };

  /** assignDialog adds a next step in a room, owned by anyone in it. */
  const assignDialog = async (d, suggestion = '') => {
    let members;
    try {
      members = await ctx.api.all(`/rooms/${enc(d.room.id)}/members`);
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
      return;
    }
    const nameIn = (id) => members.find((m) => m.user_id === id)?.name || id;
    const key = newKey();
    const title = h('input', { type: 'text', required: true, maxLength: 200, value: suggestion });
    const owner = h('select', { required: true });
    const vis = h('select', {}, h('option', { value: 'shared', text: 'Shared with the customer' }), h('option', { value: 'internal', text: 'Internal (team only)' }));
    const fillOwners = () => {
      const v = owner.value;
      const group = (label, kind) => {
        const ms = members.filter((m) => m.kind === kind);
        return ms.length ? h('optgroup', { label }, ms.map((m) => h('option', { value: m.user_id, text: m.name, disabled: vis.value === 'internal' && kind !== 'staff' }))) : null;
      };
      fill(owner, h('option', { value: '', text: 'Choose who owns it' }), group(sideText('staff'), 'staff'), group('Customer', 'customer'));
      owner.value = v;
      if (owner.selectedOptions[0]?.disabled) owner.value = '';
    };
    vis.addEventListener('change', fillOwners);
    fillOwners();
    const due = h('input', { type: 'date', value: addDays(todayISO(), 7) });
    const error = h('p', { class: 'error-text', role: 'alert' });
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'assign-h' });
    const form = h('form', {},
      h('h2', { id: 'assign-h', text: `Next step in ${d.room.name}` }),
      field('Step', title), field('Owner', owner), h('div', { class: 'row' }, field('Due', due), field('Who sees it', vis)), error,
      h('div', { class: 'form-end' },
        h('button', { type: 'button', class: 'ghost', text: 'Cancel', on: { click: () => dlg.close() } }),
        h('button', { type: 'submit', class: 'primary', text: 'Assign' })));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!title.value.trim()) { error.textContent = 'Say what the step is.'; title.focus(); return; }
      if (!owner.value) { error.textContent = 'Choose who owns the step.'; owner.focus(); return; }
      const draft = { title: title.value.trim(), assignees: [owner.value], visibility: vis.value };
      if (due.value) draft.due = due.value;
      try {
        const t = await ctx.api.post(`/rooms/${enc(d.room.id)}/tasks`, draft, key);
        dlg.close();
        toast(`Assigned “${t.title}” to ${nameIn(owner.value)}${t.due ? `, due ${fmtDay(t.due)}` : ''}.`, { kind: 'ok' });
        load();
      } catch (err) {
        error.textContent = errorText(err);
      }
    });
    dlg.append(form);
    dlg.addEventListener('close', () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
    title.focus();
  };

  const load = async () => {
    status.textContent = data ? 'Refreshing…' : 'Loading the pipeline…';
    try {
      const p = await ctx.api.get('/pipeline', { quiet_days: quietDays });
      if (destroyed) return;
      data = p;
      status.textContent = p.cards.length ? `Updated ${new Date().toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}.` : 'No rooms yet. Open one from Rooms.';
      render();
    } catch (err) {
      status.textContent = errorText(err);
    }
  };
  load();

  const el = h('div', { class: 'page pipeline' },
    h('div', { class: 'page-head' }, h('h1', { text: 'Pipeline' }), h('div', { class: 'page-head-actions' }, csv, refresh)),
    h('div', { class: 'toolbar' }, groupButtons,
      h('label', { class: 'inline-field' }, 'Quiet after ', quietInput, ' days without a customer touch')),
    status, stats,
    h('section', { class: 'board-wrap', 'aria-label': 'Deals' }, board),
    h('div', { class: 'grid-2 lists' },
      h('section', { class: 'card', 'aria-labelledby': 'od-h' }, h('h2', { id: 'od-h', text: 'Overdue next steps' }), overdue),
      h('section', { class: 'card', 'aria-labelledby': 'q-h' }, h('h2', { id: 'q-h', text: 'Rooms gone quiet' }), quiet)));
  return { el, destroy: () => { destroyed = true; clearTimeout(reloadTimer); } };
}

/**
 * engagementFlag is a deal's engagement signal (GET /pipeline gives it to
 * staff as `engagement`: the customer side's visits and files opened this
 * week against the week before); null for a closed deal or none.
 */
function engagementFlag(r, signal) {
  return CLOSED.includes(r.stage) ? null : signalBadge(signal);
}
