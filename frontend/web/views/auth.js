// views/auth.js: signing in. What the page offers comes from the server
// (GET /api/v1/auth): staff sign in with the company's provider ("Sign in
// with Okta"), or, on a server without one, paste a token made by
// `dealroom token` (the development path); customers open their invite
// link, or ask for a sign-in link by email (/sign-in/email). Every path
// ends in a browser session (the HttpOnly cookie): no token is kept.

import { h, field, icon, copyText, errorText } from '../dom.js';
import { Api, enc } from '../api.js';

const TOKEN_COMMAND = 'dealroom token --sub you --name "Your Name" --kind staff --role manager';

// The sign-in calls are not signed in: a refusal there (401) is about
// the token or link given, not the page's session, so they go through a
// client that does not sign the page out.
const open = new Api();

// NEXT_KEY keeps, for one tab, where a person was going while they sign
// in at the company's provider (which brings them back to "/"). Only a
// path of this app is kept, never anything of the sign-in.
const NEXT_KEY = 'dealroom.next';

function rememberNext(next) {
  if (next && next.startsWith('/') && !next.startsWith('//') && next !== '/' && !next.startsWith('/sign-in')) {
    sessionStorage.setItem(NEXT_KEY, next);
  } else {
    sessionStorage.removeItem(NEXT_KEY);
  }
}

/** takeNext returns, once, the path kept before a sign-in at the provider, or "". */
export function takeNext() {
  const next = sessionStorage.getItem(NEXT_KEY) || '';
  sessionStorage.removeItem(NEXT_KEY);
  return next.startsWith('/') && !next.startsWith('//') ? next : '';
}

let config = null; // GET /api/v1/auth, asked once per page load

export function signInView(ctx, { next = '/' } = {}) {
  ctx.setTitle('Sign in');
  const grid = h('div', { class: 'auth-grid', 'aria-busy': 'true' }, h('p', { class: 'muted', text: 'Loading…' }));
  const el = h('div', { class: 'auth' },
    h('header', { class: 'auth-head' },
      h('h1', { text: 'Welcome to Dealroom' }),
      h('p', { class: 'lead', text: 'One shared room per deal: the plan to signature with owners on both sides, the discussion, the files, and everything that happened, live on every device.' })),
    grid);
  let gone = false;
  const load = async () => {
    try {
      config ??= await open.get('/auth');
    } catch (err) {
      if (gone) return;
      grid.replaceChildren(h('div', { class: 'card' },
        h('p', { class: 'error-text', role: 'alert', text: `The sign-in options could not be loaded: ${errorText(err)}` }),
        h('button', { type: 'button', class: 'primary', text: 'Try again', on: { click: load } })));
      return;
    }
    if (gone) return;
    const cards = [
      config.provider ? providerCard(config, next) : null,
      config.dev_tokens ? tokenForm(ctx, next) : null,
      config.dev_tokens ? tokenHowTo() : null,
      customerCard(config)].filter(Boolean);
    grid.removeAttribute('aria-busy');
    grid.classList.toggle('two', cards.length === 2);
    grid.replaceChildren(...cards);
  };
  load();
  return { el, destroy: () => { gone = true; } };
}

// providerCard: staff sign in at the company's identity provider, which
// sends them back signed in.
function providerCard(cfg, next) {
  return h('section', { class: 'card signin-sso', 'aria-labelledby': 'sso-h' },
    h('h2', { id: 'sso-h', text: 'Staff' }),
    h('p', { text: `Sign in with your ${cfg.provider} account, as for the company’s other tools.` }),
    h('a', { href: cfg.login_url, class: 'button primary big', on: { click: () => rememberNext(next) } }, icon('lock'), `Sign in with ${cfg.provider}`));
}

