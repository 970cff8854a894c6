// views/me.js: what is addressed to me across rooms: my tasks (made for
// the phone: follow them and tick them off) and my inbox of mentions,
// assignments and invitations. Both follow my rooms live.

import { h, icon, toast, errorText, dueInfo, daysFromToday, fmtAgo, fmtDateTime, STATUSES, fill } from '../dom.js';
import { enc } from '../api.js';
import { internalBadge } from '../components.js';

const MAX_WATCHED = 30;

/**
 * watchRooms follows my rooms live, starting after each room's head as
 * listed (the lists shown were read after that). Returns a stop function.
 */
function watchRooms(ctx, rooms, onEvents) {
  const last = new Map(rooms.map((r) => [r.id, r.head || 0]));
  const subs = rooms.slice(0, MAX_WATCHED).map((r) => ctx.sync.subscribe(r.id, {
    after: () => last.get(r.id),
    onEvents: (events) => {
      const fresh = events.filter((e) => e.seq > last.get(r.id)).sort((a, b) => a.seq - b.seq);
      if (!fresh.length) return;
      last.set(r.id, fresh[fresh.length - 1].seq);
      onEvents(r.id, fresh);
    },
  }));
  return () => subs.forEach((s) => s.close());
}

const FILTERS = [['todo', 'To do'], ['done', 'Done'], ['all', 'All']];

