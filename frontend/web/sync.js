// sync.js: the live connection. One websocket per page carries the
// subscriptions of every room on screen (GET /api/v1/ws, signed in by the
// session cookie; the contract in api/openapi.yaml). After a drop (network, server restart, a phone
// waking up) it reconnects with backoff and subscribes each room again
// after the last seq that room has applied, so it catches up without
// losing or doubling anything. The events of a catch-up are handed over
// together when the server says "subscribed", so the page never shows a
// state halfway through one.

const WAKE_MS = 20000; // away longer than this: the socket may be dead, start afresh
const MAX_BACKOFF_MS = 15000;
// The server closes a socket whose sign-in expired with this code:
// connecting again would only be refused.
const TOKEN_EXPIRED = 4001;
// ... and a socket whose sign-in was ended (signed out, here or everywhere;
// its invite revoked) with this one.
const SIGNED_OUT = 4003;
const REFUSED_RETRY_MS = 2000; // a subscribe refused as rate_limited is sent again after this

/**
 * Sync's status: "idle" (nothing subscribed), "connecting", "live" (the
 * socket is open) or "offline" (waiting to retry; retryAt says when).
 */
export class Sync {
  /** options.onExpired(code) is called when the server ends the socket because the sign-in expired (4001) or was ended (4003). */
  constructor({ onExpired } = {}) {
    this.onExpired = onExpired;
    this.expired = false;
    this.subs = new Map();
    this.ws = null;
    this.status = 'idle';
    this.listeners = new Set();
    this.attempt = 0;
    this.retryTimer = 0;
    this.retryAt = 0;
    this.closeTimer = 0;
    this.hiddenAt = 0;
    this.lastTick = Date.now();
    this.handlers = {
      online: () => this.connectNow(),
      offline: () => this.drop(),
      visibility: () => this.visibilityChanged(),
    };
    addEventListener('online', this.handlers.online);
    addEventListener('offline', this.handlers.offline);
    document.addEventListener('visibilitychange', this.handlers.visibility);
    // A laptop or phone that slept shows up as a long gap between ticks.
    this.tick = setInterval(() => {
      const now = Date.now();
      if (!document.hidden && now - this.lastTick > WAKE_MS) this.restart();
      this.lastTick = now;
    }, 5000);
  }

  /** onStatus calls fn with the status now and on every change; returns an unsubscribe function. */
  onStatus(fn) {
    this.listeners.add(fn);
    fn(this.status, this);
    return () => this.listeners.delete(fn);
  }

  setStatus(s) {
    if (this.status === s && s !== 'offline') return;
    this.status = s;
    for (const fn of this.listeners) fn(s, this);
  }

  /**
   * subscribe follows one room. handlers: after() → the last seq applied;
   * onEvents(events, info) with events in seq order (info.catchUp for the
   * batch that ends a catch-up); onPresence(members); onRead({user_id,
   * seq, at}) when a member's read marker moves; onError(error).
   * Returns {close(), presence(state, taskId)}.
   */
  subscribe(room, handlers) {
    clearTimeout(this.closeTimer);
    this.subs.get(room)?.closeSub();
    const sub = { room, ...handlers, state: 'idle', buffer: [], presence: null };
    sub.closeSub = () => {
      if (this.subs.get(room) !== sub) return;
      this.subs.delete(room);
      this.send({ type: 'unsubscribe', room });
      if (!this.subs.size) this.closeTimer = setTimeout(() => this.shutdown(), 10000);
    };
    this.subs.set(room, sub);
    if (this.isOpen()) this.sendSubscribe(sub);
    else this.connect();
    return {
      close: sub.closeSub,
      presence: (state, taskId, internal) => this.presence(sub, state, taskId, internal),
      // read sends the read marker over the socket; false when it is not open.
      read: (seq) => {
        if (!this.isOpen()) return false;
        this.send({ type: 'read', room, seq });
        return true;
      },
      state: () => sub.state,
    };
  }

  isOpen() {
    return this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.ws || !this.subs.size || this.expired) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.setStatus('connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.setStatus('live');
      for (const sub of this.subs.values()) this.sendSubscribe(sub);
    };
    ws.onmessage = (m) => {
      if (this.ws === ws) this.receive(m.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.resetSubs();
      if (ev.code === TOKEN_EXPIRED || ev.code === SIGNED_OUT) {
        // Not a network problem: retrying with this sign-in cannot work.
        // The app asks for a fresh sign-in (and makes a new Sync).
        this.expired = true;
        clearTimeout(this.retryTimer);
        this.setStatus('idle');
        this.onExpired?.(ev.code);
        return;
      }
      if (this.subs.size) this.scheduleRetry();
      else this.setStatus('idle');
    };
    ws.onerror = () => {}; // a close follows
  }

