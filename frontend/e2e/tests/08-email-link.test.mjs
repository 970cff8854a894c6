// A customer on a new device asks for a sign-in link by email, and opens
// it. The servers under test send no mail (no DEALROOM_SMTP_URL), so the
// browser's calls to the email-link routes are answered here, with the
// contract's answers (api/openapi.yaml): what is tested is the page. The
// redeemed link's session is a real one, opened for the browser.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, PHONE, BASE, token, api, shot, unique, asPage, storedSignIn, noPageErrors,
} from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// withEmailLinks makes the page's server one that sends sign-in links.
async function withEmailLinks(page) {
  await page.route('**/api/v1/auth', (route) => route.fulfill({ json: { dev_tokens: true, email_links: true } }));
}

const NEUTRAL = 'If this address belongs to a member of a room, a sign-in link is on its way.';

test('asking for a sign-in link says the same whatever the server knows', async () => {
  const page = await newPage(browser, PHONE);
  await withEmailLinks(page);
  const asked = [];
  let answer = 202;
  await page.route('**/api/v1/auth/email-link', (route) => {
    asked.push(route.request().postDataJSON());
    return answer === 202 ? route.fulfill({ status: 202 })
      : route.fulfill({ status: answer, json: { error: { code: answer === 404 ? 'not_found' : 'invalid', message: 'no' } } });
  });
  await page.goto('/sign-in');
  const email = page.getByLabel('Your email address');
  await email.fill('carla@customer.example');
  await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
  await page.getByText(NEUTRAL).waitFor();
  assert.deepEqual(asked, [{ email: 'carla@customer.example' }]);
  await shot(page, 'signin-email-link-sent-phone');

  // An answer that would tell something about the address shows the same.
  answer = 422;
  await email.fill('nobody@nowhere.example');
  await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
  await page.getByText(NEUTRAL).waitFor();
  assert.equal(asked.length, 2);

  // A server that sends no links (404): ask the contact instead.
  answer = 404;
  await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
  await page.getByText('Ask your contact in the room for a new invite link.').waitFor();
  noPageErrors(page);
  await page.context().close();
});

test('without mail, the sign-in page tells customers to ask their contact', async () => {
  const page = await newPage(browser, PHONE);
  await page.goto('/sign-in');
  await page.getByText('Ask your contact in the room for a new invite link.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Email me a sign-in link' }).count(), 0);
  await page.context().close();
});

test('a sign-in link is used only on a click, and signs the customer in', async () => {
  const id = unique();
  const rep = token({ sub: `link-rep-${id}`, name: 'Lina Rep', role: 'rep' });
  const room = await api(rep, 'POST', '/rooms', { name: `Link deal ${id}`, company: 'Acme' });
  const email = `cleo-${id}@acme.example`;
  const inv = await api(rep, 'POST', `/rooms/${room.id}/invites`, { email });
  const res = await fetch(`${BASE}/api/v1/invites/${inv.code}/accept`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Cleo Customer', email }),
  });
  const accepted = await res.json();

  const page = await newPage(browser, PHONE);
  const redeemed = [];
  await page.route('**/api/v1/auth/email-link/redeem', async (route) => {
    redeemed.push(route.request().postDataJSON());
    // The server's answer: the session, its cookie set for the browser.
    const sess = await page.context().request.post(`${BASE}/api/v1/session`, { data: { token: accepted.token } });
    await route.fulfill({ status: 201, json: await sess.json() });
  });
  await page.goto(`/sign-in/email#code=c0de-${id}`);
  await page.getByRole('heading', { name: 'Sign in to Dealroom' }).waitFor();
  await page.waitForTimeout(300); // nothing may happen on its own (a mail scanner opens links too)
  assert.equal(redeemed.length, 0, 'the link was used before the click');
  await shot(page, 'signin-email-link-phone');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: `Link deal ${id}` }).waitFor();
  assert.deepEqual(redeemed, [{ code: `c0de-${id}` }]);
  assert.equal(new URL(page.url()).hash, '', 'the code left the address bar');
  assert.deepEqual(await storedSignIn(page), { local: [], session: [], cookie: '' });
  assert.equal((await asPage(page, 'GET', '/session')).body.user.kind, 'customer');
  noPageErrors(page);
  await page.context().close();
});

test('a used or expired sign-in link says to ask for a new one', async () => {
  const page = await newPage(browser, PHONE);
  await page.route('**/api/v1/auth/email-link/redeem', (route) => route.fulfill({
    status: 401, json: { error: { code: 'unauthenticated', message: 'this sign-in link was used or has expired' } },
  }));
  await page.goto('/sign-in/email#code=spent');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('This link was used or has expired. Ask for a new one.').waitFor();
  await page.getByRole('link', { name: 'Ask for a new link' }).click();
  await page.getByRole('heading', { name: 'Welcome to Dealroom' }).waitFor();
  // A link cut short says so.
  await page.goto('/sign-in/email');
  await page.getByRole('heading', { name: 'This sign-in link is incomplete' }).waitFor();
  noPageErrors(page);
  await page.context().close();
});
