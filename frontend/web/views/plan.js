// views/plan.js: the mutual action plan (the room's tasks in order) and the
// pane of one step: its details, files and discussion.

import {
  h, field, icon, uid, reconcile, simple, toast, errorText, dueInfo, STATUSES, fmtAgo, fmtDay, plural, fill,
} from '../dom.js';
import { enc } from '../api.js';
import { mentionBox } from '../mention.js';
import {
  internalBadge, personChip, threads, uploader, fileRow, mentionables, warnUnresolved, sideLabel, seenLine, seenSig,
} from '../components.js';

const FILTERS = [['all', 'All steps'], ['mine', 'Assigned to me'], ['open', 'Not done']];

/** memberOptions fills a select with the room's members, grouped by side. */
function memberOptions(select, st, { none = 'Nobody yet', internal = false } = {}) {
  const value = select.value;
  const members = [...st.members.values()];
  const group = (label, kind) => {
    const ms = members.filter((m) => m.kind === kind);
    if (!ms.length) return null;
    return h('optgroup', { label }, ms.map((m) => h('option', {
      value: m.user_id, text: m.user_id === st.me.user_id ? `${m.name} (me)` : m.name,
      disabled: internal && kind !== 'staff',
    })));
  };
  fill(select, h('option', { value: '', text: none }), group('Your team', 'staff'), group('Customer', 'customer'));
  select.value = value;
  if (select.selectedIndex < 0 || select.selectedOptions[0]?.disabled) select.value = '';
}

/** newPosition returns a position that puts a task between before and after. */
/** changedBy is who made the last change of an item seen here: "seen by" leaves them out. */
function changedBy(st, id) {
  return st.timeline.get(st.seqOf.get(id))?.actor?.id;
}

function newPosition(before, after) {
  if (before && after) return (before.position + after.position) / 2;
  if (before) return before.position + 1;
  if (after) return after.position - 1;
  return 1;
}

// ---------------------------------------------------------------------------
// Commitments: who proposed a shared step's date, and whether the other side
// confirmed it (the server keeps the state and its history).

const SIDE = { staff: 'the team', customer: 'the customer' };

/** commitmentText says where a step's date stands, or '' when it has none. */
function commitmentText(st, c) {
  if (!c) return '';
  const who = st.name(c.proposed_by);
  const slid = c.slipped_days > 0 ? ` · slipped ${plural(c.slipped_days, 'day')}` : '';
  switch (c.state) {
    case 'confirmed': return `Confirmed by ${st.name(c.confirmed_by)}${slid}`;
    case 'slipped': return `Slipped ${plural(c.slipped_days, 'day')} by ${who}, not confirmed yet`;
    case 'changed': return `Changed by ${who}, not confirmed yet`;
    default: return `Proposed by ${who}, waiting for ${SIDE[c.proposed_side === 'staff' ? 'customer' : 'staff']}`;
  }
}

/**
 * commitment shows a step's commitment state and, to a writer on the side
 * that did not propose the date, a button that confirms it.
 */
function commitment(session, t) {
  const st = session.state;
  const c = t.commitment;
  if (!c || !t.due || t.visibility !== 'shared') return null;
  const mine = session.perm().internal ? 'staff' : 'customer';
  const canConfirm = session.perm().write && c.state !== 'confirmed' && c.proposed_side !== mine;
  const button = canConfirm ? h('button', {
    type: 'button', class: 'small', text: 'Confirm date', dataset: { fk: 'confirm' },
    on: {
      click: async (e) => {
        e.currentTarget.disabled = true;
        try {
          await session.run((api, base) => api.post(`${base}/tasks/${enc(t.id)}/confirm-due`, { due: t.due }));
          toast(`Confirmed: “${t.title}” by ${fmtDay(t.due)}.`, { kind: 'ok', timeout: 3000 });
        } catch (err) {
          e.currentTarget.disabled = false;
          toast(errorText(err), { kind: 'error' });
        }
      },
    },
  }) : null;
  return h('span', { class: ['commitment', `commitment-${c.state}`], dataset: { fk: 'commitment', state: c.state } },
    h('span', { text: commitmentText(st, c) }), button ? ' ' : null, button);
}

