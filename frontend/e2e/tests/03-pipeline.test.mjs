// The manager's pipeline across rooms: by stage and by close window,
// overdue next steps, quiet rooms, and assigning a next step from there.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, DESKTOP, PHONE, token, api, shot, unique, useToken, noPageErrors } from '../lib.mjs';

const id = unique();
const mgrToken = token({ sub: `mgr-${id}`, name: 'Mia Manager', role: 'manager' });
const repToken = token({ sub: `rep2-${id}`, name: 'Raj Rep', role: 'rep' });
let browser;
const rooms = {};

before(async () => {
  browser = await launch();
  // Three deals of the rep's: one to sign this month with an overdue step
  // and a customer in it, one at trust, one won.
  rooms.acme = await api(repToken, 'POST', '/rooms', { name: `Acme expansion ${id}`, company: 'Acme', stage: 'signing', close_window: 'this_month', value: 120000, currency: 'EUR' });
  rooms.umbrella = await api(repToken, 'POST', '/rooms', { name: `Umbrella pilot ${id}`, company: 'Umbrella', stage: 'trust', close_window: 'quarter', value: 30000, currency: 'EUR' });
  rooms.won = await api(repToken, 'POST', '/rooms', { name: `Wonka renewal ${id}`, company: 'Wonka', stage: 'won', value: 9000, currency: 'EUR' });
  await api(repToken, 'POST', `/rooms/${rooms.acme.id}/tasks`, { title: `Legal review of the contract ${id}`, due: '2024-01-10', assignees: [`rep2-${id}`] });
  const inv = await api(repToken, 'POST', `/rooms/${rooms.acme.id}/invites`, { email: `buyer-${id}@acme.example` });
  await fetch(`${process.env.DEALROOM_URL}/api/v1/invites/${inv.code}/accept`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Bea Buyer', email: `buyer-${id}@acme.example` }),
  });
});
after(async () => { await browser?.close(); });

test('the manager sees the deals by stage and by close window', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, mgrToken);
  await page.goto('/pipeline');
  await page.getByRole('heading', { name: 'Pipeline' }).waitFor();
  await page.getByRole('button', { name: 'By stage' }).click();
  const signing = page.locator('section.column.col-signing');
  await signing.locator('.deal', { hasText: `Acme expansion ${id}` }).waitFor();
  await page.locator('section.column.col-trust .deal', { hasText: `Umbrella pilot ${id}` }).waitFor();
  await page.locator('section.column.col-won .deal', { hasText: `Wonka renewal ${id}` }).waitFor();
  assert.match(await signing.locator('.deal', { hasText: `Acme expansion ${id}` }).innerText(), /1 overdue/);
  await shot(page, 'pipeline-by-stage-desktop');
  await page.getByRole('button', { name: 'By close window' }).click();
  await page.locator('section.column.col-this_month .deal', { hasText: `Acme expansion ${id}` }).waitFor();
  await page.locator('section.column.col-quarter .deal', { hasText: `Umbrella pilot ${id}` }).waitFor();
  await shot(page, 'pipeline-by-close-window-desktop');
  // Overdue next steps across rooms.
  await page.locator('.overdue-item', { hasText: `Legal review of the contract ${id}` }).waitFor();
  noPageErrors(page);
  await page.context().close();
});

test('rooms without a customer touch for more than the chosen days are flagged', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, mgrToken);
  await page.goto('/pipeline');
  const quiet = page.locator('.quiet-item', { hasText: `Umbrella pilot ${id}` });
  await page.locator('.deal', { hasText: `Umbrella pilot ${id}` }).first().waitFor();
  assert.equal(await quiet.count(), 0, 'a room opened just now is not quiet after 14 days');
  await page.getByLabel('Quiet after').fill('0');
  await quiet.waitFor();
  assert.match(await quiet.innerText(), /no customer touch/);
  // The room where the customer joined a moment ago is quiet only after 0 days too; the won one never.
  assert.equal(await page.locator('.quiet-item', { hasText: `Wonka renewal ${id}` }).count(), 0);
  await shot(page, 'pipeline-quiet-desktop');
  await page.getByLabel('Quiet after').fill('14');
  noPageErrors(page);
  await page.context().close();
});

test('the manager assigns a next step to the customer from the pipeline', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, mgrToken);
  await page.goto('/pipeline');
  const card = page.locator('section.column .deal', { hasText: `Acme expansion ${id}` }).first();
  await card.waitFor();
  await card.getByRole('button', { name: 'Assign next step' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Step').fill('Confirm the signatories');
  await dialog.getByLabel('Owner').selectOption({ label: 'Bea Buyer' });
  await shot(page, 'pipeline-assign-dialog-desktop', { fullPage: false });
  await dialog.getByRole('button', { name: 'Assign' }).click();
  await page.getByText('Assigned “Confirm the signatories” to Bea Buyer').waitFor();
  const tasks = await api(repToken, 'GET', `/rooms/${rooms.acme.id}/tasks`);
  const t = tasks.items.find((x) => x.title === 'Confirm the signatories');
  assert.ok(t, 'the task exists');
  assert.equal(t.assignees.length, 1);
  assert.match(t.assignees[0], /^c_/);
  noPageErrors(page);
  await page.context().close();
});

test('the pipeline works on a phone', async () => {
  const page = await newPage(browser, PHONE);
  await useToken(page, mgrToken);
  await page.goto('/pipeline');
  await page.locator('.deal', { hasText: `Acme expansion ${id}` }).first().waitFor();
  await shot(page, 'pipeline-phone');
  noPageErrors(page);
  await page.context().close();
});
