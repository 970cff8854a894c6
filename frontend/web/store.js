// store.js: a room's state on this device and how it changes. The state is
// a REST snapshot plus the room's events applied in seq order; every event
// carries the new state of what it changed, so applying one is an upsert
// and applying it twice changes nothing. RoomSession loads the snapshot,
// catches up to the newest event, follows the room live over the
// websocket and tells the views when something changed, once per batch.

import { enc } from './api.js';
import { mapLimit } from './dom.js';

const POLL_MS = 15000; // while the live connection is down
const READ_EVERY_MS = 1000; // the shortest time between two read markers sent
// Rooms of up to this many events load their history when opened, so that
// "seen by" knows the seq of every item; in longer ones it shows for the
// items changed since the page opened (and all once the timeline is read).
const HISTORY_FOR_SEEN = 2000;

/** RoomState is everything this device knows about one room. */
export class RoomState {
  constructor(me) {
    this.me = me;
    this.customer = me.kind !== 'staff';
    this.room = null;
    this.members = new Map();
    this.tasks = new Map();
    this.messages = new Map();
    this.attachments = new Map();
    this.invites = new Map();
    this.timeline = new Map(); // seq → event, every event seen
    this.deletedTasks = new Map(); // id → title
    this.lastSeq = 0;
    this.removed = false;
    this.seqOf = new Map(); // item id → seq of the event that made or last changed it (as far as seen here)
    this.reads = new Map(); // user id → {seq, at}: how far each member has seen the room
  }

  /** setRead records a member's read marker; markers only move forward. False when it changed nothing. */
  setRead(userId, seq, at) {
    const old = this.reads.get(userId);
    if (old && old.seq >= seq) return false;
    this.reads.set(userId, { seq, at });
    return true;
  }

  /**
   * seenBy names the members who have seen the item at seq (their marker
   * is at it or past it), other than its author and this user; for an
   * internal item, staff only (a customer's marker past it does not mean
   * they saw it: it was never theirs to see); [] when the item's seq is
   * not known here.
   */
  seenBy(seq, authorId, internal = false) {
    if (!seq) return [];
    const out = [];
    for (const [id, r] of this.reads) {
      if (r.seq < seq || id === authorId || id === this.me.user_id) continue;
      const m = this.members.get(id);
      if (m && !(internal && m.kind !== 'staff')) out.push(m.name);
    }
    return out.sort();
  }

  /** hidden tells whether an item must not reach this user (a second guard behind the server's). */
  hidden(item) {
    return this.customer && item && item.visibility === 'internal';
  }

  /** reset replaces everything with a snapshot whose events end at seq. */
  reset({ room, members, tasks, messages, attachments, invites, seq }) {
    this.room = room;
    this.members = new Map(members.map((m) => [m.user_id, m]));
    this.tasks = new Map(tasks.filter((t) => !this.hidden(t)).map((t) => [t.id, t]));
    this.messages = new Map(messages.filter((m) => !this.hidden(m)).map((m) => [m.id, m]));
    this.attachments = new Map(attachments.filter((a) => !this.hidden(a)).map((a) => [a.id, a]));
    this.invites = new Map(invites.map((i) => [i.id, i]));
    this.lastSeq = seq;
  }

  /** apply applies one event; the caller sees to seq order. */
  apply(e) {
    const d = e.data || {};
    const type = e.visibility === 'internal' && this.customer ? 'hidden' : e.type;
    switch (type) {
      case 'room.created': {
        const { members, tasks, ...room } = d;
        this.room = { ...(this.room || {}), ...room };
        for (const m of members || []) this.members.set(m.user_id, m);
        for (const t of tasks || []) if (!this.hidden(t)) this.tasks.set(t.id, t);
        break;
      }
      case 'room.updated':
        this.room = { ...(this.room || {}), ...d };
        break;
      case 'member.added':
      case 'member.updated':
        this.members.set(d.user_id, d);
        break;
      case 'member.removed':
        this.members.delete(d.user_id);
        if (d.user_id === this.me.user_id) this.removed = true;
        break;
      case 'task.created':
      case 'task.updated':
        if (!this.hidden(d)) this.tasks.set(d.id, d);
        break;
      case 'task.deleted':
        this.tasks.delete(d.id);
        this.deletedTasks.set(d.id, d.title);
        break;
      case 'message.posted':
      case 'message.edited':
      case 'message.deleted':
        if (!this.hidden(d)) this.messages.set(d.id, d);
        break;
      case 'attachment.added':
        if (!this.hidden(d)) this.attachments.set(d.id, d);
        break;
      case 'invite.created':
      case 'invite.revoked':
        this.invites.set(d.id, d);
        break;
      case 'invite.accepted':
        if (d.invite) this.invites.set(d.invite.id, d.invite);
        if (d.member) this.members.set(d.member.user_id, d.member);
        break;
      default:
        // A type this version does not know: it still shows in the timeline
        // (unless it is internal and this is a customer: then it is skipped).
    }
    if (this.room) {
      this.room.head = Math.max(this.room.head || 0, e.seq);
      this.room.last_activity_at = e.at;
      if (e.actor && e.actor.kind === 'customer') this.room.last_customer_activity_at = e.at;
    }
    this.lastSeq = Math.max(this.lastSeq, e.seq);
    if (type !== 'hidden') {
      this.timeline.set(e.seq, e);
      const id = type === 'invite.accepted' ? null : d.id;
      if (id && !(type === 'message.edited' || type === 'message.deleted')) this.seqOf.set(id, e.seq);
    }
  }