export function myTasksView(ctx) {
  ctx.setTitle('My tasks');
  const me = ctx.me;
  let filter = 'todo';
  let tasks = null; // id → task
  let roomNames = new Map();
  let stop = () => {};
  let destroyed = false;
  const status = h('p', { class: 'muted', role: 'status', text: 'Loading your tasks…' });
  const groups = h('div', { class: 'mytask-groups' });
  const filters = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Show' }, FILTERS.map(([v, l]) => h('button', {
    type: 'button', text: l, 'aria-pressed': String(filter === v),
    on: {
      click: (e) => {
        filter = v;
        for (const b of filters.children) b.setAttribute('aria-pressed', String(b === e.currentTarget));
        render();
      },
    },
  })));

  // A task completed here stays in the "To do" list until the page is left,
  // struck through, so a mistaken tick is easy to undo.
  const justDone = new Set();

  /** put keeps the newest state of a task (a change made here may arrive again as an older event). */
  const put = (t) => {
    const old = tasks.get(t.id);
    if (!old || old.updated_at <= t.updated_at) tasks.set(t.id, t);
  };

  const complete = async (t, box) => {
    const status = box.checked ? 'done' : 'open';
    box.disabled = true;
    try {
      const res = await ctx.api.patch(`/rooms/${enc(t.room_id)}/tasks/${enc(t.id)}`, { status });
      if (status === 'done') justDone.add(t.id);
      else justDone.delete(t.id);
      put(res);
      render();
      if (status === 'done') {
        toast(`Done: “${t.title}”.`, {
          kind: 'ok',
          action: {
            label: 'Undo',
            run: async () => {
              try {
                put(await ctx.api.patch(`/rooms/${enc(t.room_id)}/tasks/${enc(t.id)}`, { status: t.status === 'done' ? 'open' : t.status }));
                render();
              } catch (err) {
                toast(errorText(err), { kind: 'error' });
              }
            },
          },
        });
      }
    } catch (err) {
      box.checked = !box.checked;
      toast(errorText(err), { kind: 'error' });
    } finally {
      box.disabled = false;
    }
  };

  const item = (t) => {
    const info = dueInfo(t.due, t.status);
    const box = h('input', { type: 'checkbox', checked: t.status === 'done', 'aria-label': `Done: ${t.title}` });
    box.addEventListener('change', () => complete(t, box));
    return h('li', { class: ['mytask', t.status === 'done' && 'is-done', info?.overdue && 'is-overdue', t.visibility === 'internal' && 'is-internal'], dataset: { id: t.id } },
      h('label', { class: 'bigcheck' }, box, h('span', { class: 'visually-hidden', text: 'Done' })),
      h('div', { class: 'mytask-main' },
        h('a', { href: `/room/${enc(t.room_id)}/task/${enc(t.id)}`, class: 'mytask-title', text: t.title }),
        h('span', { class: 'mytask-room', text: roomNames.get(t.room_id) || 'Room' }),
        h('span', { class: 'mytask-meta' },
          info ? h('span', { class: ['due', info.overdue && 'overdue', info.soon && 'soon'], text: info.label }) : h('span', { class: 'muted', text: 'No due date' }),
          t.status !== 'open' && t.status !== 'done' ? h('span', { class: ['status', `status-${t.status}`], text: STATUSES[t.status] }) : null,
          t.visibility === 'internal' ? internalBadge(true) : null)));
  };

  const render = () => {
    if (!tasks) return;
    const all = [...tasks.values()].filter((t) => (t.assignees || []).includes(me.user_id))
      .filter((t) => filter === 'all' || (filter === 'done' ? t.status === 'done' : t.status !== 'done' || justDone.has(t.id)))
      .sort((a, b) => (a.due || '9999') < (b.due || '9999') ? -1 : (a.due || '9999') > (b.due || '9999') ? 1 : (a.title < b.title ? -1 : 1));
    const buckets = [['Overdue', []], ['Today', []], ['This week', []], ['Later', []], ['No due date', []], ['Done', []]];
    for (const t of all) {
      if (t.status === 'done') { buckets[5][1].push(t); continue; }
      if (!t.due) { buckets[4][1].push(t); continue; }
      const n = daysFromToday(t.due);
      buckets[n < 0 ? 0 : n === 0 ? 1 : n < 7 ? 2 : 3][1].push(t);
    }
    fill(groups, ...buckets.filter(([, ts]) => ts.length).map(([label, ts]) => h('section', { class: ['mytask-group', label === 'Overdue' && 'group-overdue'], 'aria-label': label },
      h('h2', {}, h('span', { text: label }), h('span', { class: 'count', text: String(ts.length) })),
      h('ul', { class: 'mytasks' }, ts.map(item)))));
    const open = [...tasks.values()].filter((t) => t.status !== 'done' && (t.assignees || []).includes(me.user_id)).length;
    status.textContent = all.length ? '' : filter === 'todo'
      ? (open ? '' : 'Nothing to do right now. New steps assigned to you show up here at once.')
      : 'Nothing here.';
  };
  (async () => {
    try {
      const rooms = await ctx.api.all('/rooms', { limit: 200 });
      roomNames = new Map(rooms.map((r) => [r.id, r.name]));
      const list = await ctx.api.all('/me/tasks', { limit: 500 });
      if (destroyed) return;
      tasks = new Map(list.map((t) => [t.id, t]));
      render();
      stop = watchRooms(ctx, rooms, (roomId, events) => {
        for (const e of events) {
          const d = e.data || {};
          if (e.type === 'task.created' || e.type === 'task.updated') {
            if ((d.assignees || []).includes(me.user_id) && !(me.kind !== 'staff' && d.visibility === 'internal')) put(d);
            else tasks.delete(d.id);
          } else if (e.type === 'task.deleted') tasks.delete(d.id);
          else if (e.type === 'member.removed' && d.user_id === me.user_id) {
            for (const t of [...tasks.values()]) if (t.room_id === roomId) tasks.delete(t.id);
          } else if (e.type === 'room.updated' && d.name) roomNames.set(roomId, d.name);
        }
        render();
      });
    } catch (err) {
      status.textContent = errorText(err);
    }
  })();

  const el = h('div', { class: 'page mytasks-page' },
    h('div', { class: 'page-head' }, h('h1', { text: 'My tasks' }), filters),
    h('p', { class: 'muted small', text: 'The steps you own in every room, soonest due first. Tick one off when it is done.' }),
    status, groups);
  return { el, destroy: () => { destroyed = true; stop(); } };
}

// ---------------------------------------------------------------------------

const KIND_ICON = { mention: '@', assignment: '✓', invitation: '+' };
const KIND_WORD = { mention: 'mentioned you', assignment: 'gave you a step', invitation: 'added you to a room' };

