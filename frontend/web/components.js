// components.js: the parts the room's views share: badges, people chips,
// the message composer (with @-mentions, internal notes and attachments),
// discussion threads, and file upload and download.

import {
  h, field, icon, reconcile, simple, toast, errorText, fmtAgo, fmtDateTime, fmtBytes, initials, plural, fill,
} from './dom.js';
import { mentionBox, richText } from './mention.js';

// ---------------------------------------------------------------------------
// Small pieces.

/** internalBadge marks an item only the selling team sees. */
export function internalBadge(short) {
  return h('span', { class: 'badge badge-internal', title: 'Internal: only your team sees this, never the customer' },
    icon('lock'), short ? 'Internal' : 'Internal · team only');
}

export function sharedBadge() {
  return h('span', { class: 'badge badge-shared', title: 'Shared: the customer sees this too' }, icon('people'), 'Shared with customer');
}

export function avatar(name, kind, extra) {
  return h('span', { class: ['avatar', kind === 'customer' ? 'avatar-customer' : 'avatar-team', extra], 'aria-hidden': 'true', text: initials(name) });
}

let viewerKind = 'staff';

/** setViewer tells whose eyes the labels are for: staff read "Team", customers "Seller". */
export function setViewer(kind) {
  viewerKind = kind;
}

/** sideText names the side of a person of the given kind. */
export function sideText(kind) {
  if (kind === 'customer') return 'Customer';
  return viewerKind === 'staff' ? 'Team' : 'Seller';
}

/** sideLabel names which side a person is on. */
export function sideLabel(kind) {
  return h('span', { class: ['side', kind === 'customer' ? 'side-customer' : 'side-team'], text: sideText(kind) });
}

/** personChip shows a member by name with their side. */
export function personChip(state, userId) {
  const m = state.member(userId);
  const name = state.name(userId);
  const kind = m ? m.kind : 'staff';
  return h('span', { class: ['person', kind === 'customer' ? 'person-customer' : 'person-team'] },
    avatar(name, kind, 'small'), h('span', { class: 'person-name', text: name }),
    h('span', { class: 'visually-hidden', text: ` (${sideText(kind).toLowerCase()})` }));
}

/** mentionables returns the members who can be mentioned in an item of the given visibility. */
export function mentionables(state, internal) {
  return [...state.members.values()].filter((m) => m.user_id !== state.me.user_id && (!internal || m.kind === 'staff'));
}

/** typingNames lists who is typing in the room (or under one task). */
export function typingNames(session, taskId) {
  return session.presence
    .filter((p) => p.state === 'typing' && p.user_id !== session.me.user_id && (taskId === undefined || (p.task_id || null) === taskId))
    .map((p) => p.name || session.state.name(p.user_id));
}

// ---------------------------------------------------------------------------
// The composer.

/**
 * composer writes a message: to the room (taskId null), under a task, or
 * as a reply (parentId). internal: whether the thread or task is internal,
 * which makes the message internal whatever is chosen.
 */