  // Reading the state.

  member(id) { return this.members.get(id); }

  name(id) {
    const m = this.members.get(id);
    if (m) return m.name;
    if (id === this.me.user_id) return this.me.name || id;
    return id;
  }

  /** tasksInOrder returns the plan in its order (position, then id). */
  tasksInOrder() {
    return [...this.tasks.values()].sort((a, b) => a.position - b.position || (a.id < b.id ? -1 : 1));
  }

  /** roots returns the thread roots under a task (taskId), or of the room itself (null), oldest first. */
  roots(taskId) {
    return [...this.messages.values()]
      .filter((m) => !m.parent_id && (taskId === undefined || (m.task_id || null) === taskId))
      .sort(byCreated);
  }

  replies(rootId) {
    return [...this.messages.values()].filter((m) => m.parent_id === rootId).sort(byCreated);
  }

  /** threadCount counts the live messages of a task's discussion. */
  threadCount(taskId) {
    let n = 0;
    for (const m of this.messages.values()) if (m.task_id === taskId && !m.deleted) n++;
    return n;
  }

  filesOf(taskId) {
    return [...this.attachments.values()].filter((a) => (a.task_id || null) === taskId).sort(byCreated);
  }
}

function byCreated(a, b) {
  return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : (a.id < b.id ? -1 : 1);
}

/**
 * RoomSession keeps one room's state current: snapshot, catch-up, live
 * events, and a REST catch-up after each change made here (so the change
 * shows at once even before its event arrives) and while the live
 * connection is down.
 */
export class RoomSession {
  constructor({ api, sync, me, roomId }) {
    this.api = api;
    this.sync = sync;
    this.me = me;
    this.id = roomId;
    this.state = new RoomState(me);
    this.status = 'loading'; // loading | ready | error
    this.error = null;
    this.presence = [];
    this.listeners = new Set();
    this.pending = null;
    this.catching = null;
    this.again = false;
    this.historyComplete = false;
    this.closed = false;
  }

  /** on calls fn(changes) after each batch of changes; returns an unsubscribe function. */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(what) {
    if (!this.pending) {
      this.pending = new Set();
      queueMicrotask(() => {
        const changes = this.pending;
        this.pending = null;
        if (this.closed) return;
        for (const fn of this.listeners) fn(changes);
      });
    }
    this.pending.add(what);
  }

  /**
   * load takes the snapshot: the room (with its head seq) first, then its
   * lists, then the events after that head. The lists may already hold
   * some of those events' changes; applying them again converges on the
   * newest state, because each event carries the full new state of what
   * it changed. Only then is anything shown, and the live subscription
   * starts after the last seq applied.
   */
  async load() {
    const base = `/rooms/${enc(this.id)}`;
    try {
      const room = await this.api.get(base);
      const head = room.head || 0;
      const staff = this.me.kind === 'staff';
      const [members, tasks, roots, attachments, invites] = await Promise.all([
        this.api.all(`${base}/members`),
        this.api.all(`${base}/tasks`),
        this.api.all(`${base}/messages`, { limit: 500 }),
        this.api.all(`${base}/attachments`),
        staff ? this.api.all(`${base}/invites`).catch((err) => (err.status === 403 ? [] : Promise.reject(err))) : [],
      ]);
      const threads = roots.filter((m) => m.reply_count > 0);
      const replies = (await mapLimit(threads, 4,
        (m) => this.api.all(`${base}/messages`, { parent_id: m.id, limit: 500 }))).flat();
      const [later, reads] = await Promise.all([
        this.api.events(this.id, head),
        this.api.get(`${base}/reads`).catch(() => ({ items: [] })),
      ]);
      if (this.closed) return;
      for (const r of reads.items || []) this.state.setRead(r.user_id, r.seq, r.at);
      this.state.reset({ room, members, tasks, messages: [...roots, ...replies], attachments, invites, seq: head });
      for (const e of later) this.state.apply(e);
      this.status = 'ready';
      this.emit('all');
      this.follow();
    } catch (err) {
      if (this.closed) return;
      this.status = 'error';
      this.error = err;
      this.emit('all');
    }
  }