export function inboxView(ctx) {
  ctx.setTitle('Inbox');
  const me = ctx.me;
  let items = [];
  let cursor = null;
  let stop = () => {};
  let destroyed = false;
  const status = h('p', { class: 'muted', role: 'status', text: 'Loading your inbox…' });
  const list = h('ul', { class: 'inbox' });
  const more = h('button', { type: 'button', class: 'ghost', text: 'Show older', hidden: true });
  const markAll = h('button', { type: 'button', class: 'ghost', text: 'Mark all as read' });
  // Unread counts: the items here, and what is new in each room.
  const unreadCount = h('span', { class: 'badge unread inbox-count', hidden: true });
  const roomsNew = h('ul', { class: 'inbox-rooms', 'aria-label': 'Rooms with something new' });
  let roomList = [];
  const renderRooms = () => {
    const news = roomList.filter((r) => r.unread && r.unread.count > 0);
    fill(roomsNew, ...news.map((r) => h('li', {},
      h('a', { href: `/room/${enc(r.id)}`, text: r.name }), ' ',
      h('span', { class: 'badge unread', text: r.unread.more || r.unread.count > 99 ? '99+' : String(r.unread.count) }),
      h('span', { class: 'muted small', text: ' new in the room' }))));
    roomsNew.hidden = !news.length;
  };

  const target = (it) => {
    const r = `/room/${enc(it.room_id)}`;
    if (it.task_id) return `${r}/task/${enc(it.task_id)}`;
    if (it.message_id) return `${r}/discussion`;
    return r;
  };
  const markRead = async (it) => {
    if (it.read_at) return;
    it.read_at = new Date().toISOString();
    try {
      await ctx.api.request('POST', `/me/inbox/${enc(it.id)}/read`, { retries: 2 });
    } catch {
      // harmless: it stays unread on the server and shows again
    }
    ctx.refreshInbox();
  };
  const row = (it) => h('li', { class: ['inbox-item', !it.read_at && 'unread', it.visibility === 'internal' && 'is-internal'] },
    h('span', { class: ['inbox-icon', `kind-${it.kind}`], 'aria-hidden': 'true', text: KIND_ICON[it.kind] || '•' }),
    h('div', { class: 'inbox-main' },
      h('a', {
        href: target(it), class: 'inbox-title',
        on: { click: () => { markRead(it); } },
      }, !it.read_at ? h('span', { class: 'visually-hidden', text: 'Unread: ' }) : null, h('span', { text: it.title || 'Untitled' })),
      it.excerpt ? h('p', { class: 'inbox-excerpt', text: it.excerpt }) : null,
      h('p', { class: 'muted small' },
        h('span', { text: `${it.actor?.name || it.actor?.id || 'Someone'} ${KIND_WORD[it.kind] || ''}` }),
        it.room_name ? h('span', { text: ` · ${it.room_name}` }) : null,
        ' · ', h('time', { dateTime: it.at, title: fmtDateTime(it.at), text: fmtAgo(it.at) }),
        it.visibility === 'internal' ? [' ', internalBadge(true)] : null)),
    !it.read_at ? h('button', { type: 'button', class: 'link small', text: 'Mark read', on: { click: async () => { await markRead(it); render(); } } }) : null);

  const render = () => {
    fill(list, ...items.map(row));
    status.textContent = items.length ? '' : 'Nothing yet. When someone @mentions you, gives you a step or adds you to a room, it shows up here.';
    more.hidden = !cursor;
    markAll.hidden = !items.some((i) => !i.read_at);
    const unread = items.filter((i) => !i.read_at).length;
    unreadCount.hidden = !unread;
    unreadCount.textContent = `${unread}${cursor ? '+' : ''} unread`;
  };
  const loadFirst = async () => {
    const page = await ctx.api.get('/me/inbox', { limit: 50 });
    if (destroyed) return;
    items = page.items;
    cursor = page.next_cursor || null;
    render();
  };
  more.addEventListener('click', async () => {
    try {
      const page = await ctx.api.get('/me/inbox', { limit: 50, cursor });
      items = items.concat(page.items.filter((i) => !items.some((x) => x.id === i.id)));
      cursor = page.next_cursor || null;
      render();
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  });
  markAll.addEventListener('click', async () => {
    // The API marks one item at a time.
    for (const it of items.filter((i) => !i.read_at)) await markRead(it);
    render();
  });

  let reloadTimer = 0;
  (async () => {
    try {
      const rooms = await ctx.api.all('/rooms', { limit: 200 });
      roomList = rooms;
      renderRooms();
      await loadFirst();
      stop = watchRooms(ctx, rooms, (roomId, events) => {
        const forMe = events.some((e) => {
          const d = e.data || {};
          return (d.mentions || []).includes(me.user_id) || (d.assignees || []).includes(me.user_id) ||
            (e.type === 'member.added' && d.user_id === me.user_id);
        });
        if (forMe) {
          clearTimeout(reloadTimer);
          reloadTimer = setTimeout(() => loadFirst().catch(() => {}), 300);
        }
      });
    } catch (err) {
      status.textContent = errorText(err);
    }
  })();

  const el = h('div', { class: 'page inbox-page' },
    h('div', { class: 'page-head' }, h('h1', {}, icon('at'), ' Inbox', unreadCount), markAll),
    roomsNew, status, list, more);
  return { el, destroy: () => { destroyed = true; stop(); clearTimeout(reloadTimer); } };
}

// ---------------------------------------------------------------------------
// Notification settings: email overall and per room, the digest, the
// reminders and the time zone they count days in. Each change is saved at
// once: PUT /me/notifications answers the settings as they now stand,
// which the form then shows. Other settings of this page (a device's push
// notifications) go in sections of their own beside this one.

const DIGESTS = [['daily', 'Every day'], ['weekly', 'Every Monday'], ['off', 'Never']];

/** timeZones lists the IANA zones the browser knows, UTC first. */
function timeZones() {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf('timeZone');
  } catch {
    // an older browser: the person's own zone and UTC
  }
  const mine = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return ['UTC', ...new Set([mine, ...zones].filter((z) => z && z !== 'UTC'))];
}