export function composer(session, { taskId = null, parentId = null, internal = false, label = 'Message', placeholder = 'Write a message… Type @ to mention someone', onDone } = {}) {
  const st = session.state;
  const staff = session.me.kind === 'staff';
  const area = h('textarea', { rows: parentId ? 2 : 3, placeholder, maxLength: 10000, required: true });
  const internalBox = h('input', { type: 'checkbox', checked: internal, disabled: internal });
  const attachments = [];
  const fileInput = h('input', { type: 'file', multiple: true, class: 'visually-hidden', tabIndex: -1 });
  const chips = h('ul', { class: 'upload-chips', 'aria-label': 'Files to send' });
  const typing = h('p', { class: 'typing', 'aria-live': 'off' });
  const post = h('button', { type: 'submit', class: 'primary', text: parentId ? 'Reply' : 'Post' });
  const form = h('form', { class: ['composer', internal && 'is-internal'], novalidate: true });

  const isInternal = () => internal || (staff && internalBox.checked);
  const refreshLook = () => form.classList.toggle('is-internal', isInternal());
  let typingSent = 0;
  internalBox.addEventListener('change', () => {
    refreshLook();
    // Typing goes on, now as an internal note or a shared message:
    // customers must learn of the first only as viewing.
    if (typingSent) session.setPresence('typing', taskId || undefined, isInternal());
  });

  const list = mentionBox(area, () => mentionables(st, isInternal()));
  let idleTimer = 0;
  area.addEventListener('input', () => {
    const now = Date.now();
    if (now - typingSent > 3000) {
      typingSent = now;
      session.setPresence('typing', taskId || undefined, isInternal());
    }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      typingSent = 0;
      session.setPresence('viewing', session.viewingTask || undefined);
    }, 4000);
  });
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  const attachBtn = h('button', { type: 'button', class: 'ghost', on: { click: () => fileInput.click() } }, icon('clip'), 'Attach file');
  fileInput.addEventListener('change', () => {
    for (const file of fileInput.files) {
      const item = { file, done: false, id: null };
      const bar = h('progress', { max: 100, value: 0, 'aria-label': `Uploading ${file.name}` });
      const up = session.api.upload(session.id, file, {
        visibility: isInternal() ? 'internal' : 'shared', taskId: taskId || undefined,
        onProgress: (n, total) => { bar.value = Math.round((100 * n) / total); },
      });
      const remove = h('button', { type: 'button', class: 'icon-button', 'aria-label': `Remove ${file.name}`, text: '×' });
      item.el = h('li', { class: 'upload-chip' }, icon('file'), h('span', { text: file.name }), bar, remove);
      remove.addEventListener('click', () => {
        up.abort();
        attachments.splice(attachments.indexOf(item), 1);
        item.el.remove();
      });
      attachments.push(item);
      chips.append(item.el);
      up.promise.then((att) => {
        item.done = true;
        item.id = att.id;
        bar.replaceWith(h('span', { class: 'muted', text: fmtBytes(att.size) }));
        session.catchUp().catch(() => {});
      }, (err) => {
        if (err.code !== 'aborted') toast(`${file.name}: ${errorText(err)}`, { kind: 'error' });
        attachments.splice(attachments.indexOf(item), 1);
        item.el.remove();
      });
    }
    fileInput.value = '';
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = area.value.trim();
    if (!body) {
      area.focus();
      return;
    }
    if (attachments.some((a) => !a.done)) {
      toast('Wait until the files are uploaded.');
      return;
    }
    const draft = { body };
    if (parentId) draft.parent_id = parentId;
    else if (taskId) draft.task_id = taskId;
    if (!parentId && staff) draft.visibility = isInternal() ? 'internal' : 'shared';
    if (attachments.length) draft.attachments = attachments.map((a) => a.id);
    post.disabled = true;
    try {
      const msg = await session.run((api, base) => api.post(`${base}/messages`, draft));
      // Cleared only if it still holds what was sent: what was typed while
      // the message was on its way is kept.
      if (area.value.trim() === body) area.value = '';
      attachments.length = 0;
      chips.replaceChildren();
      session.setPresence('viewing', session.viewingTask || undefined);
      clearTimeout(idleTimer);
      typingSent = 0;
      warnUnresolved(msg);
      onDone?.(msg);
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    } finally {
      post.disabled = false;
    }
  });

  const internalLabel = internal
    ? h('p', { class: 'internal-note' }, internalBadge(), ' Only your team sees this thread.')
    : staff && !parentId
      ? h('label', { class: 'check internal-toggle' }, internalBox, h('span', { text: 'Internal note (only your team sees it)' }))
      : null;
  form.append(field(label, area), list, chips, typing,
    h('div', { class: 'composer-actions' }, internalLabel, h('span', { class: 'spacer' }), fileInput, attachBtn, post));

  return {
    el: form,
    focus: () => area.focus(),
    /** update shows who else is typing here. */
    update() {
      const names = typingNames(session, taskId);
      typing.textContent = names.length ? `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…` : '';
    },
  };
}

/** warnUnresolved tells the writer at once about mentions that reached no one. */
export function warnUnresolved(result) {
  const miss = result && result.unresolved_mentions;
  if (miss && miss.length) {
    toast(`Not notified: ${miss.map((n) => `@${n}`).join(', ')} (not in this room, or a customer in an internal item).`, { kind: 'error', timeout: 9000 });
  }
}

// ---------------------------------------------------------------------------
// Messages and threads.

function mentionNames(st, msg) {
  return (msg.mentions || []).map((u) => st.name(u)).concat([...st.members.values()].map((m) => m.name));
}

/**
 * seenLine says who has seen the item with this id ("Seen by Ann, Bob"),
 * by the members' read markers; null when nobody has or its seq is not
 * known here. The names are of the room's members this user sees.
 */
export function seenLine(st, id, authorId, internal) {
  const names = st.seenBy(st.seqOf.get(id), authorId, internal);
  if (!names.length) return null;
  return h('p', { class: 'seen-by muted small', text: `Seen by ${names.join(', ')}` });
}

