// Engagement: the customer opens the invite link and sees the room's name
// and who invited before giving a name; on a phone, opens the room and
// downloads the proposal; the rep's engagement panel shows the visit on a
// phone and the download, the file says "Seen by" the customer, and the
// rooms list carries the signal, which the customer never gets. The
// customer sees what is recorded about them, and their own record.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, DESKTOP, PHONE, token, api, shot, unique, useToken, asPage, noPageErrors, BASE } from '../lib.mjs';

const id = unique();
const repToken = token({ sub: `eng-rep-${id}`, name: 'Rosa Rep', role: 'rep' });
const email = `dee-${id}@customer.example`;
const ROOM = `Engaged deal ${id}`;

let browser;
let rep;
let customer;
let room;
let invite;

before(async () => {
  browser = await launch();
  room = await api(repToken, 'POST', '/rooms', { name: ROOM, company: 'Initech' });
  const form = new FormData();
  form.append('file', new Blob([`Proposal for Initech ${id}\n`], { type: 'text/plain' }), 'proposal.txt');
  const up = await fetch(`${BASE}/api/v1/rooms/${room.id}/attachments`, {
    method: 'POST', headers: { Authorization: `Bearer ${repToken}` }, body: form,
  });
  assert.equal(up.status, 201, await up.text());
  invite = await api(repToken, 'POST', `/rooms/${room.id}/invites`, { email });
  rep = await newPage(browser, DESKTOP);
  await useToken(rep, repToken);
  customer = await newPage(browser, PHONE);
});
after(async () => {
  await browser?.close();
});

describe('engagement, counted openly', () => {
  test('the invite link shows the room and who invited, before a name is given', async () => {
    await customer.goto(new URL(invite.url).pathname);
    const from = customer.locator('.invite-from');
    await from.getByText(ROOM).waitFor();
    assert.match(await from.innerText(), /Rosa Rep invited you/);
    await shot(customer, 'invite-preview-phone');
    await customer.getByLabel('Your name').fill('Dee Customer');
    await customer.getByLabel('Your email address').fill(email);
    await customer.getByRole('button', { name: 'Join the room' }).click();
    await customer.getByRole('heading', { name: ROOM }).waitFor();
  });

  test('the customer downloads the proposal on the phone', async () => {
    await customer.getByRole('link', { name: /^Files/ }).click();
    const [download] = await Promise.all([
      customer.waitForEvent('download'),
      customer.locator('li.file', { hasText: 'proposal.txt' }).getByRole('button').click(),
    ]);
    assert.equal(download.suggestedFilename(), 'proposal.txt');
  });

  test('the rep’s engagement panel shows the visit on a phone and the download', async () => {
    await rep.goto(`/room/${room.id}/engagement`);
    const row = rep.locator('.engagement-people tr', { hasText: 'Dee Customer' });
    await row.waitFor();
    assert.match(await row.innerText(), /1 on phone/);
    const file = rep.locator('.engagement-files > li', { hasText: 'proposal.txt' });
    await file.waitFor();
    assert.match(await file.innerText(), /1 download/);
    assert.match(await file.locator('.engagement-by').innerText(), /Dee Customer · 1 download/);
    await rep.locator('.signal', { hasText: 'Rising' }).waitFor();
    await shot(rep, 'engagement-desktop');
  });

  test('the file says who has seen it', async () => {
    await rep.getByRole('link', { name: /^Files/ }).click();
    await rep.locator('li.file', { hasText: 'proposal.txt' }).locator('.seen-by', { hasText: 'Seen by Dee Customer' }).waitFor();
  });

  test('the rooms list carries the signal for the rep, never for the customer', async () => {
    await rep.goto('/');
    await rep.locator('.room-card', { hasText: ROOM }).locator('.signal', { hasText: 'Rising' }).waitFor();
    await customer.goto('/');
    const card = customer.locator('.room-card', { hasText: ROOM });
    await card.waitFor();
    assert.equal(await card.locator('.signal').count(), 0);
    assert.equal((await asPage(customer, 'GET', `/rooms/${room.id}/engagement`)).status, 403);
  });

  test('the customer sees what is recorded, and their own record', async () => {
    await customer.goto(`/room/${room.id}/engagement`);
    await customer.getByRole('heading', { name: 'What is recorded about you' }).waitFor();
    await customer.getByText(/no tracking pixels/).waitFor();
    const mine = customer.locator('.engagement-mine');
    await mine.waitFor();
    assert.match(await mine.innerText(), /on phone/);
    await customer.locator('.engagement-files', { hasText: 'proposal.txt' }).waitFor();
    await shot(customer, 'engagement-mine-phone');
  });

  test('a used invite link says so at once', async () => {
    const other = await newPage(browser, PHONE);
    await other.goto(new URL(invite.url).pathname);
    await other.getByText('This invite link is not valid any more').waitFor();
    assert.equal(await other.locator('.invite-from').isVisible(), false);
    await other.context().close();
  });

  test('no page errors', () => {
    noPageErrors(rep);
    noPageErrors(customer);
  });
});
