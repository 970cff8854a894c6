// Sign-in and sessions. Staff of a company with single sign-on sign in on
// their provider's own login page (the tests' OpenID provider, a real
// one, running as a process) and land where they were going; signing out
// everywhere drops every other open page of theirs to the sign-in page.
// The browser holds only an HttpOnly session cookie: nothing of a sign-in
// in storage or URLs, and a write the page's scripts send without the
// session's CSRF token is refused.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, DESKTOP, PHONE, token, api, shot, unique, useToken, asPage, storedSignIn, waitLive, noPageErrors,
  SSO_URL, SSO_USERS, ssoId, signInWithProvider,
} from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// A manager of the single sign-on server (tokens still work for scripts)
// makes a room and adds a person of the provider to it.
async function ssoRoom(subject, name) {
  const mgr = token({ sub: `sso-mgr-${unique()}`, name: 'Morgan Manager', role: 'manager' });
  const room = await api(mgr, 'POST', '/rooms', { name, company: 'Initech' }, { base: SSO_URL });
  const u = SSO_USERS[subject];
  await api(mgr, 'POST', `/rooms/${room.id}/members`, { user_id: ssoId(subject), name: `${u.GivenName} ${u.FamilyName}`, kind: 'staff' }, { base: SSO_URL });
  return room;
}

test('with a provider, the sign-in page offers it and no token field', async () => {
  const page = await newPage(browser, DESKTOP, { baseURL: SSO_URL });
  await page.goto('/');
  await page.getByRole('link', { name: 'Sign in with Example SSO' }).waitFor();
  assert.equal(await page.getByLabel('Your access token').count(), 0, 'no development path');
  // That server sends mail: customers may ask for a sign-in link.
  await page.getByRole('button', { name: 'Email me a sign-in link' }).waitFor();
  await shot(page, 'signin-sso-desktop');
  noPageErrors(page);
  await page.context().close();
});

test('a rep signs in on the provider\'s own login page and lands in their room', async () => {
  const name = `SSO deal ${unique()}`;
  const room = await ssoRoom('rita', name);
  const page = await newPage(browser, PHONE, { baseURL: SSO_URL });
  await page.goto(`/room/${room.id}/people`);
  await signInWithProvider(page, 'rita');
  await page.getByRole('heading', { name }).waitFor();
  await page.getByRole('heading', { name: 'People' }).waitFor();
  assert.equal(new URL(page.url()).pathname, `/room/${room.id}/people`);
  await waitLive(page); // the websocket, signed in by the cookie
  const me = await asPage(page, 'GET', '/me', undefined, { base: SSO_URL });
  assert.equal(me.status, 200);
  assert.deepEqual([me.body.user_id, me.body.name, me.body.role], [ssoId('rita'), 'Rita Rep', 'rep']);
  assert.deepEqual(await storedSignIn(page), { local: [], session: [], cookie: '' }, 'nothing of the sign-in is readable');
  await shot(page, 'signed-in-sso-phone');
  noPageErrors(page);
  await page.context().close();
});

test('signing out everywhere drops another browser\'s open room to the sign-in page', async () => {
  const name = `Everywhere ${unique()}`;
  const room = await ssoRoom('sam', name);
  const laptop = await newPage(browser, DESKTOP, { baseURL: SSO_URL });
  const phone = await newPage(browser, PHONE, { baseURL: SSO_URL });
  for (const page of [laptop, phone]) {
    await page.goto(`/room/${room.id}`);
    await signInWithProvider(page, 'sam');
    await page.getByRole('heading', { name }).waitFor();
    await waitLive(page);
  }

  laptop.once('dialog', (d) => d.accept());
  await laptop.locator('.account > summary').click();
  await laptop.getByRole('button', { name: 'Sign out everywhere' }).click();
  await laptop.getByText('You are signed out on every device.').waitFor();
  await laptop.getByRole('link', { name: 'Sign in with Example SSO' }).waitFor();

  // The phone did nothing: the server closed its socket (4003).
  await phone.getByText('You were signed out: your sign-in was ended, on this device or another. Sign in again.').waitFor();
  await phone.getByRole('link', { name: 'Sign in with Example SSO' }).waitFor();
  assert.equal(await phone.getByRole('heading', { name }).count(), 0, 'the room is gone from the phone');
  await shot(phone, 'signed-out-everywhere-phone');
  for (const page of [laptop, phone]) {
    assert.equal((await asPage(page, 'GET', `/rooms/${room.id}`, undefined, { base: SSO_URL })).status, 401);
  }
  // A reload stays signed out.
  await phone.reload();
  await phone.getByRole('link', { name: 'Sign in with Example SSO' }).waitFor();
  noPageErrors(laptop, phone);
  await laptop.context().close();
  await phone.context().close();
});

