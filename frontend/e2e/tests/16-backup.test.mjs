// The admins' backup page: a backup of the running server downloaded
// from the browser is a whole tar that starts with the store's file;
// a rep has no such page, and the API refuses a rep the backup.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { launch, newPage, DESKTOP, PHONE, token, shot, unique, useToken, noPageErrors, sideScroll, BASE } from '../lib.mjs';

const id = unique();
const adminToken = token({ sub: `adm-${id}`, name: 'Ada Admin', role: 'admin' });
const repToken = token({ sub: `rep-${id}`, name: 'Raj Rep', role: 'rep' });
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('an admin downloads a backup of the running server', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, adminToken);
  await page.goto('/admin/api-keys');
  await page.getByRole('heading', { name: 'API keys' }).waitFor();
  await page.getByRole('navigation', { name: 'Integrations' }).getByRole('link', { name: 'Backup' }).click();
  await page.getByRole('heading', { name: 'Backup' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/admin/backup');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download a backup' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^dealroom-backup-\d{8}T\d{6}Z\.tar$/);
  assert.equal(await download.failure(), null, 'the download completes');
  const tar = await readFile(await download.path());
  assert.ok(tar.length > 2048, `a tar of ${tar.length} bytes`);
  assert.equal(tar.subarray(0, 100).toString('latin1').replace(/\0+$/, ''), 'dealroom.db', 'the store\u2019s file first');
  assert.ok(tar.subarray(tar.length - 1024).every((b) => b === 0), 'the tar\u2019s end: the backup is whole');
  await shot(page, 'backup-desktop');
  noPageErrors(page);
  await page.context().close();
});

test('the page on a phone', async () => {
  const page = await newPage(browser, PHONE);
  await useToken(page, adminToken);
  await page.goto('/admin/backup');
  await page.getByRole('link', { name: 'Download a backup' }).waitFor();
  const overflow = await sideScroll(page);
  assert.ok(overflow <= 1, `no sideways scrolling (${overflow}px)`);
  await shot(page, 'backup-phone');
  noPageErrors(page);
  await page.context().close();
});

test('a rep has no backup page, and no backup', async () => {
  const page = await newPage(browser, DESKTOP);
  await useToken(page, repToken);
  await page.goto('/admin/backup');
  await page.waitForURL((u) => u.pathname === '/');
  const res = await fetch(`${BASE}/api/v1/admin/backup`, { headers: { Authorization: `Bearer ${repToken}` } });
  assert.equal(res.status, 403);
  noPageErrors(page);
  await page.context().close();
});