  follow() {
    this.sub = this.sync.subscribe(this.id, {
      after: () => this.state.lastSeq,
      onEvents: (events) => this.ingest(events),
      onPresence: (members) => {
        this.presence = members;
        this.emit('presence');
      },
      onRead: (r) => {
        if (this.state.setRead(r.user_id, r.seq, r.at)) this.emit('reads');
      },
      onError: (error) => {
        if (error.code === 'not_found') {
          this.state.removed = true;
          this.emit('all');
        }
      },
    });
    // Who is here is known only while the connection is live.
    this.offStatus = this.sync.onStatus((status) => {
      if (status !== 'live' && this.presence.length) {
        this.presence = [];
        this.emit('presence');
      }
    });
    this.poll = setInterval(() => {
      if (this.sync.status !== 'live' && !document.hidden) this.catchUp().catch(() => {});
    }, POLL_MS);
    // Reads when the page comes back into view, and the history of the
    // items on screen, whose seqs "seen by" compares markers with.
    this.onVisible = () => this.markSeen();
    document.addEventListener('visibilitychange', this.onVisible);
    this.markSeen();
    if ((this.state.room?.head || 0) <= HISTORY_FOR_SEEN) this.loadHistory().catch(() => {});
  }

  /**
   * markSeen tells the server how far this person has seen the room: the
   * latest seq shown, while the page is visible. Bursts are coalesced:
   * at most one marker a second, and only one that moves forward; over
   * the websocket when it is live, else over REST.
   */
  markSeen() {
    if (this.closed || document.hidden || this.status !== 'ready') return;
    const seq = this.state.lastSeq;
    if (seq <= (this.sentRead || 0) || this.readTimer) return;
    const wait = Math.max(0, (this.readAt || 0) + READ_EVERY_MS - Date.now());
    this.readTimer = setTimeout(() => {
      this.readTimer = 0;
      if (this.closed || document.hidden) return;
      const s = this.state.lastSeq;
      if (s <= (this.sentRead || 0)) return;
      this.sentRead = s;
      this.readAt = Date.now();
      if (this.state.setRead(this.me.user_id, s, new Date().toISOString())) this.emit('reads');
      if (!this.sub?.read(s)) this.api.request('PUT', `/rooms/${enc(this.id)}/read`, { body: { seq: s } }).catch(() => {});
    }, wait);
  }

  /** ingest applies events newer than the last applied, in seq order, as one batch. */
  ingest(events) {
    const fresh = [];
    let last = this.state.lastSeq;
    for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
      if (e.seq > last) {
        fresh.push(e);
        last = e.seq;
      }
    }
    if (!fresh.length) return;
    for (const e of fresh) this.state.apply(e);
    const kinds = new Set(fresh.map((e) => e.type.split('.')[0]));
    for (const k of kinds) this.emit(k);
    this.emit('timeline');
    for (const fn of this.eventListeners || []) fn(fresh);
    this.markSeen();
  }

  /** onEvents calls fn with each batch of newly applied events. */
  onEvents(fn) {
    this.eventListeners = this.eventListeners || new Set();
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  /** catchUp fetches the events after the last applied over REST; calls made meanwhile share one run. */
  catchUp() {
    if (this.catching) {
      this.again = true;
      return this.catching;
    }
    this.catching = (async () => {
      do {
        this.again = false;
        const events = await this.api.events(this.id, this.state.lastSeq);
        if (!this.closed) this.ingest(events);
      } while (this.again && !this.closed);
    })().finally(() => {
      this.catching = null;
    });
    return this.catching;
  }

  /**
   * run performs a change (a REST call) and then catches up, so that the
   * change shows when run resolves, even before its live event arrives.
   */
  async run(fn) {
    const result = await fn(this.api, `/rooms/${enc(this.id)}`);
    try {
      await this.catchUp();
    } catch {
      // the live connection or the next catch-up brings it
    }
    return result;
  }

  /** loadHistory fetches the whole timeline once (the live part is kept as it comes). */
  async loadHistory() {
    if (this.historyComplete) return;
    const events = await this.api.events(this.id, 0);
    for (const e of events) if (e.seq <= this.state.lastSeq) this.state.timeline.set(e.seq, e);
    this.ingest(events.filter((e) => e.seq > this.state.lastSeq));
    this.historyComplete = true;
    this.emit('timeline');
  }

  /**
   * perm says what the signed-in user may do here, as the server decides
   * it (room/member.go PermOf): managers and admins act everywhere as
   * writers; staff members by their access; customers never see internal
   * items and manage nothing.
   */
  perm() {
    const me = this.me;
    const m = this.state.members.get(me.user_id);
    const customer = me.kind !== 'staff' || (m && m.kind !== 'staff');
    if (!customer && (me.role === 'manager' || me.role === 'admin')) {
      return { see: true, write: true, manage: true, invite: true, settings: true, internal: true };
    }
    const write = !!m && m.access === 'write';
    return {
      see: !!m, write, internal: !customer, invite: !customer && write, settings: !customer && write,
      manage: !customer && !!m && m.role_in_room === 'owner',
    };
  }

  /** setPresence tells the room what this device does; internal: typing an internal note. */
  setPresence(state, taskId, internal = false) {
    this.sub?.presence(state, taskId, internal);
  }

  close() {
    this.closed = true;
    clearInterval(this.poll);
    clearTimeout(this.readTimer);
    if (this.onVisible) document.removeEventListener('visibilitychange', this.onVisible);
    this.offStatus?.();
    this.sub?.close();
    this.listeners.clear();
  }
}
