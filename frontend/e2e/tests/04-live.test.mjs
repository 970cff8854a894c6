// Live: a rep on a desktop and a customer on a phone in one room, both
// pages open, changes crossing over the websocket without a reload. The
// customer's connection goes through a proxy that the test cuts and
// restores: the page shows it is offline, then catches up with what
// happened meanwhile, without doubling anything.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, DESKTOP, PHONE, token, api, shot, unique, taskRow, useToken, waitLive, startProxy, waitUntil, noPageErrors,
} from '../lib.mjs';

const id = unique();
const repId = `live-rep-${id}`;
const repToken = token({ sub: repId, name: 'Rita Rep', role: 'rep' });
const email = `cole-${id}@customer.example`;
const LIVE = 8000; // how long a change may take to cross over

let browser;
let proxy;
let rep;
let customer;
let room;
const customerFrames = [];

before(async () => {
  browser = await launch();
  proxy = await startProxy();
  room = await api(repToken, 'POST', '/rooms', { name: `Live deal ${id}`, company: 'Stark', template: 'tpl_standard' });
  const inv = await api(repToken, 'POST', `/rooms/${room.id}/invites`, { email });
  const res = await fetch(`${process.env.DEALROOM_URL}/api/v1/invites/${inv.code}/accept`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Cole Customer', email }),
  });
  const accepted = await res.json();
  rep = await newPage(browser, DESKTOP);
  await useToken(rep, repToken);
  customer = await newPage(browser, PHONE, { baseURL: proxy.url });
  await useToken(customer, accepted.token);
  customer.on('websocket', (ws) => ws.on('framereceived', (f) => customerFrames.push(String(f.payload))));
});
after(async () => {
  await browser?.close();
  await proxy?.close();
});

