// The admins' webhooks page: add an endpoint (its secret shown once),
// pause and resume it, open its delivery log, delete it; a rep has no
// such page.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, DESKTOP, token, api, shot, unique, useToken, noPageErrors } from '../lib.mjs';

const id = unique();
const adminToken = token({ sub: `adm-${id}`, name: 'Ada Admin', role: 'admin' });
const repToken = token({ sub: `rep-${id}`, name: 'Raj Rep', role: 'rep' });
// A public address named by number (no DNS): the server accepts it; its
// deliveries fail in the test's sandbox, which the log shows.
const url = `https://93.184.216.34/hooks/${id}`;
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('an admin adds, pauses, resumes and deletes an endpoint', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, adminToken);
  await page.goto('/admin/webhooks');
  await page.getByRole('heading', { name: 'Webhooks' }).waitFor();

  await page.getByLabel('URL').fill('https://127.0.0.1/nope');
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  await page.locator('.toast', { hasText: /private|loopback/ }).waitFor();

  await page.getByLabel('URL').fill(url);
  await page.getByLabel('Event types').fill('message.posted, task.updated');
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  const secret = page.locator('[data-fk="webhook-secret"]');
  await secret.waitFor();
  assert.match(await secret.innerText(), /^whsec_[A-Za-z0-9+/=]{40,}$/);
  const row = page.locator('.webhook', { hasText: url });
  await row.waitFor();
  assert.match(await row.innerText(), /message\.posted, task\.updated/);
  await shot(page, 'webhooks-desktop');

  await row.getByRole('button', { name: 'Pause' }).click();
  await row.locator('[data-fk="paused"]').waitFor();
  const [ep] = (await api(adminToken, 'GET', '/admin/webhooks')).items.filter((e) => e.url === url);
  assert.equal(ep.paused, true);
  await row.getByRole('button', { name: 'Resume' }).click();
  await row.getByRole('button', { name: 'Pause' }).waitFor();

  await row.getByRole('button', { name: 'Deliveries' }).click();
  await page.getByRole('heading', { name: 'Deliveries' }).waitFor();

  page.once('dialog', (d) => d.accept());
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.locator('.webhook', { hasText: url }).waitFor({ state: 'detached' });
  noPageErrors(page);
  await page.context().close();
});

test('a rep has no webhooks in the navigation and no page', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, repToken);
  await page.goto('/');
  await page.locator('.nav-link[data-nav="rooms"]').first().waitFor();
  assert.equal(await page.locator('.nav-link[data-nav="webhooks"]').count(), 0);
  await page.goto('/admin/webhooks');
  await page.waitForURL((u) => u.pathname === '/');
  noPageErrors(page);
  await page.context().close();
});