test('signing out ends this browser\'s session only', async () => {
  const id = unique();
  const tok = token({ sub: `out-${id}`, name: 'Olive Out', role: 'rep' });
  const room = await api(tok, 'POST', '/rooms', { name: `Sign out ${id}`, company: 'Acme' });
  const here = await newPage(browser, DESKTOP);
  const there = await newPage(browser, DESKTOP);
  await useToken(here, tok);
  await useToken(there, tok);
  await here.goto(`/room/${room.id}`);
  await there.goto(`/room/${room.id}`);
  await waitLive(here);
  await waitLive(there);
  here.once('dialog', (d) => d.accept());
  await here.locator('.account > summary').click();
  await shot(here, 'account-menu-desktop', { fullPage: false });
  await here.getByRole('button', { name: 'Sign out', exact: true }).click();
  await here.getByText('You are signed out.').waitFor();
  await here.getByLabel('Your access token').waitFor();
  await here.reload();
  await here.getByLabel('Your access token').waitFor();
  assert.equal((await asPage(here, 'GET', '/session')).status, 401);
  // The other browser stays in its room.
  assert.equal((await asPage(there, 'GET', '/session')).status, 200);
  await there.getByRole('heading', { name: `Sign out ${id}` }).waitFor();
  await there.reload();
  await there.getByRole('heading', { name: `Sign out ${id}` }).waitFor();
  await waitLive(there);
  noPageErrors(here, there);
  await here.context().close();
  await there.context().close();
});

test('a write from the page\'s scripts without the CSRF token is refused', async () => {
  const id = unique();
  const tok = token({ sub: `csrf-${id}`, name: 'Cyd Csrf', role: 'rep' });
  const page = await newPage(browser, DESKTOP);
  await useToken(page, tok);
  await page.goto('/');
  await page.getByRole('heading', { name: 'Your rooms' }).waitFor();
  const status = await page.evaluate((n) => fetch('/api/v1/rooms', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: n, company: 'Evil' }),
  }).then((r) => r.status), `Forged ${id}`);
  assert.equal(status, 403);
  const rooms = await api(tok, 'GET', '/rooms');
  assert.ok(!rooms.items.some((r) => r.name === `Forged ${id}`), 'nothing was written');
  // The page's own form sends the token and works.
  await page.getByLabel('Room name').fill(`Real ${id}`);
  await page.getByLabel('Customer company').fill('Acme');
  await page.getByRole('button', { name: 'Create room' }).click();
  await page.getByRole('heading', { name: `Real ${id}` }).waitFor();
  noPageErrors(page);
  await page.context().close();
});

test('a token an older page kept in localStorage becomes a session, once', async () => {
  const id = unique();
  const tok = token({ sub: `legacy-${id}`, name: 'Lee Legacy', role: 'rep' });
  const room = await api(tok, 'POST', '/rooms', { name: `Legacy ${id}`, company: 'Acme' });
  const page = await newPage(browser, DESKTOP);
  await page.goto('/sign-in');
  await page.evaluate((t) => localStorage.setItem('dealroom.token', t), tok);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`/room/${room.id}`);
  await page.getByRole('heading', { name: `Legacy ${id}` }).waitFor();
  await waitLive(page);
  assert.deepEqual(await storedSignIn(page), { local: [], session: [], cookie: '' }, 'the old token is deleted');
  assert.equal((await asPage(page, 'GET', '/session')).status, 200);
  assert.ok(sockets.length > 0 && sockets.every((u) => !u.includes('token')), `no token in the websocket's URL: ${sockets}`);
  noPageErrors(page);
  await page.context().close();
});