describe('live sync between a rep and a customer', () => {
  test('both open the room and go live', async () => {
    await rep.goto(`/room/${room.id}`);
    await customer.goto(`/room/${room.id}`);
    await taskRow(rep, 'Agree on success criteria').waitFor();
    await taskRow(customer, 'Agree on success criteria').waitFor();
    await waitLive(rep);
    await waitLive(customer);
    // Who is here: each sees the other.
    await rep.locator('.presence .here', { hasText: 'Cole Customer' }).waitFor({ timeout: LIVE });
    await customer.locator('.presence .here', { hasText: 'Rita Rep' }).waitFor({ timeout: LIVE });
  });

  test('a step the rep gives the customer appears on the phone at once', async () => {
    await rep.getByLabel('New step').fill('Upload the signed NDA');
    await rep.getByLabel('Owner', { exact: true }).selectOption({ label: 'Cole Customer' });
    await rep.getByRole('button', { name: 'Add step' }).click();
    await taskRow(rep, 'Upload the signed NDA').waitFor();
    const row = taskRow(customer, 'Upload the signed NDA');
    await row.waitFor({ timeout: LIVE });
    await row.locator('.person-customer', { hasText: 'Cole Customer' }).waitFor();
    await shot(customer, 'live-task-arrived-phone');
  });

  test('the customer completes it and the rep sees it done', async () => {
    await taskRow(customer, 'Upload the signed NDA').getByRole('checkbox').check();
    await rep.locator('li.task.is-done', { hasText: 'Upload the signed NDA' }).waitFor({ timeout: LIVE });
    await shot(rep, 'live-task-done-desktop');
  });

  test('the customer sees someone typing, and the message when it is posted', async () => {
    await customer.getByRole('link', { name: 'Discussion' }).click();
    await rep.getByRole('link', { name: 'Discussion' }).click();
    await rep.getByLabel('New message').pressSequentially('Here is the agenda', { delay: 20 });
    await customer.getByText('Rita Rep is typing…').first().waitFor({ timeout: LIVE });
    await shot(customer, 'live-typing-phone', { fullPage: false });
    await rep.getByRole('button', { name: 'Post' }).click();
    await customer.locator('.msg-body', { hasText: 'Here is the agenda' }).waitFor({ timeout: LIVE });
  });

  test('a rep typing an internal note shows to the customer as viewing, not typing', async () => {
    // The rep's last typing ended with the post; start afresh.
    const typingOf = (f) => {
      try {
        const m = JSON.parse(f);
        return m.type === 'presence' && (m.members || []).some((x) => x.user_id === repId && x.state === 'typing');
      } catch {
        return false;
      }
    };
    const presenceFrames = () => customerFrames.filter((f) => f.includes('"type":"presence"'));
    // (Typing shows in two places, the room's header and the composer.)
    await waitUntil(async () => (await customer.getByText('Rita Rep is typing…').count()) === 0,
      { timeout: LIVE, what: 'the typing to end on the customer\'s page' });
    const before = presenceFrames().length;
    await rep.getByLabel('Internal note (only your team sees it)').check();
    await rep.getByLabel('New message').pressSequentially('Internal: draft of the price', { delay: 20 });
    // The change reaches the customer as a presence frame of its own.
    await waitUntil(() => presenceFrames().length > before, { timeout: LIVE, what: 'a presence frame after the internal typing' });
    assert.ok(!presenceFrames().slice(before).some(typingOf), 'the customer learnt that the rep types an internal note');
    assert.equal(await customer.getByText('Rita Rep is typing…').count(), 0);
    // Turned into a shared message, the typing shows.
    await rep.getByLabel('Internal note (only your team sees it)').uncheck();
    await rep.getByLabel('New message').pressSequentially(' for all', { delay: 20 });
    await customer.getByText('Rita Rep is typing…').first().waitFor({ timeout: LIVE });
    await rep.getByLabel('New message').fill('');
  });

  test('an internal note and an internal step never reach the customer', async () => {
    const note = `Internal: their budget is approved (${id})`;
    await rep.getByLabel('New message').fill(note);
    await rep.getByLabel('Internal note (only your team sees it)').check();
    await rep.getByRole('button', { name: 'Post' }).click();
    await rep.locator('.thread.is-internal .msg-body', { hasText: note }).waitFor();
    await api(repToken, 'POST', `/rooms/${room.id}/tasks`, { title: `Internal pricing check ${id}`, visibility: 'internal' });
    // Something shared after them arrives, so they had their chance to leak.
    await rep.getByLabel('Internal note (only your team sees it)').uncheck();
    await rep.getByLabel('New message').fill('Shared after the internal note');
    await rep.getByRole('button', { name: 'Post' }).click();
    await customer.locator('.msg-body', { hasText: 'Shared after the internal note' }).waitFor({ timeout: LIVE });
    const text = await customer.locator('main').innerText();
    assert.ok(!text.includes(note));
    await customer.getByRole('link', { name: /^Plan\b/ }).click();
    assert.ok(!(await customer.locator('main').innerText()).includes('Internal pricing check'));
    assert.ok(!customerFrames.some((f) => f.includes(note) || f.includes('Internal pricing check')), 'an internal item was sent to the customer');
  });

  test('the customer’s connection is cut and restored; the page catches up', async () => {
    await customer.getByRole('link', { name: /^Plan\b/ }).click();
    await waitLive(customer);
    proxy.cut();
    const banner = customer.locator('#conn-banner');
    await banner.waitFor({ state: 'visible', timeout: LIVE });
    assert.match(await banner.innerText(), /offline|connection is lost/i);
    await shot(customer, 'live-offline-phone', { fullPage: false });
    // Meanwhile, in the room.
    await rep.getByRole('link', { name: /^Plan\b/ }).click();
    await rep.getByLabel('New step').fill('Made while you were away');
    await rep.getByRole('button', { name: 'Add step' }).click();
    await taskRow(rep, 'Made while you were away').waitFor();
    await taskRow(rep, 'Agree on success criteria').getByRole('checkbox').check();
    await rep.locator('li.task.is-done', { hasText: 'Agree on success criteria' }).waitFor();
    await api(repToken, 'POST', `/rooms/${room.id}/messages`, { body: 'Posted while you were offline' });
    assert.equal(await taskRow(customer, 'Made while you were away').count(), 0);
    // Back online: the page reconnects by itself and catches up.
    proxy.restore();
    await taskRow(customer, 'Made while you were away').waitFor({ timeout: 20000 });
    await customer.locator('li.task.is-done', { hasText: 'Agree on success criteria' }).waitFor();
    await waitLive(customer, 20000);
    await banner.waitFor({ state: 'hidden' });
    await customer.getByRole('link', { name: 'Discussion' }).click();
    await customer.locator('.msg-body', { hasText: 'Posted while you were offline' }).waitFor();
    // Nothing doubled.
    assert.equal(await customer.locator('.msg-body', { hasText: 'Posted while you were offline' }).count(), 1);
    await customer.getByRole('link', { name: /^Plan\b/ }).click();
    assert.equal(await taskRow(customer, 'Made while you were away').count(), 1);
    await shot(customer, 'live-caught-up-phone');
    // And it is live again.
    await rep.getByLabel('New step').fill('After the reconnect');
    await rep.getByRole('button', { name: 'Add step' }).click();
    await taskRow(customer, 'After the reconnect').waitFor({ timeout: LIVE });
  });

  test('the timeline on both sides tells the same story, minus the internal part', async () => {
    await rep.getByRole('link', { name: 'Timeline' }).click();
    await customer.getByRole('link', { name: 'Timeline' }).click();
    await rep.locator('li.event', { hasText: 'completed “Upload the signed NDA”' }).waitFor();
    await customer.locator('li.event', { hasText: 'completed “Upload the signed NDA”' }).waitFor();
    await waitUntil(async () => (await customer.locator('li.event', { hasText: 'After the reconnect' }).count()) === 1, { what: 'the last step in the customer timeline' });
    const repEvents = await rep.locator('li.event').count();
    const custEvents = await customer.locator('li.event').count();
    assert.ok(custEvents < repEvents, 'the customer sees fewer events (no internal ones)');
    assert.ok(!(await customer.locator('main').innerText()).includes('budget is approved'));
    await shot(rep, 'live-timeline-desktop');
    noPageErrors(rep, customer);
  });
});