export function planPanel(ctx, session) {
  const st = session.state;
  const roomPath = `/room/${enc(session.id)}`;
  let filter = localStorage.getItem('dealroom.planFilter') || 'all';
  const rows = new Map();
  const headingId = uid('h');

  const summary = h('p', { class: 'plan-summary' });
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Steps done' });
  const filters = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Show' }, FILTERS.map(([v, label]) => h('button', {
    type: 'button', text: label, 'aria-pressed': String(filter === v),
    on: {
      click: (e) => {
        filter = v;
        localStorage.setItem('dealroom.planFilter', v);
        for (const b of filters.children) b.setAttribute('aria-pressed', String(b === e.currentTarget));
        update();
      },
    },
  })));

  // Adding a step.
  const title = h('input', { type: 'text', maxLength: 200, required: true, placeholder: 'e.g. Security review with IT', autocomplete: 'off' });
  const owner = h('select', {});
  const due = h('input', { type: 'date' });
  const vis = h('select', {}, h('option', { value: 'shared', text: 'Shared with the customer' }), h('option', { value: 'internal', text: 'Internal (team only)' }));
  const add = h('button', { type: 'submit', class: 'primary' }, icon('plus'), 'Add step');
  vis.addEventListener('change', () => memberOptions(owner, st, { internal: vis.value === 'internal' }));
  const form = h('form', { class: 'task-new', 'aria-label': 'Add a step to the plan' },
    field('New step', title), field('Owner', owner), field('Due', due),
    st.customer ? null : field('Who sees it', vis), h('div', { class: 'form-end' }, add));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!title.value.trim()) {
      title.focus();
      return;
    }
    const draft = { title: title.value.trim(), visibility: st.customer ? 'shared' : vis.value };
    if (owner.value) draft.assignees = [owner.value];
    if (due.value) draft.due = due.value;
    add.disabled = true;
    try {
      const t = await session.run((api, base) => api.post(`${base}/tasks`, draft));
      warnUnresolved(t);
      title.value = '';
      due.value = '';
      title.focus();
      toast(`Added “${t.title}”.`, { kind: 'ok', timeout: 3000 });
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    } finally {
      add.disabled = false;
    }
  });

  const list = h('ol', { class: 'tasks', 'aria-labelledby': headingId });
  const empty = h('p', { class: 'empty' });

  // Changing order: buttons, Alt+arrows, and drag and drop.
  const moveTo = async (task, index) => {
    const order = st.tasksInOrder().filter((t) => t.id !== task.id);
    index = Math.max(0, Math.min(order.length, index));
    const position = newPosition(order[index - 1], order[index]);
    try {
      await session.run((api, base) => api.patch(`${base}/tasks/${enc(task.id)}`, { position }));
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  };
  const move = (task, delta) => {
    const order = st.tasksInOrder();
    const i = order.findIndex((t) => t.id === task.id);
    if (i < 0 || i + delta < 0 || i + delta >= order.length) return;
    moveTo(task, i + delta);
  };
  let dragging = null;

  const toggleDone = async (t, box) => {
    box.disabled = true;
    const status = box.checked ? 'done' : 'open';
    try {
      await session.run((api, base) => api.patch(`${base}/tasks/${enc(t.id)}`, { status }));
      if (status === 'done') toast(`Done: “${t.title}”.`, { kind: 'ok', timeout: 3000 });
    } catch (err) {
      box.checked = !box.checked;
      toast(errorText(err), { kind: 'error' });
    } finally {
      box.disabled = false;
    }
  };

  const renderRow = (t) => {
    const p = session.perm();
    const info = dueInfo(t.due, t.status);
    const talk = st.threadCount(t.id);
    const files = st.filesOf(t.id).length;
    const box = h('input', { type: 'checkbox', checked: t.status === 'done', disabled: !p.write, dataset: { fk: 'done' }, 'aria-label': `Done: ${t.title}` });
    box.addEventListener('change', () => toggleDone(t, box));
    const li = h('li', {
      class: ['task', t.visibility === 'internal' && 'is-internal', t.status === 'done' && 'is-done', info?.overdue && 'is-overdue'],
      dataset: { id: t.id }, draggable: p.write,
    },
    h('div', { class: 'task-check' }, box),
    h('div', { class: 'task-main' },
      h('a', { class: 'task-title', href: `${roomPath}/task/${enc(t.id)}`, text: t.title, dataset: { fk: 'title' } }),
      h('div', { class: 'task-meta' },
        t.visibility === 'internal' ? internalBadge(true) : null,
        t.status !== 'open' ? h('span', { class: ['status', `status-${t.status}`], text: STATUSES[t.status] || t.status }) : null,
        info ? h('span', { class: ['due', info.overdue && 'overdue', info.soon && 'soon'], text: info.label }) : null,
        commitment(session, t),
        (t.assignees || []).map((u) => personChip(st, u)),
        !(t.assignees || []).length ? h('span', { class: 'muted', text: 'No owner yet' }) : null,
        talk ? h('span', { class: 'count', title: plural(talk, 'message') }, icon('chat'), String(talk), h('span', { class: 'visually-hidden', text: ' messages' })) : null,
        files ? h('span', { class: 'count', title: plural(files, 'file') }, icon('clip'), String(files), h('span', { class: 'visually-hidden', text: ' files' })) : null),
      seenLine(st, t.id, changedBy(st, t.id), t.visibility === 'internal')),
    p.write ? h('div', { class: 'task-move' },
      h('button', { type: 'button', class: 'icon-button', 'aria-label': `Move “${t.title}” up`, title: 'Move up (Alt+↑)', text: '↑', dataset: { fk: 'up' }, on: { click: () => move(t, -1) } }),
      h('button', { type: 'button', class: 'icon-button', 'aria-label': `Move “${t.title}” down`, title: 'Move down (Alt+↓)', text: '↓', dataset: { fk: 'down' }, on: { click: () => move(t, 1) } })) : null);
    li.addEventListener('keydown', (e) => {
      if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
        e.preventDefault();
        move(t, e.key === 'ArrowUp' ? -1 : 1);
      }
    });
    li.addEventListener('dragstart', (e) => {
      dragging = t;
      e.dataTransfer.effectAllowed = 'move';
      e.dataTransfer.setData('text/plain', t.id);
      li.classList.add('dragging');
    });
    li.addEventListener('dragend', () => {
      dragging = null;
      li.classList.remove('dragging');
      for (const x of list.querySelectorAll('.drop-before, .drop-after')) x.classList.remove('drop-before', 'drop-after');
    });
    li.addEventListener('dragover', (e) => {
      if (!dragging || dragging.id === t.id) return;
      e.preventDefault();
      const r = li.getBoundingClientRect();
      const after = e.clientY > r.top + r.height / 2;
      li.classList.toggle('drop-after', after);
      li.classList.toggle('drop-before', !after);
    });
    li.addEventListener('dragleave', () => li.classList.remove('drop-before', 'drop-after'));
    li.addEventListener('drop', (e) => {
      e.preventDefault();
      if (!dragging || dragging.id === t.id) return;
      const after = li.classList.contains('drop-after');
      li.classList.remove('drop-before', 'drop-after');
      const order = st.tasksInOrder().filter((x) => x.id !== dragging.id);
      const i = order.findIndex((x) => x.id === t.id);
      moveTo(dragging, after ? i + 1 : i);
    });
    return li;
  };
  const rowSig = (t) => [JSON.stringify(t), st.threadCount(t.id), st.filesOf(t.id).length, st.members.size, session.perm().write,
    seenSig(st, t.id, changedBy(st, t.id), t.visibility === 'internal')].join('|');

  const el = h('section', { class: 'panel plan', 'aria-labelledby': headingId },
    h('div', { class: 'panel-head' }, h('h2', { id: headingId, text: 'Mutual action plan' }), filters),
    h('div', { class: 'plan-progress' }, bar, summary),
    list, empty);
  const formSlot = h('div', {});
  el.append(formSlot);

  const update = () => {
    const p = session.perm();
    if (p.write && !form.isConnected) fill(formSlot, form);
    if (!p.write) fill(formSlot, h('p', { class: 'muted', text: 'You have read access to this room: you can follow the plan but not change it.' }));
    memberOptions(owner, st, { internal: vis.value === 'internal' });
    const all = st.tasksInOrder();
    const done = all.filter((t) => t.status === 'done').length;
    bar.max = Math.max(1, all.length);
    bar.value = done;
    summary.textContent = all.length ? `${done} of ${plural(all.length, 'step')} done` : '';
    const shown = all.filter((t) => filter === 'all' || (filter === 'mine' ? (t.assignees || []).includes(st.me.user_id) : t.status !== 'done'));
    reconcile(list, rows, shown, (t) => t.id, simple(renderRow, rowSig));
    empty.hidden = shown.length > 0;
    empty.textContent = all.length === 0
      ? 'No steps yet. Lay out the way to signature: add the first step below, with an owner on either side and a due date.'
      : filter === 'mine' ? 'Nothing is assigned to you here.' : 'Every step is done.';
  };
  return { el, update, focus: () => title.focus() };
}