  resetSubs() {
    for (const s of this.subs.values()) {
      s.state = 'idle';
      s.buffer = [];
    }
  }

  scheduleRetry() {
    clearTimeout(this.retryTimer);
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this.connect();
    }, delay);
    this.setStatus('offline');
  }

  /** connectNow retries at once (the network came back, the user asked). */
  connectNow() {
    if (this.ws || !this.subs.size) return;
    this.attempt = 0;
    this.connect();
  }

  /** restart drops the socket, which may be dead after a sleep, and connects again at once. */
  restart() {
    const old = this.ws;
    if (old) {
      this.ws = null;
      this.resetSubs();
      try {
        old.close(4000, 'reconnecting');
      } catch {
        // already closing
      }
    }
    this.connectNow();
  }

  /** drop closes the socket because the browser says it is offline. */
  drop() {
    const old = this.ws;
    this.ws = null;
    this.resetSubs();
    if (old) {
      try {
        old.close(4001, 'offline');
      } catch {
        // already closing
      }
    }
    if (this.subs.size) this.scheduleRetry();
  }

  visibilityChanged() {
    if (document.hidden) {
      this.hiddenAt = Date.now();
      return;
    }
    const away = this.hiddenAt ? Date.now() - this.hiddenAt : 0;
    this.hiddenAt = 0;
    this.lastTick = Date.now();
    if (away > WAKE_MS) this.restart();
    else this.connectNow();
  }

  shutdown() {
    if (this.subs.size) return;
    const old = this.ws;
    this.ws = null;
    clearTimeout(this.retryTimer);
    if (old) old.close(1000, 'done');
    this.setStatus('idle');
  }

  /** destroy ends everything (signing out). */
  destroy() {
    this.subs.clear();
    this.shutdown();
    clearInterval(this.tick);
    removeEventListener('online', this.handlers.online);
    removeEventListener('offline', this.handlers.offline);
    document.removeEventListener('visibilitychange', this.handlers.visibility);
  }

  send(msg) {
    if (this.isOpen()) this.ws.send(JSON.stringify(msg));
  }

  sendSubscribe(sub) {
    sub.state = 'catching-up';
    sub.buffer = [];
    this.send({ type: 'subscribe', room: sub.room, after: sub.after() });
  }

  /** presence says what this device does in the room; internal: it works on something customers must not learn of (an internal note). */
  presence(sub, state, taskId, internal = false) {
    sub.presence = taskId ? { state, task_id: taskId } : { state };
    if (internal) sub.presence.visibility = 'internal';
    if (sub.state === 'live') this.send({ type: 'presence', room: sub.room, ...sub.presence });
  }

  receive(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    const sub = msg && msg.room ? this.subs.get(msg.room) : null;
    switch (msg && msg.type) {
      case 'event':
        if (!sub || !msg.event) return;
        if (sub.state === 'catching-up') sub.buffer.push(msg.event);
        else if (sub.state === 'live') sub.onEvents([msg.event], { live: true });
        return;
      case 'subscribed': {
        if (!sub) return;
        const batch = sub.buffer;
        sub.buffer = [];
        sub.state = 'live';
        this.attempt = 0;
        sub.onEvents(batch, { catchUp: true, head: msg.head });
        if (sub.presence) this.send({ type: 'presence', room: sub.room, ...sub.presence });
        return;
      }
      case 'presence':
        if (sub) sub.onPresence?.(Array.isArray(msg.members) ? msg.members : []);
        return;
      case 'read':
        if (sub && msg.user_id && Number.isInteger(msg.seq)) sub.onRead?.(msg);
        return;
      case 'resync':
        // The server could not keep us up to date, or our access to the
        // room changed: subscribe again after the last seq applied; the
        // buffer is dropped and sent again.
        if (sub) this.sendSubscribe(sub);
        return;
      case 'unsubscribed':
        // Removed from the room: as if it no longer existed for us.
        if (sub) {
          sub.state = 'idle';
          sub.onError?.({ code: 'not_found', message: msg.reason || '' });
        }
        return;
      case 'error':
        if (!sub || msg.id || sub.state !== 'catching-up') return; // a refused presence: nothing to undo
        if (msg.error?.code === 'rate_limited' || msg.error?.code === 'unavailable') {
          // The subscribe was refused for now (too many subscriptions or
          // subscribes, a busy server): try again later rather than wait
          // for ever.
          setTimeout(() => {
            if (this.subs.get(sub.room) === sub && sub.state === 'catching-up' && this.isOpen()) this.sendSubscribe(sub);
          }, REFUSED_RETRY_MS);
          return;
        }
        sub.onError?.(msg.error || {});
        return;
      default:
        // ack and frames this version does not know: nothing to do.
    }
  }
}