/** emailSettings is the section of the email settings. */
function emailSettings(ctx) {
  let settings = null;
  let rooms = [];
  const status = h('p', { class: 'muted', role: 'status', text: 'Loading your settings…' });
  const body = h('div', { class: 'settings-email' });

  const save = async (change, control) => {
    control.disabled = true;
    try {
      settings = await ctx.api.put('/me/notifications', change);
      toast('Saved.', { kind: 'ok', timeout: 2000 });
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
    render();
  };
  const checkbox = (label, checked, change, hint) => {
    const box = h('input', { type: 'checkbox', checked });
    box.addEventListener('change', () => save(change(box.checked), box));
    return h('div', { class: 'field check' }, h('label', {}, box, ' ', h('span', { text: label })),
      hint ? h('p', { class: 'muted small', text: hint }) : null);
  };
  const select = (label, options, value, change) => {
    const sel = h('select', {}, options.map(([v, l]) => h('option', { value: v, text: l, selected: v === value })));
    sel.addEventListener('change', () => save(change(sel.value), sel));
    return h('div', { class: 'field' }, h('label', {}, h('span', { text: label }), ' ', sel));
  };

  const render = () => {
    if (!settings) return;
    const muted = new Set(settings.rooms.filter((r) => r.email === 'off').map((r) => r.room_id));
    const on = settings.email !== 'off';
    const zones = timeZones();
    if (!zones.includes(settings.timezone)) zones.push(settings.timezone);
    status.textContent = settings.address ? `Email goes to ${settings.address}.` : 'We have no email address for you yet: you get no email.';
    fill(body,
      checkbox('Email me about my rooms', on, (v) => ({ email: v ? 'instant' : 'off' }),
        'Mentions, steps given to you, replies in your threads and changed due dates, a couple of minutes later unless you saw them in the room.'),
      select('Digest of what I missed', DIGESTS, settings.digest, (v) => ({ digest: v })),
      checkbox('Reminders', settings.reminders !== 'off', (v) => ({ reminders: v ? 'on' : 'off' }),
        'The day before a step of yours is due, when it is overdue, and when a room you own has heard nothing from the customer for a while.'),
      select('Time zone of my reminders', zones.map((z) => [z, z.replaceAll('_', ' ')]), settings.timezone, (v) => ({ timezone: v })),
      h('fieldset', { class: 'settings-rooms', disabled: !on },
        h('legend', { text: 'Email per room' }),
        rooms.length ? rooms.map((r) => checkbox(r.name, !muted.has(r.id), (v) => ({ room_id: r.id, email: v ? 'instant' : 'off' })))
          : h('p', { class: 'muted small', text: 'You are in no room yet.' })));
  };

  (async () => {
    try {
      [settings, rooms] = await Promise.all([ctx.api.get('/me/notifications'), ctx.api.all('/rooms', { limit: 200 })]);
      render();
    } catch (err) {
      status.textContent = err.status === 404 ? 'This server sends no email.' : errorText(err);
    }
  })();
  return h('section', { class: 'settings-section', 'aria-label': 'Email' }, h('h2', { text: 'Email' }), status, body);
}

export function settingsView(ctx) {
  ctx.setTitle('Notifications');
  const el = h('div', { class: 'page settings-page' },
    h('div', { class: 'page-head' }, h('h1', { text: 'Notifications' })),
    emailSettings(ctx),
    h('section', { class: 'settings-section', 'aria-label': 'This device' }, pushToggle(ctx)));
  return { el };
}

// "Notify me on this device": Web Push. The browser subscribes with the
// server's VAPID key and the subscription is posted to the server, which
// then pushes what it would email at once (a mention, a step given to me,
// a reply in my thread, my step's moved due date);
// the service worker (/sw.js) shows it and a tap opens the item. Off
// deletes the subscription on the server and unsubscribes the browser.
// Shown only where the browser can and the server pushes.

/** keyBytes decodes an unpadded base64url key. */
function keyBytes(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function sameBytes(a, b) {
  if (!a || !b) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const PUSH_BLOCKED = 'Notifications are blocked for this site: allow them in the browser’s site settings.';

export function pushToggle(ctx) {
  const box = h('input', { type: 'checkbox', disabled: true });
  const note = h('span', { class: 'muted small', role: 'status' });
  const el = h('div', { class: 'push-toggle', hidden: true },
    h('label', {}, box, ' Notify me on this device'), ' ', note);
  const supported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  let reg = null;
  let key = '';

  /** mine lists my devices at the server with this browser's endpoint. */
  const mine = async (endpoint) => (await ctx.api.get('/me/push-subscriptions')).subscriptions
    .filter((s) => s.endpoint === endpoint);

  const turnOn = async () => {
    if (await Notification.requestPermission() !== 'granted') throw new Error(PUSH_BLOCKED);
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameBytes(sub.options?.applicationServerKey, keyBytes(key))) {
      await sub.unsubscribe(); // made with another server key: useless now
      sub = null;
    }
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
    const j = sub.toJSON();
    await ctx.api.post('/me/push-subscriptions', { endpoint: j.endpoint, keys: { p256dh: j.keys.p256dh, auth: j.keys.auth } });
  };
  const turnOff = async () => {
    const sub = await reg.pushManager.getSubscription();
    if (!sub) return;
    for (const s of await mine(sub.endpoint)) await ctx.api.del(`/me/push-subscriptions/${enc(s.id)}`);
    await sub.unsubscribe();
  };

  box.addEventListener('change', async () => {
    const on = box.checked;
    box.disabled = true;
    note.textContent = on ? 'Turning on…' : 'Turning off…';
    try {
      if (on) await turnOn();
      else await turnOff();
      note.textContent = on ? 'On: mentions, steps given to you, replies in your threads and moved due dates reach this device.' : 'Off on this device.';
    } catch (err) {
      box.checked = !on;
      note.textContent = errorText(err);
    } finally {
      box.disabled = false;
    }
  });

  (async () => {
    if (!supported) return;
    try {
      key = (await ctx.api.get('/push/key')).public_key;
    } catch {
      return; // the server does not push
    }
    el.hidden = false;
    try {
      reg = await navigator.serviceWorker.register('/sw.js');
      const sub = await reg.pushManager.getSubscription();
      box.checked = !!sub && Notification.permission === 'granted' && (await mine(sub.endpoint)).length > 0;
      box.disabled = false;
      if (Notification.permission === 'denied') note.textContent = PUSH_BLOCKED;
    } catch (err) {
      note.textContent = errorText(err);
    }
  })();
  return el;
}
