// A websocket the server closes because the sign-in expired (close code
// 4001): the app does not keep reconnecting with the dead sign-in; it
// asks for a fresh sign-in, as it does for a 401 over REST.
//
// Nothing here imitates the server: the browser's session comes from a
// token that lives a second, so the session ends with it (when the server
// stops accepting the token: its exp plus the 30 s allowed for clocks
// that disagree, jwtauth.Leeway), and the
// server closes the page's socket with 4001 at the first frame the page
// sends after that (a typing notice), as it would for anyone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, DESKTOP, token, api, unique, useToken, waitLive, waitUntil, storedSignIn, noPageErrors,
} from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a socket the server closes with 4001 sends the page to sign-in instead of reconnecting', async () => {
  const id = unique();
  const long = token({ sub: `expiry-${id}`, name: 'Eve Expiring', role: 'rep' });
  const room = await api(long, 'POST', '/rooms', { name: `Expiry ${id}`, company: 'Acme' });

  const page = await newPage(browser, DESKTOP);
  const sockets = [];
  const closes = [];
  page.on('websocket', (ws) => {
    sockets.push(ws);
    ws.on('close', () => closes.push(ws));
  });
  const short = token({ sub: `expiry-${id}`, name: 'Eve Expiring', role: 'rep', ttl: '1s' });
  const sess = await useToken(page, short);
  const expiresAt = Date.parse(sess.expires_at);
  assert.ok(expiresAt - Date.now() < 35000, `the session ends with its token (${sess.expires_at})`);

  await page.goto(`/room/${room.id}/discussion`);
  await waitLive(page);
  assert.equal(sockets.length, 1);

  // Past the session's end, the page's next frame (typing) meets a server
  // that ends the socket; the page shows sign-in.
  await waitUntil(() => Date.now() > expiresAt + 500, { timeout: 40000, interval: 250, what: 'the session to end' });
  await page.getByLabel('New message').pressSequentially('still there?', { delay: 30 });
  await page.getByText('Your sign-in has expired or was not accepted. Sign in again.').waitFor({ timeout: 10000 });
  await waitUntil(() => closes.length === 1, { what: 'the socket to close' });
  assert.deepEqual(await storedSignIn(page), { local: [], session: [], cookie: '' });

  // A reconnect would come within a second (0.5 s backoff) of the close:
  // none comes while the page waits for a sign-in.
  await page.waitForTimeout(1500);
  assert.equal(sockets.length, 1, 'the page reconnected with the expired sign-in');
  noPageErrors(page);
  await page.context().close();
});
