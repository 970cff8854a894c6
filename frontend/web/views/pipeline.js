// views/pipeline.js: the manager's view across rooms: deals by stage or by
// when they can be signed, overdue next steps, rooms where the customer
// went quiet, and assigning a next step to anyone in a room from here.

import {
  h, field, icon, uid, toast, errorText, fmtAgo, fmtMoney, fmtDay, stageLabel, dueInfo, addDays, todayISO,
  WINDOWS, WINDOW_ORDER, daysSince, mapLimit, plural, STAGES, fill,
} from '../dom.js';
import { enc, newKey } from '../api.js';
import { sideText } from '../components.js';
import { signalBadge } from '../engagement.js';

const CLOSED = ['won', 'lost'];

export function pipelineView(ctx) {
  ctx.setTitle('Pipeline');
  let groupBy = localStorage.getItem('dealroom.pipelineGroup') || 'stage';
  let quietDays = Number(localStorage.getItem('dealroom.quietDays') || 14);
  let data = null; // [{room, tasks, members}]
  let destroyed = false;

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
    if (Number.isFinite(n) && n >= 0) {
      quietDays = n;
      localStorage.setItem('dealroom.quietDays', String(n));
      render();
    }
  });
  const refresh = h('button', { type: 'button', class: 'ghost', on: { click: () => load() } }, icon('refresh'), 'Refresh');

  const lastTouch = (r) => r.last_customer_activity_at || null;
  const isQuiet = (r) => !CLOSED.includes(r.stage) && daysSince(lastTouch(r) || r.created_at) > quietDays;
  const openTasks = (d) => d.tasks.filter((t) => t.status !== 'done');
  const overdueOf = (d) => openTasks(d).filter((t) => dueInfo(t.due, t.status)?.overdue);
  const nextStep = (d) => {
    const open = openTasks(d);
    const dated = open.filter((t) => t.due).sort((a, b) => (a.due < b.due ? -1 : 1));
    return dated[0] || open.sort((a, b) => a.position - b.position)[0] || null;
  };
  const nameIn = (d, id) => d.members.find((m) => m.user_id === id)?.name || id;

  const roomCard = (d) => {
    const r = d.room;
    const next = nextStep(d);
    const od = overdueOf(d).length;
    const info = next ? dueInfo(next.due, next.status) : null;
    return h('li', { class: ['deal', isQuiet(r) && 'is-quiet', od && 'has-overdue'] },
      h('a', { href: `/room/${enc(r.id)}`, class: 'deal-name', text: r.name }),
      h('span', { class: 'muted small', text: `${r.company} · ${nameIn(d, r.owner_id)}` }),
      h('span', { class: 'deal-facts' },
        r.value !== null && r.value !== undefined ? h('strong', { text: fmtMoney(r.value, r.currency) }) : null,
        groupBy === 'stage' ? h('span', { class: 'badge', text: WINDOWS[r.close_window] || r.close_window })
          : h('span', { class: ['stage-badge', `stage-${r.stage}`], text: stageLabel(r.stage) })),
      next ? h('span', { class: 'deal-next' }, 'Next: ', h('span', { text: next.title }),
        info ? h('span', { class: ['due', info.overdue && 'overdue'], text: ` · ${info.label}` }) : null)
        : h('span', { class: 'deal-next warn-text', text: CLOSED.includes(r.stage) ? 'Closed' : 'No next step planned' }),
      h('span', { class: 'deal-flags' },
        od ? h('span', { class: 'flag flag-overdue', text: `${od} overdue` }) : null,
        isQuiet(r) ? h('span', { class: 'flag flag-quiet', text: lastTouch(r) ? `Customer quiet ${Math.floor(daysSince(lastTouch(r)))} d` : 'No customer touch yet' }) : null,
        engagementFlag(r)),
      CLOSED.includes(r.stage) ? null : h('button', { type: 'button', class: 'ghost small', text: 'Assign next step', on: { click: () => assignDialog(d) } }));
  };

  const render = () => {
    if (!data) return;
    const open = data.filter((d) => !CLOSED.includes(d.room.stage));
    const sum = (ds) => {
      const by = {};
      for (const d of ds) if (d.room.value) by[d.room.currency || ''] = (by[d.room.currency || ''] || 0) + d.room.value;
      return Object.entries(by).map(([c, v]) => fmtMoney(v, c)).join(' + ') || '—';
    };
    const thisMonth = open.filter((d) => d.room.close_window === 'this_month');
    const allOverdue = open.flatMap((d) => overdueOf(d).map((t) => ({ d, t })));
    const quietOnes = open.filter((d) => isQuiet(d.room));
    const stat = (label, value, extra, cls) => h('div', { class: ['stat', cls] }, h('span', { class: 'stat-value', text: value }), h('span', { class: 'stat-label', text: label }), extra ? h('span', { class: 'muted small', text: extra }) : null);
    fill(stats, 
      stat('Open deals', String(open.length), sum(open)),
      stat('Can be signed this month', String(thisMonth.length), sum(thisMonth)),
      stat('Overdue next steps', String(allOverdue.length), null, allOverdue.length ? 'bad' : ''),
      stat(`Quiet for more than ${plural(quietDays, 'day')}`, String(quietOnes.length), null, quietOnes.length ? 'warn' : ''));

    const columns = groupBy === 'stage'
      ? [...new Set([...Object.keys(STAGES).filter((s) => !CLOSED.includes(s)), ...data.map((d) => d.room.stage).filter((s) => !CLOSED.includes(s)), 'won', 'lost'])]
        .map((s) => [s, stageLabel(s), data.filter((d) => d.room.stage === s)])
      : WINDOW_ORDER.map((w) => [w, WINDOWS[w], open.filter((d) => (d.room.close_window || 'unknown') === w)]);
    fill(board, ...columns.map(([key, label, ds]) => {
      const id = uid('col');
      return h('section', { class: ['column', `col-${key}`], 'aria-labelledby': id },
        h('h3', { id }, h('span', { text: label }), h('span', { class: 'count', text: String(ds.length) })),
        h('p', { class: 'muted small', text: sum(ds) }),
        ds.length ? h('ul', { class: 'deals' }, ds.map(roomCard)) : h('p', { class: 'empty small', text: 'No deals' }));
    }));

    allOverdue.sort((a, b) => (a.t.due < b.t.due ? -1 : 1));
    fill(overdue, ...allOverdue.map(({ d, t }) => h('li', { class: 'overdue-item' },
      h('a', { href: `/room/${enc(d.room.id)}/task/${enc(t.id)}`, text: t.title }),
      h('span', { class: 'muted', text: ` in ${d.room.name}` }),
      h('span', { class: 'due overdue', text: dueInfo(t.due, t.status).label }),
      h('span', { class: 'muted small', text: (t.assignees || []).length ? `Owner: ${(t.assignees || []).map((u) => nameIn(d, u)).join(', ')}` : 'No owner' }),
      h('button', { type: 'button', class: 'link', text: 'Assign a next step', on: { click: () => assignDialog(d) } }))));
    if (!allOverdue.length) fill(overdue, h('li', { class: 'empty', text: 'No overdue steps. Well done.' }));

    fill(quiet, ...quietOnes.map((d) => h('li', { class: 'quiet-item' },
      h('a', { href: `/room/${enc(d.room.id)}`, text: d.room.name }),
      h('span', { class: 'muted', text: ` · ${d.room.company}` }),
      h('span', { class: 'warn-text', text: lastTouch(d.room) ? ` · customer last active ${fmtAgo(lastTouch(d.room))}` : ` · no customer touch since it opened ${fmtAgo(d.room.created_at)}` }),
      h('button', { type: 'button', class: 'link', text: 'Assign a follow-up', on: { click: () => assignDialog(d, 'Follow-up call with the customer') } }))));
    if (!quietOnes.length) fill(quiet, h('li', { class: 'empty', text: 'Every open deal had a customer touch recently.' }));
  };

  /** assignDialog adds a next step in a room, owned by anyone in it. */
  const assignDialog = (d, suggestion = '') => {
    const key = newKey();
    const title = h('input', { type: 'text', required: true, maxLength: 200, value: suggestion });
    const owner = h('select', { required: true });
    const vis = h('select', {}, h('option', { value: 'shared', text: 'Shared with the customer' }), h('option', { value: 'internal', text: 'Internal (team only)' }));
    const fillOwners = () => {
      const v = owner.value;
      const group = (label, kind) => {
        const ms = d.members.filter((m) => m.kind === kind);
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
        d.tasks = [...d.tasks.filter((x) => x.id !== t.id), t];
        dlg.close();
        toast(`Assigned “${t.title}” to ${nameIn(d, owner.value)}${t.due ? `, due ${fmtDay(t.due)}` : ''}.`, { kind: 'ok' });
        render();
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
      const rooms = await ctx.api.all('/rooms', { limit: 200 });
      // The API has no cross-room task query: read each open room's plan
      // and members, a few at a time.
      const details = await mapLimit(rooms, 4, async (room) => {
        if (CLOSED.includes(room.stage)) return { room, tasks: [], members: [] };
        const [tasks, members] = await Promise.all([
          ctx.api.all(`/rooms/${enc(room.id)}/tasks`), ctx.api.all(`/rooms/${enc(room.id)}/members`)]);
        return { room, tasks, members };
      });
      if (destroyed) return;
      data = details;
      status.textContent = rooms.length ? `Updated ${new Date().toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}.` : 'No rooms yet. Open one from Rooms.';
      render();
    } catch (err) {
      status.textContent = errorText(err);
    }
  };
  load();

  const el = h('div', { class: 'page pipeline' },
    h('div', { class: 'page-head' }, h('h1', { text: 'Pipeline' }), refresh),
    h('div', { class: 'toolbar' }, groupButtons,
      h('label', { class: 'inline-field' }, 'Quiet after ', quietInput, ' days without a customer touch')),
    status, stats,
    h('section', { class: 'board-wrap', 'aria-label': 'Deals' }, board),
    h('div', { class: 'grid-2 lists' },
      h('section', { class: 'card', 'aria-labelledby': 'od-h' }, h('h2', { id: 'od-h', text: 'Overdue next steps' }), overdue),
      h('section', { class: 'card', 'aria-labelledby': 'q-h' }, h('h2', { id: 'q-h', text: 'Rooms gone quiet' }), quiet)));
  return { el, destroy: () => { destroyed = true; } };
}

/**
 * engagementFlag is a deal's engagement signal (GET /rooms gives it to
 * staff as `engagement`: the customer side's visits and files opened this
 * week against the week before); null for a closed deal or none.
 */
function engagementFlag(r) {
  return CLOSED.includes(r.stage) ? null : signalBadge(r.engagement);
}