// tokenForm: the development path, on a server with no provider: a token
// printed by `dealroom token`, exchanged at once for a session.
function tokenForm(ctx, next) {
  const token = h('textarea', {
    rows: 4, required: true, autocomplete: 'off', spellcheck: false, autocapitalize: 'off',
    placeholder: 'eyJhbGciOiJIUzI1NiIs…', class: 'token-input',
  });
  const error = h('p', { class: 'error-text', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary big', text: 'Sign in' });
  const form = h('form', { class: 'card signin-form signin-dev', 'aria-labelledby': 'signin-h' },
    h('h2', { id: 'signin-h', text: 'Development: sign in with a token' }),
    h('p', { class: 'muted small' }, 'This server has no company sign-in configured (', h('code', { text: 'DEALROOM_OIDC_ISSUER' }),
      '), so staff paste a token made on the server. For development and trying Dealroom out.'),
    field('Your access token', token, 'A long line of letters, digits and dots.'), error, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = token.value.trim().replace(/^Bearer\s+/i, '');
    error.textContent = '';
    if (!t) {
      error.textContent = 'Paste your token first.';
      token.focus();
      return;
    }
    if (t.split('.').length !== 3) {
      error.textContent = 'That does not look like a token: a token has three parts separated by dots. Copy the whole line that `dealroom token` printed.';
      token.focus();
      return;
    }
    submit.disabled = true;
    try {
      await ctx.openSession(t);
      token.value = '';
      ctx.navigate(next && !next.startsWith('/sign-in') ? next : '/', { replace: true });
    } catch (err) {
      error.textContent = err.status === 401
        ? `This token was not accepted (${err.message}). It may have expired, or been made with another secret than this server's: make a new one with the command below, with the same --data-dir or DEALROOM_JWT_SECRET as the server.`
        : errorText(err);
      token.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function tokenHowTo() {
  const cmd = h('code', { text: TOKEN_COMMAND });
  const copied = h('span', { class: 'ok-text', 'aria-live': 'polite' });
  const copy = h('button', {
    type: 'button', class: 'ghost small',
    on: { click: async () => { copied.textContent = (await copyText(TOKEN_COMMAND)) ? 'Copied.' : 'Select the command and copy it.'; } },
  }, icon('copy'), 'Copy command');
  return h('section', { class: 'card', 'aria-labelledby': 'howto-h' },
    h('h2', { id: 'howto-h', text: 'How do I get a token?' }),
    h('ol', { class: 'steps' },
      h('li', {}, 'On the machine where Dealroom runs, open a terminal in the same folder as the server.'),
      h('li', {}, 'Run this command (change the name and id to yours):',
        h('div', { class: 'copy-row' }, h('pre', {}, cmd), copy), copied),
      h('li', {}, 'Paste the long line it prints into the box, and sign in.')),
    h('p', { class: 'muted small' }, 'Started the server from the source code with ', h('code', { text: 'go run ./cmd/dealroom' }),
      '? Then run the command the same way: ', h('code', { text: 'go run ./cmd/dealroom token --sub you …' }), '.'),
    h('p', { class: 'muted small' },
      'The server prints this command when it starts, with the right ', h('code', { text: '--data-dir' }),
      '. Roles: ', h('code', { text: 'rep' }), ' works in their own rooms, ', h('code', { text: 'manager' }),
      ' and ', h('code', { text: 'admin' }), ' see every room and the pipeline. A token lasts 24 hours (', h('code', { text: '--ttl' }),
      ' to change). In production, staff sign in with the company’s identity provider instead (', h('code', { text: 'DEALROOM_OIDC_ISSUER' }), ').'));
}

const ASK_CONTACT = 'Lost the link, or on a new device? Ask your contact in the room for a new invite link.';

// customerCard: customers come in by invite link; on a server that
// sends mail they may ask for a sign-in link instead.
function customerCard(cfg) {
  return h('section', { class: 'card', 'aria-labelledby': 'cust-h' },
    h('h2', { id: 'cust-h', text: 'Invited by a seller?' }),
    h('p', { text: 'Open the invite link you were sent: it asks for your name and brings you straight into your room. No account or password needed.' }),
    cfg.email_links ? emailLinkForm() : h('p', { class: 'muted small', text: ASK_CONTACT }));
}

// emailLinkForm asks for a sign-in link by email. The page says the same
// whatever the server knows of the address, as the server does.
function emailLinkForm() {
  const email = h('input', { type: 'email', required: true, maxLength: 254, autocomplete: 'email', inputMode: 'email', enterKeyHint: 'send' });
  const said = h('p', { role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary', text: 'Email me a sign-in link' });
  const form = h('form', { class: 'email-link', novalidate: true },
    h('p', { class: 'muted small', text: 'Lost the link, or on a new device? Get a sign-in link by email, to the address you were invited with.' }),
    field('Your email address', email), said, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    said.className = '';
    said.textContent = '';
    if (!email.checkValidity() || !email.value.trim()) {
      said.className = 'error-text';
      said.textContent = 'Enter the email address you were invited with, like name@company.com.';
      email.focus();
      return;
    }
    submit.disabled = true;
    try {
      await open.request('POST', '/auth/email-link', { body: { email: email.value.trim() } });
      said.className = 'ok-text';
      said.textContent = 'If this address belongs to a member of a room, a sign-in link is on its way. Open it on this device within a few minutes.';
    } catch (err) {
      if (err.status === 404) {
        said.className = 'muted';
        said.textContent = 'This server sends no sign-in links. Ask your contact in the room for a new invite link.';
      } else if (err.status === 0 || err.status === 429 || err.status >= 500) {
        said.className = 'error-text';
        said.textContent = errorText(err);
      } else {
        // Any other answer says nothing about the address either.
        said.className = 'ok-text';
        said.textContent = 'If this address belongs to a member of a room, a sign-in link is on its way. Open it on this device within a few minutes.';
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * emailLinkView is the page a sign-in link opens (/sign-in/email#code=…).
 * The code is in the fragment, which the browser never sends; it is
 * redeemed only when the person clicks, because mail scanners open links
 * on their own and would use it up.
 */
export function emailLinkView(ctx) {
  ctx.setTitle('Sign in');
  const code = new URLSearchParams(location.hash.slice(1)).get('code') || '';
  if (!code) {
    return { el: h('div', { class: 'auth narrow' }, h('section', { class: 'card' },
      h('h1', { text: 'This sign-in link is incomplete' }),
      h('p', { text: 'Open the whole link from the email, or ask for a new one.' }),
      h('p', {}, h('a', { href: '/sign-in', class: 'button', text: 'Go to the sign-in page' })))) };
  }
  const error = h('div', { class: 'error-text', role: 'alert' });
  const submit = h('button', { type: 'button', class: 'primary big', text: 'Sign in' });
  submit.addEventListener('click', async () => {
    error.replaceChildren();
    submit.disabled = true;
    try {
      await ctx.replaceSession(() => open.request('POST', '/auth/email-link/redeem', { body: { code } }));
      ctx.navigate('/', { replace: true });
    } catch (err) {
      if (err.status === 401 || err.status === 404) {
        error.append(h('p', { text: 'This link was used or has expired. Ask for a new one.' }),
          h('p', {}, h('a', { href: '/sign-in', class: 'button', text: 'Ask for a new link' })));
        submit.hidden = true;
        history.replaceState(null, '', location.pathname); // the spent code leaves the address bar
      } else {
        error.textContent = errorText(err);
        submit.disabled = false;
      }
    }
  });
  return { el: h('div', { class: 'auth narrow' }, h('section', { class: 'card signin-form', 'aria-labelledby': 'link-h' },
    h('h1', { id: 'link-h', text: 'Sign in to Dealroom' }),
    h('p', { class: 'lead', text: 'You asked for a sign-in link. Sign in to open your rooms on this device.' }),
    ctx.me ? h('p', { class: 'notice', text: `You are signed in as ${ctx.me.name || ctx.me.user_id} on this device. Signing in with this link signs you in as its owner instead.` }) : null,
    error, submit)) };
}

export function inviteView(ctx, code) {
  ctx.setTitle('Join a deal room');
  const name = h('input', { type: 'text', required: true, maxLength: 100, autocomplete: 'name', enterKeyHint: 'next' });
  const email = h('input', { type: 'email', required: true, maxLength: 254, autocomplete: 'email', inputMode: 'email', enterKeyHint: 'go' });
  const error = h('p', { class: 'error-text', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary big', text: 'Join the room' });
  // The room's name and who invited, before the person gives their name.
  const invitedBy = h('p', { class: 'invite-from', hidden: true });
  const form = h('form', { class: 'card invite-accept', 'aria-labelledby': 'inv-h', novalidate: true },
    h('h1', { id: 'inv-h', text: 'You are invited to a deal room' }), invitedBy,
    h('p', { class: 'lead', text: 'Work on the deal together with your contact: follow the plan, complete your steps, discuss and share files.' }),
    field('Your name', name, 'As the others in the room will see it.'),
    field('Your email address', email, 'The address this invite was sent to.'),
    ctx.me ? h('p', { class: 'notice', text: `You are signed in as ${ctx.me.name || ctx.me.user_id} on this device. Joining signs you in as the invited person instead.` }) : null,
    error, submit,
    h('p', { class: 'muted small', text: 'By joining, this device stays signed in to the room for 30 days.' }));
  open.request('GET', `/invites/${enc(code)}`, { retries: 2 }).then((p) => {
    invitedBy.replaceChildren(h('strong', { class: 'invite-room', text: p.room_name }),
      p.invited_by ? ` · ${p.invited_by} invited you` : '');
    invitedBy.hidden = false;
  }, (err) => {
    if (err.status === 404) error.textContent = 'This invite link is not valid any more: it was used, withdrawn or has expired. Ask your contact for a new one.';
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!name.value.trim()) {
      error.textContent = 'Enter your name.';
      name.focus();
      return;
    }
    if (!email.checkValidity() || !email.value.trim()) {
      error.textContent = 'Enter the email address this invite was sent to, like name@company.com.';
      email.focus();
      return;
    }
    submit.disabled = true;
    try {
      const res = await open.request('POST', `/invites/${enc(code)}/accept`, { body: { name: name.value.trim(), email: email.value.trim() }, retries: 2 });
      // The invite's token goes straight into a session, and is forgotten.
      await ctx.openSession(res.token);
      ctx.navigate(`/room/${enc(res.room.id)}`, { replace: true });
    } catch (err) {
      if (err.status === 404) error.textContent = 'This invite link is not valid. Check that you opened the whole link, or ask your contact for a new one.';
      else if (err.field === 'email') error.textContent = err.message.includes('another') ? 'This invite was sent to another email address. Use the address the invite was sent to.' : err.message;
      else error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  return { el: h('div', { class: 'auth narrow' }, form) };
}
