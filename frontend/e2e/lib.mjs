// Helpers of the browser tests: the server under test (started by run.sh),
// tokens made by the real `dealroom token`, Debian's Chromium driven by
// playwright-core, screenshots, and a TCP proxy that can cut a browser's
// connection to the server and restore it.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const BASE = required('DEALROOM_URL'); // http://127.0.0.1:PORT
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
export function token({ sub, name, kind = 'staff', role = 'rep', email }) {
  const args = ['token', '--sub', sub, '--name', name, '--kind', kind];
  if (kind === 'staff') args.push('--role', role);
  if (email) args.push('--email', email);
  return execFileSync(BIN, args, { env: process.env, encoding: 'utf8' }).trim();
}

/** api calls the REST API directly, for setting the scene and checking results. */
export async function api(tok, method, p, body) {
  const headers = { Authorization: `Bearer ${tok}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${BASE}/api/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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

/** useToken puts a token in the page's storage, as a device that signed in before. */
export async function useToken(page, tok) {
  await page.addInitScript((t) => localStorage.setItem('dealroom.token', t), tok);
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
