// app.js: Dealroom's web app. It signs people in (staff through the
// company's provider, or a pasted token in development; customers by
// invite or emailed link) into a browser session, routes between the views
// by URL (history routing: the server answers every app path with
// index.html), and shows the live connection's state. No framework and no
// build step: plain ES modules, DOM APIs only.
//
// Who is signed in is the server's to say: the session lives in an
// HttpOnly cookie this code cannot read, and the page asks
// GET /api/v1/session when it loads. Only the session's CSRF token is
// kept, in memory; no token is ever stored in the browser or put in a URL.

import { Api } from './api.js';
import { Sync } from './sync.js';
import { h, icon, toast, fill } from './dom.js';
import { setViewer } from './components.js';
import { signInView, inviteView, emailLinkView, takeNext } from './views/auth.js';
import { roomsView } from './views/rooms.js';
import { pipelineView } from './views/pipeline.js';
import { myTasksView, inboxView, settingsView } from './views/me.js';
import { roomView } from './views/room.js';
import { webhooksView } from './views/webhooks.js';
import { apiKeysView } from './views/apikeys.js';
import { backupView } from './views/backup.js';

// Where the page kept the bearer token before sessions: a page that
// finds one exchanges it for a session once and deletes it.
const LEGACY_TOKEN_KEY = 'dealroom.token';

const ctx = {
  api: new Api({ onUnauthorized: () => sessionExpired(401) }),
  sync: null,
  me: null,
  navigate,
  setTitle: (t) => { document.title = t ? `${t} · Dealroom` : 'Dealroom'; },
  openSession,
  replaceSession,
  signOut,
  refreshInbox: () => refreshInbox(true),
};

let view = null; // {el, destroy?, route?}
let firstRoute = true;

const ROUTES = [
  [/^\/invite\/([^/]+)\/?$/, (m) => ({ name: 'invite', code: decodeURIComponent(m[1]) }), true],
  [/^\/sign-in\/?$/, () => ({ name: 'signin' }), true],
  [/^\/sign-in\/email\/?$/, () => ({ name: 'emaillink' }), true],
  [/^\/$/, () => ({ name: 'rooms' })],
  [/^\/pipeline\/?$/, () => ({ name: 'pipeline' })],
  [/^\/admin\/webhooks\/?$/, () => ({ name: 'webhooks' })],
  [/^\/admin\/api-keys\/?$/, () => ({ name: 'apikeys' })],
  [/^\/admin\/backup\/?$/, () => ({ name: 'backup' })],
  [/^\/me\/tasks\/?$/, () => ({ name: 'mytasks' })],
  [/^\/inbox\/?$/, () => ({ name: 'inbox' })],
  [/^\/me\/settings\/?$/, () => ({ name: 'settings' })],
  [/^\/room\/([^/]+)\/task\/([^/]+)\/?$/, (m) => ({ name: 'room', id: decodeURIComponent(m[1]), taskId: decodeURIComponent(m[2]) })],
  [/^\/room\/([^/]+)(?:\/(plan|discussion|files|people|timeline|engagement))?\/?$/, (m) => ({ name: 'room', id: decodeURIComponent(m[1]), tab: m[2] || 'plan' })],
];

function match(path) {
  for (const [re, make, open] of ROUTES) {
    const m = re.exec(path);
    if (m) return { ...make(m), open: !!open };
  }
  return { name: 'notfound' };
}