// ---------------------------------------------------------------------------
// One step.

export function taskPane(ctx, session, taskId) {
  const st = session.state;
  const roomPath = `/room/${enc(session.id)}`;
  const headingId = uid('h');
  let task = st.tasks.get(taskId);
  let shownSig = null;

  const heading = h('h2', { id: headingId, tabIndex: -1 });
  const back = h('a', { class: 'back', href: roomPath }, icon('back'), 'Back to the plan');
  const badges = h('div', { class: 'task-badges' });
  const doneBtn = h('button', { type: 'button', class: 'primary big' });
  const changedNote = h('div', { class: 'notice', hidden: true, role: 'status' });

  const title = h('input', { type: 'text', maxLength: 200, required: true });
  const status = h('select', {}, Object.entries(STATUSES).map(([v, l]) => h('option', { value: v, text: l })));
  const due = h('input', { type: 'date' });
  const assignees = h('fieldset', { class: 'assignees' });
  const desc = h('textarea', { rows: 4, maxLength: 10000, placeholder: 'What needs to happen, and what does done look like? Type @ to mention someone.' });
  const descList = mentionBox(desc, () => mentionables(st, task && task.visibility === 'internal'));
  const save = h('button', { type: 'submit', class: 'primary', text: 'Save changes' });
  const del = h('button', { type: 'button', class: 'danger ghost', text: 'Delete step' });
  const visBox = h('div', { class: 'visibility-box' });
  const meta = h('p', { class: 'muted small' });
  const form = h('form', { class: 'task-edit', 'aria-label': 'Step details' },
    field('Title', title), h('div', { class: 'row' }, field('Status', status), field('Due', due)),
    assignees, field('Description', desc), descList, visBox,
    h('div', { class: 'form-end' }, del, h('span', { class: 'spacer' }), save), meta);

  const values = () => ({
    title: title.value.trim(),
    status: status.value,
    due: due.value || null,
    assignees: [...assignees.querySelectorAll('input:checked')].map((i) => i.value),
    description: desc.value.trim(),
  });
  const taskValues = (t) => ({ title: t.title, status: t.status, due: t.due || null, assignees: t.assignees || [], description: t.description || '' });
  const dirty = () => task && JSON.stringify(values()) !== JSON.stringify(taskValues(task));

  const fillForm = () => {
    const p = session.perm();
    const internal = task.visibility === 'internal';
    title.value = task.title;
    status.value = task.status;
    due.value = task.due || '';
    desc.value = task.description || '';
    const checks = [...st.members.values()].map((m) => {
      const dis = !p.write || (internal && m.kind !== 'staff');
      return h('label', { class: ['check', dis && 'disabled'] },
        h('input', { type: 'checkbox', value: m.user_id, checked: (task.assignees || []).includes(m.user_id), disabled: dis }),
        h('span', { text: m.user_id === st.me.user_id ? `${m.name} (me)` : m.name }), sideLabel(m.kind));
    });
    fill(assignees, h('legend', { text: 'Owners' }), ...checks,
      internal ? h('small', { class: 'hint', text: 'Customers cannot own an internal step.' }) : null);
    for (const c of [title, status, due, desc]) c.disabled = !p.write;
    save.hidden = !p.write;
    del.hidden = !(p.write && (p.internal || task.created_by === st.me.user_id));
    changedNote.hidden = true;
    shownSig = JSON.stringify(task);
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const now = values();
    const was = taskValues(task);
    const patch = {};
    for (const k of Object.keys(now)) if (JSON.stringify(now[k]) !== JSON.stringify(was[k])) patch[k] = now[k];
    if (!Object.keys(patch).length) {
      toast('Nothing changed.');
      return;
    }
    save.disabled = true;
    try {
      const t = await session.run((api, base) => api.patch(`${base}/tasks/${enc(task.id)}`, patch));
      warnUnresolved(t);
      task = st.tasks.get(task.id) || t;
      fillForm();
      toast('Saved.', { kind: 'ok', timeout: 2500 });
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    } finally {
      save.disabled = false;
    }
  });
  del.addEventListener('click', async () => {
    if (!confirm(`Delete the step “${task.title}”? Its discussion stays in the timeline.`)) return;
    try {
      await session.run((api, base) => api.del(`${base}/tasks/${enc(task.id)}`));
      ctx.navigate(roomPath);
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  });
  doneBtn.addEventListener('click', async () => {
    const next = task.status === 'done' ? 'open' : 'done';
    doneBtn.disabled = true;
    try {
      await session.run((api, base) => api.patch(`${base}/tasks/${enc(task.id)}`, { status: next }));
      task = st.tasks.get(task.id) || task;
      if (!dirty()) fillForm();
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    } finally {
      doneBtn.disabled = false;
    }
  });

  const files = new Map();
  const fileList = h('ul', { class: 'files' });
  const fileEmpty = h('p', { class: 'empty', text: 'No files on this step yet.' });
  let up = null;
  let talk = null;
  const filesSection = h('section', { class: 'pane-section', 'aria-label': 'Files of this step' }, h('h3', { text: 'Files' }), fileList, fileEmpty);
  const talkSection = h('section', { class: 'pane-section', 'aria-label': 'Discussion of this step' }, h('h3', { text: 'Discussion' }));
  const body = h('div', { class: 'pane-body' });
  const el = h('aside', { class: 'task-pane', 'aria-labelledby': headingId },
    h('div', { class: 'pane-head' }, back, heading, badges, doneBtn), changedNote, body);

  const renderVisibility = () => {
    const p = session.perm();
    if (task.visibility === 'internal') {
      const share = p.write && p.internal ? h('button', {
        type: 'button', class: 'ghost', text: 'Share with the customer',
        on: {
          click: async () => {
            if (!confirm('Share this step with the customer? A shared step cannot be made internal again.')) return;
            try {
              await session.run((api, base) => api.patch(`${base}/tasks/${enc(task.id)}`, { visibility: 'shared' }));
            } catch (err) {
              toast(errorText(err), { kind: 'error' });
            }
          },
        },
      }) : null;
      fill(visBox, h('p', {}, internalBadge(), ' Only your team sees this step, its files and its discussion.'), share);
    } else if (!st.customer) {
      fill(visBox, h('p', { class: 'muted small', text: 'Shared: the customer sees this step. (A shared step cannot become internal again.)' }));
    } else visBox.replaceChildren();
  };

  const update = () => {
    const t = st.tasks.get(taskId);
    if (!t) {
      const gone = st.deletedTasks.get(taskId);
      heading.textContent = gone ? `“${gone}” was deleted` : 'Step not found';
      badges.replaceChildren();
      doneBtn.hidden = true;
      fill(body, h('p', { class: 'empty', text: gone ? 'Someone deleted this step. Its history stays in the timeline.' : 'This step does not exist, or you cannot see it.' }));
      task = null;
      return;
    }
    const first = !task || body.childElementCount === 0 || !form.isConnected;
    const changed = task && JSON.stringify(t) !== shownSig;
    task = t;
    const p = session.perm();
    heading.textContent = t.title;
    const info = dueInfo(t.due, t.status);
    fill(badges, 
      t.visibility === 'internal' ? internalBadge() : null,
      h('span', { class: ['status', `status-${t.status}`], text: STATUSES[t.status] }),
      info ? h('span', { class: ['due', info.overdue && 'overdue'], text: info.label }) : null,
      commitment(session, t));
    doneBtn.hidden = !p.write;
    fill(doneBtn, t.status === 'done' ? 'Reopen this step' : '✓ Mark as done');
    meta.textContent = `Added by ${st.name(t.created_by)} ${fmtAgo(t.created_at)} · changed ${fmtAgo(t.updated_at)}`;
    if (first) {
      up = p.write ? uploader(session, { taskId, internal: t.visibility === 'internal' }) : null;
      talk = threads(session, { taskId, internal: t.visibility === 'internal', title: 'Discussion of this step', empty: 'No discussion on this step yet.' });
      fill(filesSection, h('h3', { text: 'Files' }), fileList, fileEmpty, up ? up.el : null);
      fill(talkSection, h('h3', { text: 'Discussion' }), talk.el);
      fill(body, form, filesSection, talkSection);
      fillForm();
    } else if (changed) {
      if (dirty() && document.activeElement && form.contains(document.activeElement)) {
        fill(changedNote, `This step was just changed by someone else. `,
          h('button', { type: 'button', class: 'link', text: 'Show the latest', on: { click: fillForm } }));
        changedNote.hidden = false;
      } else fillForm();
    }
    renderVisibility();
    const fs = st.filesOf(taskId);
    reconcile(fileList, files, fs, (a) => a.id, fileRow(session));
    fileEmpty.hidden = fs.length > 0;
    talk.update();
  };

  return {
    el,
    update,
    focus: () => heading.focus(),
  };
}
