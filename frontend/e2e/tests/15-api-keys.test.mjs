// The admins' API keys page: make a key for an integration (shown once),
// see it used, revoke it; the key works against the API until revoked,
// and a rep has no such page.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, DESKTOP, PHONE, token, shot, unique, useToken, noPageErrors, sideScroll, waitUntil, BASE } from '../lib.mjs';

const id = unique();
const adminToken = token({ sub: `adm-${id}`, name: 'Ada Admin', role: 'admin' });
const repToken = token({ sub: `rep-${id}`, name: 'Raj Rep', role: 'rep' });
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// withKey calls the API as the integration would.
async function withKey(key, p) {
  const res = await fetch(`${BASE}/api/v1${p}`, { headers: { Authorization: `Bearer ${key}` } });
  return res.status;
}

test('an admin makes a key, the integration uses it, the admin revokes it', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, adminToken);
  await page.goto('/admin/webhooks');
  await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
  await page.getByRole('navigation', { name: 'Integrations' }).getByRole('link', { name: 'API keys' }).click();
  await page.getByRole('heading', { name: 'API keys' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/admin/api-keys');

  const name = `CRM ${id}`;
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('rooms:read').check();
  await page.getByLabel('export:read').check();
  await page.getByRole('button', { name: 'Make key' }).click();
  const shown = page.locator('[data-fk="api-key"]');
  await shown.waitFor();
  const key = (await shown.innerText()).trim();
  assert.match(key, /^drk_[A-Za-z0-9_-]{40,}$/);
  const row = page.locator('.apikey', { hasText: name });
  await row.waitFor();
  assert.match(await row.innerText(), /rooms:read, export:read/);
  assert.match(await row.innerText(), /never used/);
  assert.ok((await row.innerText()).includes(key.slice(0, 10)), 'the row shows the start of the key');
  assert.ok(!(await row.innerText()).includes(key), 'the row does not show the whole key');

  assert.equal(await withKey(key, '/rooms'), 200, 'the key reads rooms');
  assert.equal(await withKey(key, '/admin/webhooks'), 403, 'and nothing its scopes do not allow');
  await page.reload();
  await page.locator('.apikey', { hasText: name }).locator('[data-fk="used"]', { hasText: 'last used' }).waitFor();
  assert.equal(await page.locator('[data-fk="api-key"]').count(), 0, 'the key is not shown again');
  await shot(page, 'api-keys-desktop');

  page.once('dialog', (d) => d.accept());
  await page.locator('.apikey', { hasText: name }).getByRole('button', { name: 'Revoke' }).click();
  await page.locator('.apikey', { hasText: name }).locator('[data-fk="revoked"]').waitFor();
  await waitUntil(async () => (await withKey(key, '/rooms')) === 401, { what: 'the revoked key refused' });
  noPageErrors(page);
  await page.context().close();
});

test('the page on a phone', async () => {
  const page = await newPage(browser, PHONE);
  await useToken(page, adminToken);
  await page.goto('/admin/api-keys');
  await page.getByRole('button', { name: 'Make key' }).waitFor();
  const overflow = await sideScroll(page);
  assert.ok(overflow <= 1, `no sideways scrolling (${overflow}px)`);
  await shot(page, 'api-keys-phone');
  noPageErrors(page);
  await page.context().close();
});

test('a rep has no API keys page', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, repToken);
  await page.goto('/admin/api-keys');
  await page.waitForURL((u) => u.pathname === '/');
  noPageErrors(page);
  await page.context().close();
});