/** navigate goes to an app path without reloading the page. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route();
}

function route() {
  const path = location.pathname;
  const r = match(path);
  const main = document.getElementById('main');
  if (!ctx.me && !r.open) {
    mount(signInView(ctx, { next: path + location.search }));
    return;
  }
  // The room view follows tab and step changes itself, keeping its session.
  if (r.name === 'room' && view && view.route && view.route(r)) {
    updateNav(r);
    return;
  }
  let v;
  switch (r.name) {
    case 'invite': v = inviteView(ctx, r.code); break;
    case 'signin': v = ctx.me ? null : signInView(ctx, { next: '/' }); break;
    case 'emaillink': v = emailLinkView(ctx); break;
    case 'rooms': v = roomsView(ctx); break;
    case 'pipeline': v = pipelineView(ctx); break;
    case 'webhooks': v = ctx.me?.role === 'admin' ? webhooksView(ctx) : null; break;
    case 'apikeys': v = ctx.me?.role === 'admin' ? apiKeysView(ctx) : null; break;
    case 'backup': v = ctx.me?.role === 'admin' ? backupView(ctx) : null; break;
    case 'mytasks': v = myTasksView(ctx); break;
    case 'inbox': v = inboxView(ctx); break;
    case 'settings': v = settingsView(ctx); break;
    case 'room': v = roomView(ctx, r); break;
    default:
      v = { el: h('div', { class: 'panel center' }, h('h1', { text: 'Page not found' }), h('p', {}, h('a', { href: '/', class: 'button', text: 'Go to your rooms' }))) };
  }
  if (!v) {
    navigate('/', { replace: true });
    return;
  }
  mount(v);
  updateNav(r);
  if (!firstRoute) main.focus({ preventScroll: true });
  firstRoute = false;
  refreshInbox(false);
}

function mount(v) {
  view?.destroy?.();
  view = v;
  const main = document.getElementById('main');
  fill(main, v.el);
  window.scrollTo(0, 0);
  document.body.classList.toggle('signed-in', !!ctx.me);
}

// ---------------------------------------------------------------------------
// Signing in and out.

// leaving is set while the page signs out or changes sessions: the
// server's close of the socket (4003) is then expected.
let leaving = false;

/**
 * signedIn takes a session the server answered (POST or GET
 * /api/v1/session, the redeemed email link): its CSRF token for the
 * changes, its user, and a live connection signed in by the cookie.
 */
function signedIn(sess) {
  ctx.api.csrf = sess.csrf_token;
  ctx.me = sess.user;
  setViewer(sess.user.kind);
  ctx.sync?.destroy();
  ctx.sync = new Sync({ onExpired: sessionExpired });
  ctx.sync.onStatus(showConnection);
  buildShell();
}

/**
 * openSession exchanges a bearer token (pasted, or given by an accepted
 * invite) for a browser session and signs the page in with it. The token
 * is not kept: from here on the cookie signs the page in.
 */
function openSession(token) {
  return replaceSession(() => new Api().request('POST', '/session', { body: { token } }));
}

/**
 * replaceSession signs the page in with the session that begin answers
 * (POST /api/v1/session, a redeemed email link). A session this browser
 * held before ends then, its socket with it (4003): that close is
 * expected, not a sign-out to show. begin's calls go through a client of
 * their own, as a refusal there (401) is about the token or link given.
 */
async function replaceSession(begin) {
  leaving = true;
  try {
    const sess = await begin();
    signedIn(sess);
    return sess;
  } finally {
    leaving = false;
  }
}

// forget drops what the page knew of the sign-in, and shows the sign-in page.
function forget() {
  ctx.api.csrf = '';
  ctx.me = null;
  view?.destroy?.();
  view = null;
  ctx.sync?.destroy();
  ctx.sync = null;
  buildShell();
  showConnection('idle');
}

/**
 * signOut ends the session at the server (DELETE /api/v1/session), or
 * every session of the person with everywhere (POST
 * /api/v1/session/end-all), then shows the sign-in page. A session the
 * server already ended (401) is signed out as well.
 */
async function signOut({ everywhere = false } = {}) {
  leaving = true;
  try {
    if (everywhere) await ctx.api.request('POST', '/session/end-all');
    else await ctx.api.request('DELETE', '/session');
  } catch (err) {
    if (err.status !== 401) {
      leaving = false;
      toast(`Could not sign out: ${err.message}`, { kind: 'error' });
      return;
    }
  }
  forget();
  leaving = false;
  navigate('/sign-in');
  toast(everywhere ? 'You are signed out on every device.' : 'You are signed out.');
}

