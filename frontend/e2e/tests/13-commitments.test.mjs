// Commitments: a rep proposes a step's date, the customer confirms it on a
// phone, the rep slips it, and the manager's pipeline shows the slip and
// the plan's health, with the close window that slid.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, DESKTOP, PHONE, token, api, shot, unique, useToken, waitLive, taskRow, noPageErrors,
} from '../lib.mjs';

const id = unique();
const repId = `commit-rep-${id}`;
const repToken = token({ sub: repId, name: 'Rosa Rep', role: 'rep' });
const mgrToken = token({ sub: `commit-mgr-${id}`, name: 'Mia Manager', role: 'manager' });
const email = `cy-${id}@customer.example`;
const STEP = `Security questionnaire ${id}`;
const LIVE = 8000;

let browser;
let rep;
let customer;
let room;

function isoDay(offset) {
  const d = new Date();
  d.setDate(d.getDate() + offset);
  return d.toISOString().slice(0, 10);
}

before(async () => {
  browser = await launch();
  room = await api(repToken, 'POST', '/rooms', { name: `Commit deal ${id}`, company: 'Wayne', close_window: 'this_month' });
  const inv = await api(repToken, 'POST', `/rooms/${room.id}/invites`, { email });
  const res = await fetch(`${process.env.DEALROOM_URL}/api/v1/invites/${inv.code}/accept`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Cy Customer', email }),
  });
  const accepted = await res.json();
  rep = await newPage(browser, DESKTOP);
  await useToken(rep, repToken);
  customer = await newPage(browser, PHONE);
  await useToken(customer, accepted.token);
});
after(async () => {
  await browser?.close();
});

describe('a step’s date as a commitment between the two sides', () => {
  test('the rep proposes a date', async () => {
    await rep.goto(`/room/${room.id}`);
    await waitLive(rep);
    await rep.getByLabel('New step').fill(STEP);
    await rep.getByLabel('Due', { exact: true }).fill(isoDay(10));
    await rep.getByRole('button', { name: 'Add step' }).click();
    const row = taskRow(rep, STEP);
    await row.locator('[data-fk="commitment"][data-state="proposed"]', { hasText: 'Proposed by Rosa Rep' }).waitFor();
    assert.equal(await row.getByRole('button', { name: 'Confirm date' }).count(), 0, 'the side that proposed does not confirm');
  });

  test('the customer confirms it on a phone, and the rep sees it live', async () => {
    await customer.goto(`/room/${room.id}`);
    const row = taskRow(customer, STEP);
    await row.locator('[data-fk="commitment"]', { hasText: 'Proposed by Rosa Rep' }).waitFor();
    await shot(customer, 'commitment-proposed-phone');
    await row.getByRole('button', { name: 'Confirm date' }).click();
    await row.locator('[data-fk="commitment"][data-state="confirmed"]', { hasText: 'Confirmed by Cy Customer' }).waitFor();
    assert.equal(await row.getByRole('button', { name: 'Confirm date' }).count(), 0);
    await taskRow(rep, STEP).locator('[data-fk="commitment"]', { hasText: 'Confirmed by Cy Customer' }).waitFor({ timeout: LIVE });
    // The room's health figure, on both sides: one dated shared step, on time.
    await customer.locator('.room-facts [data-fk="health"]', { hasText: 'Plan 100% on time' }).waitFor();
    await rep.locator('.room-facts [data-fk="health"]', { hasText: 'Plan 100% on time' }).waitFor({ timeout: LIVE });
  });

  test('the rep slips it by five days', async () => {
    await taskRow(rep, STEP).locator('a.task-title').click();
    await rep.getByRole('heading', { level: 2, name: STEP }).waitFor();
    await rep.getByRole('form', { name: 'Step details' }).getByLabel('Due', { exact: true }).fill(isoDay(15));
    await rep.getByRole('button', { name: 'Save changes' }).click();
    await rep.getByText('Saved.').waitFor();
    await rep.locator('.task-badges [data-fk="commitment"][data-state="slipped"]', { hasText: 'Slipped 5 days by Rosa Rep' }).waitFor();
    await shot(rep, 'commitment-slipped-desktop');
    // The customer's phone shows the slip, with the button to confirm again.
    const row = taskRow(customer, STEP);
    await row.locator('[data-fk="commitment"]', { hasText: 'Slipped 5 days' }).waitFor({ timeout: LIVE });
    await row.getByRole('button', { name: 'Confirm date' }).waitFor();
    await customer.locator('.room-facts [data-fk="health"]', { hasText: '1 slipped' }).waitFor({ timeout: LIVE });
    assert.match(await rep.locator('.room-facts [data-fk="health"]').innerText(), /Plan 0% on time/);
    await shot(customer, 'commitment-slipped-phone');
    noPageErrors(rep, customer);
  });

  test('the manager’s pipeline shows the slip and the health figure', async () => {
    await api(repToken, 'PATCH', `/rooms/${room.id}`, { close_window: 'next_month' });
    const page = await newPage(browser, DESKTOP);
    await useToken(page, mgrToken);
    const requests = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/')) requests.push(new URL(r.url()).pathname); });
    await page.goto('/pipeline');
    const card = page.locator('section.column .deal', { hasText: `Commit deal ${id}` }).first();
    await card.waitFor();
    const health = card.locator('[data-fk="health"]');
    assert.match(await health.innerText(), /Plan 0% on time/);
    assert.match(await health.innerText(), /1 slipped/);
    await card.locator('[data-fk="close-slips"]', { hasText: 'Close slid 1×' }).waitFor();
    await shot(page, 'pipeline-commitments-desktop');
    assert.equal(requests.filter((p) => p.startsWith('/api/v1/rooms/')).length, 0, 'no request per room');
    assert.ok(requests.includes('/api/v1/pipeline'), 'one request for the pipeline');
    noPageErrors(page);
    await page.context().close();
  });
});
