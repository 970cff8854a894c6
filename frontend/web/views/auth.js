// views/auth.js: signing in. Staff paste a token (in development, made by
// `dealroom token`; in production, issued by the company's identity
// provider); customers open their invite link and give their name.

import { h, field, icon, copyText, errorText } from '../dom.js';
import { Api, enc } from '../api.js';

const TOKEN_COMMAND = 'dealroom token --sub you --name "Your Name" --kind staff --role manager';

export function signInView(ctx, { next = '/' } = {}) {
  ctx.setTitle('Sign in');
  const token = h('textarea', {
    rows: 4, required: true, autocomplete: 'off', spellcheck: false, autocapitalize: 'off',
    placeholder: 'eyJhbGciOiJIUzI1NiIs…', class: 'token-input',
  });
  const error = h('p', { class: 'error-text', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary big', text: 'Sign in' });
  const form = h('form', { class: 'card signin-form', 'aria-labelledby': 'signin-h' },
    h('h2', { id: 'signin-h', text: 'Sign in with a token' }),
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
      const api = new Api({ token: t });
      const me = await api.get('/me');
      ctx.signedIn(t, me);
      ctx.navigate(next && next !== '/sign-in' ? next : '/', { replace: true });
    } catch (err) {
      error.textContent = err.status === 401
        ? `This token was not accepted (${err.message}). It may have expired, or been made with another secret than this server's: make a new one with the command below, with the same --data-dir or DEALROOM_JWT_SECRET as the server.`
        : errorText(err);
      token.focus();
    } finally {
      submit.disabled = false;
    }
  });

  const cmd = h('code', { text: TOKEN_COMMAND });
  const copied = h('span', { class: 'ok-text', 'aria-live': 'polite' });
  const copy = h('button', {
    type: 'button', class: 'ghost small',
    on: { click: async () => { copied.textContent = (await copyText(TOKEN_COMMAND)) ? 'Copied.' : 'Select the command and copy it.'; } },
  }, icon('copy'), 'Copy command');

  const el = h('div', { class: 'auth' },
    h('header', { class: 'auth-head' },
      h('h1', { text: 'Welcome to Dealroom' }),
      h('p', { class: 'lead', text: 'One shared room per deal: the plan to signature with owners on both sides, the discussion, the files, and everything that happened, live on every device.' })),
    h('div', { class: 'auth-grid' },
      form,
      h('section', { class: 'card', 'aria-labelledby': 'howto-h' },
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
          ' to change). In production, tokens come from your company’s sign-in.')),
      h('section', { class: 'card', 'aria-labelledby': 'cust-h' },
        h('h2', { id: 'cust-h', text: 'Invited by a seller?' }),
        h('p', { text: 'Open the invite link you were sent: it asks for your name and brings you straight into your room. No account or password needed.' }),
        h('p', { class: 'muted small', text: 'Lost the link, or it expired? Ask your contact for a new one.' }))));
  return { el };
}

export function inviteView(ctx, code) {
  ctx.setTitle('Join a deal room');
  const name = h('input', { type: 'text', required: true, maxLength: 100, autocomplete: 'name', enterKeyHint: 'next' });
  const email = h('input', { type: 'email', required: true, maxLength: 254, autocomplete: 'email', inputMode: 'email', enterKeyHint: 'go' });
  const error = h('p', { class: 'error-text', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary big', text: 'Join the room' });
  const form = h('form', { class: 'card invite-accept', 'aria-labelledby': 'inv-h', novalidate: true },
    h('h1', { id: 'inv-h', text: 'You are invited to a deal room' }),
    h('p', { class: 'lead', text: 'Work on the deal together with your contact: follow the plan, complete your steps, discuss and share files.' }),
    field('Your name', name, 'As the others in the room will see it.'),
    field('Your email address', email, 'The address this invite was sent to.'),
    ctx.me ? h('p', { class: 'notice', text: `You are signed in as ${ctx.me.name || ctx.me.user_id} on this device. Joining signs you in as the invited person instead.` }) : null,
    error, submit,
    h('p', { class: 'muted small', text: 'By joining, this device stays signed in to the room for 30 days.' }));
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
      const api = new Api();
      const res = await api.request('POST', `/invites/${enc(code)}/accept`, { body: { name: name.value.trim(), email: email.value.trim() }, auth: false, retries: 2 });
      const me = await new Api({ token: res.token }).get('/me');
      ctx.signedIn(res.token, me);
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
