// Seen by: a rep posts a message, the customer's room list shows it unread,
// the customer opens the discussion on a phone and reads it, and the rep's
// screen says "Seen by" the customer, live, without a reload. An internal
// note never shows the customer's name as seen, nor reaches the customer.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, DESKTOP, PHONE, token, api, shot, unique, useToken, waitLive, noPageErrors } from '../lib.mjs';

const id = unique();
const repId = `seen-rep-${id}`;
const repToken = token({ sub: repId, name: 'Rosa Rep', role: 'rep' });
const email = `cy-${id}@customer.example`;
const LIVE = 8000;

let browser;
let rep;
let customer;
let room;
let customerToken;

before(async () => {
  browser = await launch();
  room = await api(repToken, 'POST', '/rooms', { name: `Seen deal ${id}`, company: 'Wayne' });
  const inv = await api(repToken, 'POST', `/rooms/${room.id}/invites`, { email });
  const res = await fetch(`${process.env.DEALROOM_URL}/api/v1/invites/${inv.code}/accept`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Cy Customer', email }),
  });
  const accepted = await res.json();
  customerToken = accepted.token;
  rep = await newPage(browser, DESKTOP);
  await useToken(rep, repToken);
  customer = await newPage(browser, PHONE);
  await useToken(customer, accepted.token);
});
after(async () => {
  await browser?.close();
});

describe('read state between a rep and a customer', () => {
  test('the rep posts a message and an internal note', async () => {
    await rep.goto(`/room/${room.id}/discussion`);
    await waitLive(rep);
    await rep.getByLabel('Internal note (only your team sees it)').check();
    await rep.getByLabel('New message').fill('Internal: our floor price');
    await rep.getByRole('button', { name: 'Post' }).click();
    await rep.locator('.msg-body', { hasText: 'our floor price' }).waitFor();
    await rep.getByLabel('Internal note (only your team sees it)').uncheck();
    await rep.getByLabel('New message').fill('Here is our offer');
    await rep.getByRole('button', { name: 'Post' }).click();
    await rep.locator('.msg-body', { hasText: 'Here is our offer' }).waitFor();
    assert.equal(await rep.locator('.seen-by').count(), 0, 'nobody has seen anything yet');
  });

  test('the customer’s room list shows the room unread', async () => {
    await customer.goto('/');
    const card = customer.locator('.room-card', { hasText: `Seen deal ${id}` });
    await card.waitFor();
    await card.locator('.badge.unread').waitFor();
    await shot(customer, 'seen-unread-phone');
  });

  test('the customer reads the message and the rep sees it, live', async () => {
    await customer.goto(`/room/${room.id}/discussion`);
    await customer.locator('.msg-body', { hasText: 'Here is our offer' }).waitFor();
    await waitLive(customer);
    const offer = rep.locator('article.msg', { hasText: 'Here is our offer' });
    await offer.locator('.seen-by', { hasText: 'Seen by Cy Customer' }).waitFor({ timeout: LIVE });
    await shot(rep, 'seen-by-desktop');
    // The internal note is not the customer's to see: no "seen by" her.
    const note = rep.locator('article.msg', { hasText: 'our floor price' });
    assert.equal(await note.locator('.seen-by', { hasText: 'Cy Customer' }).count(), 0);
    assert.equal(await customer.getByText('our floor price').count(), 0);
  });

  test('back in the list, the room is read', async () => {
    await customer.goto('/');
    const card = customer.locator('.room-card', { hasText: `Seen deal ${id}` });
    await card.waitFor();
    assert.equal(await card.locator('.badge.unread').count(), 0);
  });

  test('mark all read clears the rep’s unread rooms', async () => {
    await rep.goto('/');
    await api(customerToken, 'POST', `/rooms/${room.id}/messages`, { body: 'Thanks, we will read it' });
    await rep.reload();
    const card = rep.locator('.room-card', { hasText: `Seen deal ${id}` });
    await card.locator('.badge.unread', { hasText: '1' }).waitFor();
    await rep.getByRole('button', { name: 'Mark all read' }).click();
    await rep.getByText('Everything is marked read.').waitFor();
    assert.equal(await card.locator('.badge.unread').count(), 0);
    await rep.reload();
    await card.waitFor();
    assert.equal(await card.locator('.badge.unread').count(), 0, 'the server kept it');
  });

  test('no page errors', () => {
    noPageErrors(rep);
    noPageErrors(customer);
  });
});