/** seenSig is what seenLine shows, to tell when an item must be drawn again. */
export function seenSig(st, id, authorId, internal) {
  return st.seenBy(st.seqOf.get(id), authorId, internal).join(',');
}

/** messageItem is one message, with edit and delete for those allowed. */
function messageItem(session, msg, { onReply } = {}) {
  const st = session.state;
  let editing = false;
  const c = { el: h('article'), msg };
  const canEdit = () => !c.msg.deleted && c.msg.author === session.me.user_id && session.perm().write;
  const canDelete = () => !c.msg.deleted && session.perm().write &&
    (c.msg.author === session.me.user_id || session.perm().manage);

  const render = () => {
    const m = c.msg;
    const author = st.member(m.author);
    const kind = author ? author.kind : 'staff';
    const files = (m.attachments || []).map((id) => st.attachments.get(id)).filter(Boolean);
    const el = h('article', { class: ['msg', m.visibility === 'internal' && 'is-internal', m.deleted && 'is-deleted'], dataset: { id: m.id } },
      h('header', { class: 'msg-head' },
        avatar(m.author_name || st.name(m.author), kind),
        h('strong', { class: 'msg-author', text: m.author_name || st.name(m.author) }),
        sideLabel(kind),
        h('time', { dateTime: m.created_at, title: fmtDateTime(m.created_at), text: fmtAgo(m.created_at) }),
        m.edited_at && !m.deleted ? h('span', { class: 'muted', text: '(edited)' }) : null,
        m.visibility === 'internal' ? internalBadge(true) : null),
      m.deleted
        ? h('p', { class: 'msg-body muted', text: 'This message was deleted.' })
        : h('div', { class: 'msg-body' }, richText(m.body, mentionNames(st, m))),
      files.length ? h('ul', { class: 'file-chips' }, files.map((a) => h('li', {}, downloadButton(session, a)))) : null,
      m.deleted ? null : seenLine(st, m.id, m.author, m.visibility === 'internal'),
      h('div', { class: 'msg-actions' },
        onReply && !m.deleted && session.perm().write ? h('button', { type: 'button', class: 'link', text: 'Reply', on: { click: onReply } }) : null,
        canEdit() ? h('button', { type: 'button', class: 'link', text: 'Edit', on: { click: startEdit } }) : null,
        canDelete() ? h('button', { type: 'button', class: 'link danger', text: 'Delete', on: { click: remove } }) : null));
    return el;
  };

  const startEdit = () => {
    editing = true;
    const area = h('textarea', { rows: 3, value: c.msg.body, maxLength: 10000 });
    const list = mentionBox(area, () => mentionables(st, c.msg.visibility === 'internal'));
    const form = h('form', { class: 'msg-edit' }, field('Edit message', area), list,
      h('div', { class: 'composer-actions' },
        h('button', { type: 'button', class: 'ghost', text: 'Cancel', on: { click: stopEdit } }),
        h('button', { type: 'submit', class: 'primary', text: 'Save' })));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const res = await session.run((api, base) => api.patch(`${base}/messages/${encodeURIComponent(c.msg.id)}`, { body: area.value.trim() }));
        warnUnresolved(res);
        stopEdit();
      } catch (err) {
        toast(errorText(err), { kind: 'error' });
      }
    });
    c.el.querySelector('.msg-body')?.replaceWith(form);
    c.el.querySelector('.msg-actions')?.remove();
    area.focus();
  };
  const stopEdit = () => {
    editing = false;
    const next = render();
    c.el.replaceWith(next);
    c.el = next;
  };
  const remove = async () => {
    if (!confirm('Delete this message? A note that it was deleted stays in the thread.')) return;
    try {
      await session.run((api, base) => api.del(`${base}/messages/${encodeURIComponent(c.msg.id)}`));
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  };

  c.el = render();
  let sig = JSON.stringify(msg);
  c.update = (m) => {
    c.msg = m;
    const s = JSON.stringify(m) + st.attachments.size + st.members.size + seenSig(st, m.id, m.author, m.visibility === 'internal');
    if (editing || s === sig) return;
    sig = s;
    const next = render();
    c.el.replaceWith(next);
    c.el = next;
  };
  return c;
}

