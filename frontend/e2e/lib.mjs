// Helpers of the browser tests: the servers under test (started by
// run.sh: one with the development sign-in, one with single sign-on
// through the tests' OpenID provider and mail through the tests' SMTP
// server), the mail that SMTP server received, tokens made by the real
// `dealroom token`, Debian's Chromium driven by playwright-core,
// screenshots, and a TCP proxy that can cut a browser's connection to the
// server and restore it.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const BASE = required('DEALROOM_URL'); // http://127.0.0.1:PORT
// The server whose staff sign in at the OpenID provider, and the provider.
// That server also sends mail (sign-in links, pointing at SSO_URL).
export const SSO_URL = required('DEALROOM_SSO_URL');
const SSO_ISSUER = required('DEALROOM_SSO_ISSUER');
// The mailbox of the SMTP server that server sends to (cmd/smtpsink).
const MAILBOX_URL = required('DEALROOM_MAILBOX_URL');
const BIN = required('DEALROOM_BIN');
export const ARTIFACTS = process.env.DEALROOM_ARTIFACTS || path.join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests with frontend/e2e/run.sh`);
  return v;
}

/** unique returns a short random suffix, so tests sharing one server do not collide. */
export function unique() {
  return Math.random().toString(36).slice(2, 8);
}

/** token mints a token with the server's secret, as a newcomer would: `dealroom token ...`. */
export function token({ sub, name, kind = 'staff', role = 'rep', email, ttl }) {
  const args = ['token', '--sub', sub, '--name', name, '--kind', kind];
  if (ttl) args.push('--ttl', ttl);
  if (kind === 'staff') args.push('--role', role);
  if (email) args.push('--email', email);
  return execFileSync(BIN, args, { env: process.env, encoding: 'utf8' }).trim();
}

/** api calls the REST API directly, for setting the scene and checking results. */
export async function api(tok, method, p, body, { base = BASE } = {}) {
  const headers = { Authorization: `Bearer ${tok}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${base}/api/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return data;
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

export const DESKTOP = { viewport: { width: 1280, height: 860 } };
export const PHONE = {
  viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36',
};

/**
 * newPage opens a page in its own context (its own storage: a separate
 * person or device). Uncaught page errors are collected in page.errors,
 * which tests check at the end.
 */
export async function newPage(browser, device, { baseURL = BASE } = {}) {
  const context = await browser.newContext({ ...device, baseURL });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  page.setDefaultTimeout(10000);
  return page;
}

/** signInWithToken signs in through the page's own form. */
export async function signInWithToken(page, tok, at = '/') {
  await page.goto(at);
  await page.getByLabel('Your access token').fill(tok);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('body.signed-in').waitFor();
}

/**
 * useToken signs the page's browser in with a token, as a device that
 * signed in before: the token is exchanged for a session
 * (POST /api/v1/session) whose cookie the browser keeps. Returns the
 * session (its csrf_token and user).
 */
export async function useToken(page, tok, { base = BASE } = {}) {
  const res = await page.context().request.post(`${base}/api/v1/session`, { data: { token: tok } });
  if (res.status() !== 201) throw new Error(`POST /session: ${res.status()} ${await res.text()}`);
  return res.json();
}

/**
 * asPage calls the REST API as the page's browser: signed in by its
 * session cookie, with no CSRF proof. Returns {status, body}.
 */
export async function asPage(page, method, p, body, { base = BASE } = {}) {
  const res = await page.context().request.fetch(`${base}/api/v1${p}`, { method, data: body, failOnStatusCode: false });
  const text = await res.text();
  return { status: res.status(), body: text ? JSON.parse(text) : null };
}

/** storedSignIn returns what the page keeps in storage and cookies that scripts can read (it should be nothing of a sign-in). */
export async function storedSignIn(page) {
  return page.evaluate(() => ({
    local: Object.keys(localStorage), session: Object.keys(sessionStorage), cookie: document.cookie,
  }));
}

/** The provider's people (provider.json), who sign in on its login page. */
export const SSO_USERS = Object.fromEntries(
  JSON.parse(readFileSync(path.join(here, 'provider.json'), 'utf8')).Users.map((u) => [u.Subject, u]));

/** ssoId is the id the server gives a person of the provider: "oidc:" and a hash of issuer and subject (package oidc). */
export function ssoId(subject) {
  return `oidc:${createHash('sha256').update(`${SSO_ISSUER}\0${subject}`).digest('hex').slice(0, 20)}`;
}

/**
 * signInWithProvider signs a person in from the page's sign-in page, on
 * the provider's own login page, as they would: the browser follows the
 * button to the provider, types into its form, and comes back signed in.
 */
export async function signInWithProvider(page, subject) {
  const user = SSO_USERS[subject];
  await page.getByRole('link', { name: 'Sign in with Example SSO' }).click();
  await page.waitForURL((u) => u.href.startsWith(SSO_ISSUER));
  await page.getByLabel('Username').fill(user.Email);
  await page.getByLabel('Password').fill(user.Password);
  await page.getByRole('button', { name: 'Login' }).click();
  await page.locator('body.signed-in').waitFor();
}

/**
 * mailTo returns the messages the tests' SMTP server accepted for this
 * recipient so far, oldest first: {from, to, subject, text, html}, the
 * parts decoded.
 */
export async function mailTo(address) {
  const res = await fetch(`${MAILBOX_URL}?to=${encodeURIComponent(address)}`);
  if (!res.ok) throw new Error(`mailbox: ${res.status} ${await res.text()}`);
  return res.json();
}

/** waitMail waits until a message for this recipient has arrived, and returns them all. */
export async function waitMail(address, { timeout = 30000 } = {}) {
  return waitUntil(async () => {
    const got = await mailTo(address);
    return got.length > 0 && got;
  }, { timeout, what: `mail to ${address}` });
}

/** shot saves a screenshot of the page as a test artifact. */
export async function shot(page, name, { fullPage = true } = {}) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.waitForTimeout(150); // let a batch of changes render
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage });
}

/** taskRow is the plan's row of the task with this exact title. */
export function taskRow(page, title) {
  return page.locator('ol.tasks > li.task', { has: page.locator('a.task-title', { hasText: new RegExp(`^${escapeRe(title)}$`) }) });
}

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** waitLive waits until the page's websocket is subscribed and live. */
export async function waitLive(page, timeout = 10000) {
  await page.locator('body[data-conn="live"]').waitFor({ timeout });
}

/** sideScroll is how far the page scrolls sideways (at most 1 px is none). */
export async function sideScroll(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** waitUntil polls fn until it returns a truthy value. */
export async function waitUntil(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * startProxy forwards a local port to the server. cut() drops every open
 * connection and refuses new ones (the network is gone); restore() lets
 * connections through again.
 */
export async function startProxy() {
  const target = new URL(BASE);
  const sockets = new Set();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      open = true;
    },
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(resolve);
    }),
  };
}

/** noPageErrors fails when a page threw an uncaught error. */
export function noPageErrors(...pages) {
  const errs = pages.flatMap((p) => p.errors || []);
  if (errs.length) throw new Error(`uncaught errors in the page:\n${errs.map((e) => e.stack || e.message).join('\n')}`);
}