let expiredShown = false;
// sessionExpired shows the sign-in page when the server no longer takes
// the session: a 401 over REST, or the socket closed with code (4001 when
// it expired, 4003 when it was ended: signed out elsewhere, everywhere, or
// its invite revoked).
function sessionExpired(code) {
  if (!ctx.me || expiredShown || leaving) return;
  expiredShown = true;
  const next = location.pathname;
  forget();
  history.replaceState(null, '', next);
  route();
  toast(code === 4003
    ? 'You were signed out: your sign-in was ended, on this device or another. Sign in again.'
    : 'Your sign-in has expired or was not accepted. Sign in again.', { kind: 'error', timeout: 10000 });
  setTimeout(() => { expiredShown = false; }, 2000);
}

// ---------------------------------------------------------------------------
// The shell: navigation, connection banner, inbox badge.

const NAV = [
  ['rooms', '/', 'Rooms', 'home'],
  ['pipeline', '/pipeline', 'Pipeline', 'chart'],
  ['mytasks', '/me/tasks', 'My tasks', 'check'],
  ['inbox', '/inbox', 'Inbox', 'at'],
  ['webhooks', '/admin/webhooks', 'Integrations', 'refresh'],
];
const navLinks = [];
const badges = [];

function buildShell() {
  const top = document.getElementById('topbar');
  const bottom = document.getElementById('bottomnav');
  navLinks.length = 0;
  badges.length = 0;
  if (!ctx.me) {
    fill(top, h('a', { href: '/', class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true', text: 'D' }), 'Dealroom'));
    bottom.replaceChildren();
    bottom.hidden = true;
    return;
  }
  const me = ctx.me;
  const oversees = me.kind === 'staff' && (me.role === 'manager' || me.role === 'admin');
  const admin = me.kind === 'staff' && me.role === 'admin';
  const items = NAV.filter(([k]) => (k !== 'pipeline' || oversees) && (k !== 'webhooks' || admin));
  const link = (k, href, label, glyph, where) => {
    const badge = k === 'inbox' ? h('span', { class: 'nav-badge', hidden: true }) : null;
    if (badge) badges.push(badge);
    const a = h('a', { href, class: 'nav-link', dataset: { nav: k } }, where === 'bottom' ? icon(glyph) : null, h('span', { text: label }), badge);
    navLinks.push(a);
    return a;
  };
  const who = h('span', { class: 'who' },
    h('span', { class: 'who-name', text: me.name || me.user_id }),
    h('span', { class: 'who-role', text: me.kind === 'customer' ? 'Customer' : (me.role || 'staff') }));
  const conn = h('span', { class: 'conn-dot', id: 'conn-dot', role: 'status', 'aria-live': 'polite' });
  fill(top, 
    h('a', { href: '/', class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true', text: 'D' }), 'Dealroom'),
    h('nav', { class: 'topnav', 'aria-label': 'Main' }, items.map(([k, href, label, g]) => link(k, href, label, g, 'top'))),
    h('span', { class: 'spacer' }), conn, accountMenu(who));
  fill(bottom, ...items.map(([k, href, label, g]) => link(k, href, label, g, 'bottom')));
  bottom.setAttribute('aria-label', 'Main');
  bottom.hidden = false;
}

// accountMenu is who is signed in, opening on signing out here or on
// every device (a lost phone, a shared computer).
function accountMenu(who) {
  const menu = h('details', { class: 'account' },
    h('summary', {}, h('span', { class: 'account-label', text: 'Account' }), who),
    h('div', { class: 'account-menu' },
      h('a', { href: '/me/settings', class: 'button ghost small', text: 'Notifications', on: { click: () => { menu.open = false; } } }),
      h('button', { type: 'button', class: 'ghost small', text: 'Sign out', on: { click: () => {
        menu.open = false;
        if (confirm('Sign out of Dealroom on this device?')) signOut();
      } } }),
      h('button', { type: 'button', class: 'ghost small', text: 'Sign out everywhere', on: { click: () => {
        menu.open = false;
        if (confirm('Sign out of Dealroom on every device, this one included? Open pages elsewhere close at once.')) signOut({ everywhere: true });
      } } })));
  return menu;
}

function updateNav(r) {
  const key = { room: 'rooms', apikeys: 'webhooks', backup: 'webhooks' }[r.name] || r.name;
  for (const a of navLinks) {
    if (a.dataset.nav === key) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

let inboxAt = 0;
async function refreshInbox(force) {
  if (!ctx.me) return;
  if (!force && Date.now() - inboxAt < 15000) return;
  inboxAt = Date.now();
  try {
    const page = await ctx.api.get('/me/inbox', { limit: 100 });
    const unread = page.items.filter((i) => !i.read_at).length;
    for (const b of badges) {
      b.hidden = unread === 0;
      b.textContent = unread > 99 ? '99+' : String(unread);
      b.setAttribute('aria-label', `${unread} unread`);
    }
  } catch {
    // the badge waits for the next try
  }
}
setInterval(() => refreshInbox(true), 60000);

// The connection banner: shown when the live connection is down for more
// than a moment, with when it retries and a button to retry now.
let bannerTimer = 0;
let countdown = 0;
function showConnection(status, sync) {
  const banner = document.getElementById('conn-banner');
  const dot = document.getElementById('conn-dot');
  document.body.dataset.conn = status;
  if (dot) {
    dot.className = `conn-dot conn-${status}`;
    dot.textContent = status === 'live' ? 'Live' : status === 'idle' ? '' : status === 'connecting' ? 'Connecting…' : 'Offline';
  }
  clearTimeout(bannerTimer);
  clearInterval(countdown);
  if (status === 'live' || status === 'idle') {
    banner.hidden = true;
    banner.dataset.state = status;
    return;
  }
  const render = () => {
    const secs = sync && sync.retryAt ? Math.max(0, Math.ceil((sync.retryAt - Date.now()) / 1000)) : 0;
    const offline = navigator.onLine === false;
    const text = status === 'connecting'
      ? 'Reconnecting…'
      : `${offline ? 'You are offline.' : 'The live connection is lost.'} What others change shows when it is back${secs ? `; retrying in ${secs} s` : ''}.`;
    fill(banner, icon('warn'), h('span', { text }),
      status === 'offline' ? h('button', { type: 'button', class: 'link', text: 'Retry now', on: { click: () => sync?.connectNow() } }) : null);
  };
  bannerTimer = setTimeout(() => {
    render();
    banner.hidden = false;
    banner.dataset.state = status;
    if (status === 'offline') countdown = setInterval(render, 1000);
  }, status === 'offline' ? 600 : 1500);
}

// ---------------------------------------------------------------------------
// Links and start-up.

document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  e.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
addEventListener('popstate', route);
// The account menu closes on a click elsewhere and on Escape.
document.addEventListener('click', (e) => {
  for (const d of document.querySelectorAll('details.account[open]')) if (!d.contains(e.target)) d.open = false;
});
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape') return;
  for (const d of document.querySelectorAll('details.account[open]')) {
    d.open = false;
    d.querySelector('summary').focus();
  }
});

// unreachable shows that the server could not be asked who is signed in.
function unreachable(err) {
  document.getElementById('main').replaceChildren(h('div', { class: 'panel center' },
    h('h1', { text: 'Dealroom cannot be reached' }),
    h('p', { text: err.message }),
    h('button', { type: 'button', class: 'primary', text: 'Try again', on: { click: () => location.reload() } })));
}

// migrate exchanges the token an older version of the page kept in
// localStorage for a session, once, and deletes it whatever the answer.
async function migrate() {
  const old = localStorage.getItem(LEGACY_TOKEN_KEY);
  if (old === null) return false;
  localStorage.removeItem(LEGACY_TOKEN_KEY);
  try {
    await openSession(old);
    return true;
  } catch {
    return false; // expired or refused: the session asked next decides
  }
}

async function boot() {
  buildShell();
  if (!(await migrate())) {
    try {
      signedIn(await ctx.api.get('/session'));
    } catch (err) {
      if (err.status !== 401) {
        unreachable(err);
        return;
      }
    }
  }
  // Back from the company's sign-in page: to where the person was going.
  const next = takeNext();
  if (ctx.me && next && location.pathname === '/') history.replaceState(null, '', next);
  route();
}

boot();
