// A member changes their notification settings in the web app: email
// overall and per room, the digest, the reminders and their time zone.
// The settings stick (a reload shows them as saved) and take effect: on
// the server that sends mail (run.sh: the tests' SMTP server, a real one
// running as a process, with a notification delay of a second), a muted
// room mails nothing and an unmuted one does.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, DESKTOP, SSO_URL, token, api, shot, unique, useToken, asPage, noPageErrors, mailTo, waitUntil,
} from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const opts = { base: SSO_URL };

/** mailWith waits for a mail to address whose text contains s. */
function mailWith(address, s) {
  return waitUntil(async () => (await mailTo(address)).find((m) => m.text.includes(s)), { timeout: 30000, what: `a mail to ${address} with ${s}` });
}

/** mailsWith returns the mails to address so far whose text contains s. */
async function mailsWith(address, s) {
  return (await mailTo(address)).filter((m) => m.text.includes(s));
}

test('notification settings stick across a reload and take effect', async () => {
  const id = unique();
  const ritaEmail = `rita-${id}@seller.example`;
  const patEmail = `pat-${id}@seller.example`;
  const rita = token({ sub: `pref-rita-${id}`, name: 'Rita Rep', role: 'rep', email: ritaEmail });
  const pat = token({ sub: `pref-pat-${id}`, name: 'Pat Colleague', role: 'rep', email: patEmail });
  const mutedName = `Muted deal ${id}`;
  const loudName = `Loud deal ${id}`;
  const muted = await api(rita, 'POST', '/rooms', { name: mutedName, company: 'Acme' }, opts);
  const loud = await api(rita, 'POST', '/rooms', { name: loudName, company: 'Acme' }, opts);
  for (const r of [muted, loud]) {
    await api(rita, 'POST', `/rooms/${r.id}/members`, { user_id: `pref-pat-${id}`, name: 'Pat Colleague', kind: 'staff', access: 'write' }, opts);
  }
  // Their first signed-in requests record their addresses.
  await api(pat, 'GET', '/me/notifications', undefined, opts);
  await api(rita, 'GET', '/me/notifications', undefined, opts);

  // witness has Pat mention Rita in a room after something else happened
  // there, and waits for her mail: the room's events are handled in
  // order, so by then the earlier one was handled too.
  let witnesses = 0;
  const witness = async (room) => {
    const mark = `witness-${id}-${++witnesses}`;
    await api(pat, 'POST', `/rooms/${room.id}/messages`, { body: `@Rita Rep ${mark}` }, opts);
    await mailWith(ritaEmail, mark);
  };

  const page = await newPage(browser, DESKTOP, { baseURL: SSO_URL });
  await useToken(page, pat, opts);
  await page.goto('/');
  await page.locator('details.account summary').click();
  await page.getByRole('link', { name: 'Notifications' }).click();
  await page.waitForURL('**/me/settings');
  await page.getByText(`Email goes to ${patEmail}.`).waitFor();

  const emailBox = () => page.getByLabel('Email me about my rooms');
  const digest = () => page.getByLabel('Digest of what I missed');
  const reminders = () => page.getByLabel('Reminders', { exact: true });
  const zone = () => page.getByLabel('Time zone of my reminders');
  const roomBox = (name) => page.getByLabel(name, { exact: true });
  assert.equal(await emailBox().isChecked(), true);
  assert.equal(await digest().inputValue(), 'off', 'staff get no digest unless they ask');
  assert.equal(await reminders().isChecked(), true);
  assert.equal(await zone().inputValue(), 'UTC');
  assert.equal(await roomBox(mutedName).isChecked(), true);

  // Each change is saved at once.
  const saved = () => page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/me/notifications' &&
    r.request().method() === 'PUT' && r.status() === 200);
  const change = async (act) => { await Promise.all([saved(), act()]); };
  await change(() => roomBox(mutedName).click());
  await change(() => digest().selectOption('weekly'));
  await change(() => reminders().click());
  await change(() => zone().selectOption('Europe/Lisbon'));
  await shot(page, '11-preferences');

  await page.reload();
  await page.getByText(`Email goes to ${patEmail}.`).waitFor();
  assert.equal(await roomBox(mutedName).isChecked(), false, 'the muted room stays muted');
  assert.equal(await roomBox(loudName).isChecked(), true);
  assert.equal(await digest().inputValue(), 'weekly');
  assert.equal(await reminders().isChecked(), false);
  assert.equal(await zone().inputValue(), 'Europe/Lisbon');
  const { body } = await asPage(page, 'GET', '/me/notifications', undefined, opts);
  assert.deepEqual(body, {
    email: 'instant', digest: 'weekly', address: patEmail, rooms: [{ room_id: muted.id, email: 'off' }],
    reminders: 'off', timezone: 'Europe/Lisbon',
  });

  // A mention in the muted room mails nothing; one in the other does.
  await api(rita, 'POST', `/rooms/${muted.id}/messages`, { body: `@Pat Colleague muted-${id}` }, opts);
  await witness(muted);
  await api(rita, 'POST', `/rooms/${loud.id}/messages`, { body: `@Pat Colleague loud-${id}` }, opts);
  const got = await mailWith(patEmail, `loud-${id}`);
  assert.match(got.subject, new RegExp(`Rita Rep mentioned you in ${loudName}`));
  assert.deepEqual(await mailsWith(patEmail, `muted-${id}`), [], 'nothing about the muted room');

  // Unmuted, it mails again.
  await change(() => roomBox(mutedName).click());
  assert.equal(await roomBox(mutedName).isChecked(), true);
  await api(rita, 'POST', `/rooms/${muted.id}/messages`, { body: `@Pat Colleague unmuted-${id}` }, opts);
  await mailWith(patEmail, `unmuted-${id}`);

  // All email off: nothing from any room, until it is on again.
  await change(() => emailBox().click());
  await page.reload();
  await page.getByText(`Email goes to ${patEmail}.`).waitFor();
  assert.equal(await emailBox().isChecked(), false, 'off sticks');
  await api(rita, 'POST', `/rooms/${loud.id}/messages`, { body: `@Pat Colleague all-off-${id}` }, opts);
  await witness(loud);
  await change(() => emailBox().click());
  await api(rita, 'POST', `/rooms/${loud.id}/messages`, { body: `@Pat Colleague on-again-${id}` }, opts);
  await mailWith(patEmail, `on-again-${id}`);
  assert.deepEqual(await mailsWith(patEmail, `all-off-${id}`), [], 'nothing while all email was off');
  noPageErrors(page);
});
