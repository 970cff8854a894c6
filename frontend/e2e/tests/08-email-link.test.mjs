// A customer on a new device asks for a sign-in link by email, and opens
// it. The server with single sign-on sends mail (run.sh): its sign-in
// links go to the tests' SMTP server, a real one running as a process,
// and the test reads them from there as the customer would from their
// inbox. The other server sends none.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, PHONE, BASE, SSO_URL, token, api, shot, unique, asPage, storedSignIn, noPageErrors,
  mailTo, waitMail, escapeRe,
} from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const NEUTRAL = 'If this address belongs to a member of a room, a sign-in link is on its way.';
const ASK_CONTACT = 'Ask your contact in the room for a new invite link.';
const SPENT = 'This link was used or has expired. Ask for a new one.';

// askForLink types an address into the sign-in page's form and sends it;
// it returns the server's answer (status and body), as the page got it.
async function askForLink(page, email) {
  await page.getByLabel('Your email address').fill(email);
  const [res] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/auth/email-link'),
    page.getByRole('button', { name: 'Email me a sign-in link' }).click(),
  ]);
  await page.getByText(NEUTRAL).waitFor();
  return { status: res.status(), body: await res.text() };
}

test('a customer on a new device gets a sign-in link by email, and it signs them in once', async () => {
  // A rep of the mail-sending server makes a room and invites a customer,
  // who joins (on the device they were invited on).
  const id = unique();
  const rep = token({ sub: `link-rep-${id}`, name: 'Lina Rep', role: 'rep' });
  const name = `Link deal ${id}`;
  const room = await api(rep, 'POST', '/rooms', { name, company: 'Acme' }, { base: SSO_URL });
  const email = `cleo-${id}@acme.example`;
  const stranger = `nobody-${id}@acme.example`;
  const inv = await api(rep, 'POST', `/rooms/${room.id}/invites`, { email }, { base: SSO_URL });
  const res = await fetch(`${SSO_URL}/api/v1/invites/${inv.code}/accept`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Cleo Customer', email }),
  });
  assert.equal(res.status, 200, await res.text());

  // On a new device the sign-in page asks for a link. A stranger's
  // address first, then the customer's: the server sends links in the
  // order asked, so once the customer's has arrived, one for the stranger
  // would have too.
  const page = await newPage(browser, PHONE, { baseURL: SSO_URL });
  const redeems = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/api/v1/auth/email-link/redeem') redeems.push(r.postDataJSON()); });
  await page.goto('/sign-in');
  const forStranger = await askForLink(page, stranger);
  const forCustomer = await askForLink(page, email);
  assert.equal(forCustomer.status, 202);
  assert.deepEqual(forStranger, forCustomer, 'the same answer for a member and a stranger');
  await shot(page, 'signin-email-link-sent-phone');

  const [mail, ...more] = await waitMail(email);
  assert.equal(more.length, 0, 'one mail');
  assert.deepEqual(await mailTo(stranger), [], 'no mail for a stranger');
  assert.equal(mail.error, undefined);
  assert.equal(mail.from, 'rooms@seller.example');
  assert.equal(mail.subject, 'Your sign-in link');
  assert.match(mail.text, /Hello Cleo Customer,/);
  const links = mail.text.match(new RegExp(`${escapeRe(SSO_URL)}/sign-in/email#code=[A-Za-z0-9_-]+`, 'g'));
  assert.equal(links?.length, 1, mail.text);
  const [link] = links;
  assert.ok(mail.html.includes(`href="${link}"`), mail.html);

  // Opening the link uses nothing: a mail scanner opens links too.
  await page.goto(link);
  await page.getByRole('heading', { name: 'Sign in to Dealroom' }).waitFor();
  await page.waitForLoadState('networkidle');
  assert.deepEqual(redeems, [], 'the link was used before the click');
  assert.equal((await asPage(page, 'GET', '/session', undefined, { base: SSO_URL })).status, 401);
  await shot(page, 'signin-email-link-phone');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name }).click();
  await page.getByRole('heading', { name }).waitFor();
  assert.equal(redeems.length, 1);
  assert.equal(`${SSO_URL}/sign-in/email#code=${redeems[0].code}`, link);
  assert.equal(new URL(page.url()).pathname, `/room/${room.id}`);
  assert.deepEqual(await storedSignIn(page), { local: [], session: [], cookie: '' });
  const me = (await asPage(page, 'GET', '/session', undefined, { base: SSO_URL })).body.user;
  assert.deepEqual([me.kind, me.name], ['customer', 'Cleo Customer']);
  noPageErrors(page);

  // The same link again, on another device: used.
  const other = await newPage(browser, PHONE, { baseURL: SSO_URL });
  await other.goto(link);
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.getByText(SPENT).waitFor();
  assert.equal(new URL(other.url()).hash, '', 'the spent code left the address bar');
  assert.equal((await asPage(other, 'GET', '/session', undefined, { base: SSO_URL })).status, 401);
  await other.getByRole('link', { name: 'Ask for a new link' }).click();
  await other.getByRole('heading', { name: 'Welcome to Dealroom' }).waitFor();
  await other.getByRole('button', { name: 'Email me a sign-in link' }).waitFor();
  // A link cut short says so.
  await other.goto('/sign-in/email');
  await other.getByRole('heading', { name: 'This sign-in link is incomplete' }).waitFor();
  noPageErrors(other);
  await page.context().close();
  await other.context().close();
});

test('without mail, the sign-in page tells customers to ask their contact', async () => {
  const page = await newPage(browser, PHONE);
  await page.goto('/sign-in');
  await page.getByText(ASK_CONTACT).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Email me a sign-in link' }).count(), 0);
  const res = await page.context().request.post(`${BASE}/api/v1/auth/email-link`, { data: { email: 'cleo@acme.example' }, failOnStatusCode: false });
  assert.equal(res.status(), 404, 'the server sends no links');
  // A link opened on it (it sends none, so none of its own) is no good.
  await page.goto('/sign-in/email#code=from-another-server');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(SPENT).waitFor();
  assert.equal((await asPage(page, 'GET', '/session')).status, 401);
  noPageErrors(page);
  await page.context().close();
});
