// Staff end the sign-in of an accepted invite (a forwarded link, a phone
// that was lost): the customer's open room page is signed out at once,
// through the server's close of its websocket (4003), and the session it
// held no longer works.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, PHONE, DESKTOP, token, api, unique, waitLive, noPageErrors, shot, useToken, asPage, storedSignIn,
} from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('ending an invite\'s sign-in signs the customer\'s open page out', async () => {
  const id = unique();
  const rep = token({ sub: `rev-rep-${id}`, name: 'Rita Revoker', role: 'rep' });
  const room = await api(rep, 'POST', '/rooms', { name: `Revoked ${id}`, company: 'Acme' });
  const email = `carl-${id}@acme.example`;
  const inv = await api(rep, 'POST', `/rooms/${room.id}/invites`, { email });

  const phone = await newPage(browser, PHONE);
  await phone.goto(new URL(inv.url).pathname);
  await phone.getByLabel('Your name').fill('Carl Customer');
  await phone.getByLabel('Your email address').fill(email);
  await phone.getByRole('button', { name: 'Join the room' }).click();
  await phone.getByRole('heading', { name: `Revoked ${id}` }).waitFor();
  await waitLive(phone);
  assert.equal((await asPage(phone, 'GET', `/rooms/${room.id}`)).status, 200, 'the customer holds a session');
  assert.deepEqual(await storedSignIn(phone), { local: [], session: [], cookie: '' }, 'and no token');

  // The rep sees the accepted invite and ends its sign-in from the page.
  const desk = await newPage(browser, DESKTOP);
  await useToken(desk, rep);
  await desk.goto(`/room/${room.id}`);
  await waitLive(desk);
  await desk.getByRole('link', { name: /People/ }).click();
  const row = desk.locator('.invite', { hasText: email });
  await row.getByText('Joined').waitFor();
  desk.once('dialog', (d) => d.accept());
  await row.getByRole('button', { name: 'End sign-in' }).click();
  await row.getByText('Revoked').waitFor();
  await shot(desk, 'invite-sign-in-ended-desktop');

  await phone.getByText('You were signed out: your sign-in was ended, on this device or another. Sign in again.').waitFor();
  assert.deepEqual(await storedSignIn(phone), { local: [], session: [], cookie: '' });
  await shot(phone, 'invite-signed-out-phone');
  assert.equal((await asPage(phone, 'GET', `/rooms/${room.id}`)).status, 401, 'the ended session is refused');
  noPageErrors(phone, desk);
  await phone.context().close();
  await desk.context().close();
});