/** threadItem is a thread root with its replies and a reply box. */
function threadItem(session, root) {
  const st = session.state;
  const replies = new Map();
  const list = h('ol', { class: 'replies' });
  let replyBox = null;
  const rootItem = messageItem(session, root, { onReply: () => openReply() });
  const el = h('li', { class: ['thread', root.visibility === 'internal' && 'is-internal'] }, rootItem.el, list);
  const slot = h('div', { class: 'reply-slot' });
  el.append(slot);

  const openReply = () => {
    if (!replyBox) {
      replyBox = composer(session, {
        parentId: root.id, taskId: root.task_id || null, internal: root.visibility === 'internal',
        label: `Reply to ${root.author_name}`, placeholder: 'Write a reply…',
        onDone: () => { replyBox.el.remove(); replyBox = null; },
      });
      slot.append(replyBox.el);
    }
    replyBox.focus();
  };

  const c = {
    el,
    update(r) {
      rootItem.update(r);
      if (el.firstChild !== rootItem.el) el.replaceChild(rootItem.el, el.firstChild);
      const rs = st.replies(r.id);
      reconcile(list, replies, rs, (m) => m.id, (m) => {
        const item = messageItem(session, m);
        const li = h('li', {}, item.el);
        return {
          el: li,
          update(x) {
            item.update(x);
            if (li.firstChild !== item.el) fill(li, item.el);
          },
        };
      });
      list.hidden = rs.length === 0;
      replyBox?.update();
    },
  };
  c.update(root);
  return c;
}

/**
 * threads shows the discussion of the room (taskId null) or of one task:
 * its threads, oldest first, and a box to start a new one.
 */
export function threads(session, { taskId = null, internal = false, title = 'Discussion', empty = 'No messages yet. Start the conversation below.' } = {}) {
  const st = session.state;
  const items = new Map();
  const list = h('ol', { class: 'threads', 'aria-label': title });
  const emptyEl = h('p', { class: 'empty', text: empty });
  const box = session.perm().write
    ? composer(session, { taskId, internal, label: taskId ? 'Add to the discussion of this step' : 'New message' })
    : null;
  const el = h('div', { class: 'discussion' }, list, emptyEl,
    box ? box.el : h('p', { class: 'muted', text: 'You have read access: you can follow the discussion but not post.' }));
  return {
    el,
    update() {
      const roots = st.roots(taskId);
      reconcile(list, items, roots, (m) => m.id, (m) => threadItem(session, m));
      emptyEl.hidden = roots.length > 0;
      box?.update();
    },
  };
}

// ---------------------------------------------------------------------------
// Files.

/** downloadButton downloads an attachment with the token, showing progress. */
export function downloadButton(session, att) {
  const label = h('span', { text: att.name });
  const btn = h('button', { type: 'button', class: 'file-link', title: `Download ${att.name} (${fmtBytes(att.size)})` },
    icon('file'), label, h('span', { class: 'muted', text: ` ${fmtBytes(att.size)}` }));
  btn.addEventListener('click', async () => {
    if (btn.disabled) return;
    btn.disabled = true;
    const prog = h('progress', { max: 100, value: 0, 'aria-label': `Downloading ${att.name}` });
    btn.append(prog);
    try {
      await session.api.download(session.id, att, (n, total) => { if (total) prog.value = Math.round((100 * n) / total); });
    } catch (err) {
      toast(`${att.name}: ${errorText(err)}`, { kind: 'error' });
    } finally {
      prog.remove();
      btn.disabled = false;
    }
  });
  return btn;
}

/** fileRow is one attachment in a list of files. */
export const fileRow = (session) => simple((a) => {
  const st = session.state;
  const task = a.task_id ? st.tasks.get(a.task_id) : null;
  return h('li', { class: ['file', a.visibility === 'internal' && 'is-internal'] },
    downloadButton(session, a),
    h('span', { class: 'file-meta' },
      `${st.name(a.uploaded_by)} · `, h('time', { dateTime: a.created_at, text: fmtAgo(a.created_at) }),
      task ? h('span', {}, ' · on ', h('a', { href: `/room/${encodeURIComponent(session.id)}/task/${encodeURIComponent(task.id)}`, text: task.title })) : null),
    a.visibility === 'internal' ? internalBadge(true) : null);
}, (a) => JSON.stringify(a) + (a.task_id ? session.state.tasks.get(a.task_id)?.title : '') + session.state.members.size);

/**
 * uploader picks files (button or drop) and uploads them with a progress
 * bar each; staff choose whether the files are internal.
 */
