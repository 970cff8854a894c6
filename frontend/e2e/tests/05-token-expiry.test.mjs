// A websocket the server closes because the token expired (close code
// 4001): the app does not keep reconnecting with the dead token; it signs
// out and asks for a fresh sign-in, as it does for a 401 over REST.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, DESKTOP, token, api, unique, useToken, waitLive, noPageErrors } from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a socket closed with 4001 signs the page out instead of reconnecting', async () => {
  const id = unique();
  const tok = token({ sub: `expiry-${id}`, name: 'Eve Expiring', role: 'rep' });
  const room = await api(tok, 'POST', '/rooms', { name: `Expiry ${id}`, company: 'Acme' });
  const page = await newPage(browser, DESKTOP);
  await useToken(page, tok);
  // The page's sockets go to the real server through a route that lets
  // the test close one the way the server does when a token expires.
  const sockets = [];
  await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
    ws.connectToServer();
    sockets.push(ws);
  });
  await page.goto(`/room/${room.id}`);
  await waitLive(page);
  assert.equal(sockets.length, 1);

  await sockets[0].close({ code: 4001, reason: 'token expired: reconnect with a fresh token' });
  await page.getByText('Your sign-in has expired or was not accepted. Sign in again.').waitFor();
  await page.getByLabel('Your access token').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('dealroom.token')), null);
  // A reconnect would come within a second (0.5 s backoff): none comes.
  await page.waitForTimeout(2500);
  assert.equal(sockets.length, 1, 'the page reconnected with the expired token');
  noPageErrors(page);
  await page.context().close();
});
