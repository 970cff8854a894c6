// Signing in, and a newcomer's first minute: open the printed URL, follow
// the page's own directions, reach a working room.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, DESKTOP, PHONE, token, api, shot, unique, taskRow, noPageErrors, storedSignIn } from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('the sign-in page tells a newcomer how to get a token', async () => {
  const page = await newPage(browser, DESKTOP);
  await page.goto('/');
  await page.getByRole('heading', { name: 'Welcome to Dealroom' }).waitFor();
  const text = await page.locator('main').innerText();
  assert.match(text, /dealroom token --sub you --name "Your Name" --kind staff --role manager/);
  assert.match(text, /invite link/i);
  // Without a provider, pasting a token is the development path, and says so.
  await page.getByRole('heading', { name: 'Development: sign in with a token' }).waitFor();
  assert.equal(await page.getByRole('link', { name: /^Sign in with/ }).count(), 0);
  await shot(page, 'signin-desktop');
  const phone = await newPage(browser, PHONE);
  await phone.goto('/');
  await phone.getByLabel('Your access token').waitFor();
  await shot(phone, 'signin-phone');
  noPageErrors(page, phone);
  await page.context().close();
  await phone.context().close();
});

test('a token the server does not accept is refused with a clear message', async () => {
  const page = await newPage(browser, DESKTOP);
  await page.goto('/');
  await page.getByLabel('Your access token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'does not look like a token' }).waitFor();
  // Well-formed, but signed with another secret.
  await page.getByLabel('Your access token').fill('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJl');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'was not accepted' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('dealroom.token')), null);
  noPageErrors(page);
  await page.context().close();
});

test('a newcomer reaches a working room in under a minute, guided by the page', async () => {
  const started = Date.now();
  const page = await newPage(browser, DESKTOP);
  await page.goto('/');
  // The page says what to run; the test runs exactly that (with its own id).
  const id = `newcomer-${unique()}`;
  const tok = token({ sub: id, name: 'Nora Newcomer', kind: 'staff', role: 'manager' });
  await page.getByLabel('Your access token').fill(tok);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Rooms list; a manager may already see other tests' rooms, so open the form if needed.
  await page.getByRole('heading', { name: 'All rooms' }).waitFor();
  const nameField = page.getByLabel('Room name');
  // The list may still be loading (and the view be drawn again once the
  // sign-in settles): open the form until it stays open.
  for (let i = 0; i < 5 && !(await nameField.isVisible()); i++) {
    await page.getByRole('button', { name: 'New room' }).click();
    await nameField.waitFor({ state: 'visible', timeout: 2000 }).catch(() => {});
  }
  await shot(page, 'rooms-new-room-form');
  await nameField.fill(`First deal ${id}`);
  await page.getByLabel('Customer company').fill('Globex');
  await page.getByRole('button', { name: 'Create room' }).click();
  await page.getByRole('heading', { name: `First deal ${id}` }).waitFor();
  // The token became a session: it is kept nowhere the page's scripts reach.
  assert.deepEqual(await storedSignIn(page), { local: [], session: [], cookie: '' });
  assert.ok(!page.url().includes(tok.split('.')[1]));
  // The standard plan is there, with its internal steps marked.
  await taskRow(page, 'Agree on success criteria').waitFor();
  await taskRow(page, 'First-meeting questions').locator('.badge-internal').waitFor();
  // It works: tick off a step.
  await taskRow(page, 'Agree on success criteria').getByRole('checkbox').check();
  await page.locator('li.task.is-done', { hasText: 'Agree on success criteria' }).waitFor();
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 60000, `took ${elapsed} ms`);
  await shot(page, 'room-first-desktop');
  noPageErrors(page);
  await page.context().close();
});

test('a deep link into a room survives signing in', async () => {
  const id = `deep-${unique()}`;
  const tok = token({ sub: id, name: 'Dee Link', role: 'rep' });
  const room = await api(tok, 'POST', '/rooms', { name: `Deep link ${id}`, company: 'Initech' });
  const page = await newPage(browser, PHONE);
  await page.goto(`/room/${room.id}/people`);
  await page.getByLabel('Your access token').fill(tok);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: `Deep link ${id}` }).waitFor();
  await page.getByRole('heading', { name: 'People' }).waitFor();
  assert.equal(new URL(page.url()).pathname, `/room/${room.id}/people`);
  // A room that does not exist says so.
  await page.goto('/room/r_doesnotexist');
  await page.getByRole('heading', { name: 'Room not found' }).waitFor();
  noPageErrors(page);
  await page.context().close();
});