export function uploader(session, { taskId = null, internal = false } = {}) {
  const staff = session.me.kind === 'staff';
  const input = h('input', { type: 'file', multiple: true });
  const vis = h('select', {}, h('option', { value: 'shared', text: 'Shared with the customer' }), h('option', { value: 'internal', text: 'Internal (team only)' }));
  if (internal) {
    vis.value = 'internal';
    vis.disabled = true;
  }
  const progress = h('ul', { class: 'uploads', 'aria-live': 'polite' });
  const zone = h('div', { class: 'dropzone' },
    field(taskId ? 'Attach files to this step' : 'Upload files', input, 'Drop files here or choose them. Up to the server\'s size limit (25 MB by default).'),
    staff ? field('Who sees the files', vis) : null, progress);

  const start = (files) => {
    for (const file of files) {
      const bar = h('progress', { max: 100, value: 0, 'aria-label': `Uploading ${file.name}` });
      const pct = h('span', { class: 'muted', text: '0%' });
      const cancel = h('button', { type: 'button', class: 'link', text: 'Cancel' });
      const li = h('li', { class: 'upload' }, h('span', { class: 'upload-name', text: file.name }), bar, pct, cancel);
      progress.append(li);
      const up = session.api.upload(session.id, file, {
        visibility: staff ? vis.value : 'shared', taskId: taskId || undefined,
        onProgress: (n, total) => {
          const p = Math.round((100 * n) / total);
          bar.value = p;
          pct.textContent = `${p}%`;
        },
      });
      cancel.addEventListener('click', () => up.abort());
      up.promise.then(async () => {
        bar.value = 100;
        pct.textContent = 'Uploaded';
        cancel.remove();
        await session.catchUp().catch(() => {});
        setTimeout(() => li.remove(), 1500);
      }, (err) => {
        pct.textContent = err.code === 'aborted' ? 'Cancelled' : errorText(err);
        pct.className = err.code === 'aborted' ? 'muted' : 'error-text';
        cancel.remove();
        setTimeout(() => li.remove(), err.code === 'aborted' ? 1500 : 10000);
      });
    }
    input.value = '';
  };
  input.addEventListener('change', () => start([...input.files]));
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    if (e.dataTransfer?.files?.length) start([...e.dataTransfer.files]);
  });
  return { el: zone };
}

/** countLabel: "3 files". */
export const countLabel = plural;

/**
 * planHealth shows how a room's shared plan keeps its dates (the server's
 * figures: on time, slipped, unconfirmed, overdue).
 */
export function planHealth(health) {
  if (!health || !health.dated) return h('span', { class: 'plan-health muted small', dataset: { fk: 'health' }, text: 'No dated shared steps' });
  const part = (n, label, cls) => (n ? h('span', { class: ['health-part', cls], text: ` ${n} ${label}` }) : null);
  return h('span', { class: 'plan-health small', dataset: { fk: 'health', score: String(health.score) }, title: 'Shared steps with a date' },
    h('strong', { text: `Plan ${health.score}% on time` }), ' ·',
    part(health.on_time, 'on time', 'ok'), part(health.slipped, 'slipped', 'warn'),
    part(health.unconfirmed, 'unconfirmed', 'muted'), part(health.overdue, 'overdue', 'bad'));
}

/**
 * healthOf works out a plan's health from its steps, as the server does
 * (room.HealthOf): each shared step with a date counts once, as overdue
 * (not done, its day passed), else slipped (its date moved later after it
 * was confirmed), else unconfirmed (not done, its date not confirmed),
 * else on time; the score is the share on time. The room page keeps it
 * live from the steps it holds; the pipeline gets the server's figures.
 */
export function healthOf(tasks, today = todayUTC()) {
  const hl = { steps: 0, dated: 0, on_time: 0, slipped: 0, unconfirmed: 0, overdue: 0 };
  for (const t of tasks) {
    if (t.visibility !== 'shared') continue;
    hl.steps++;
    if (!t.due) continue;
    hl.dated++;
    const c = t.commitment;
    if (t.status !== 'done' && t.due < today) hl.overdue++;
    else if (c && c.slips > 0) hl.slipped++;
    else if (t.status !== 'done' && (!c || c.state !== 'confirmed')) hl.unconfirmed++;
    else hl.on_time++;
  }
  if (hl.dated) hl.score = Math.floor((100 * hl.on_time + Math.floor(hl.dated / 2)) / hl.dated);
  return hl;
}

/** todayUTC is today's date in UTC, as YYYY-MM-DD (the server's day). */
function todayUTC() {
  return new Date().toISOString().slice(0, 10);
}

