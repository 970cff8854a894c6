// A rep on a desktop and a customer on a phone in one room, through the
// pages only: the plan, internal items, the invite link, the customer's
// tasks on the phone, mentions, files, reordering and the timeline. These
// steps do not rely on the websocket: each side reloads or navigates to
// see the other's changes (the live version is 04-live.test.mjs).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, DESKTOP, PHONE, token, shot, unique, taskRow, signInWithToken, noPageErrors, waitUntil, asPage, storedSignIn,
} from '../lib.mjs';

const id = unique();
const repToken = token({ sub: `rep-${id}`, name: 'Riley Rep', role: 'rep', email: `riley-${id}@seller.example` });
const customerEmail = `carla-${id}@customer.example`;
const INTERNAL_NOTE = `Discount floor is 12 percent (${id})`;
const INTERNAL_STEP = `Check budget with finance (${id})`;
const SHARED_STEP = 'Send the security questionnaire';
const CUSTOMER_STEP = 'Sign the NDA';

let browser;
let rep;
let customer;
let roomId;
let inviteUrl;
const customerFrames = [];

before(async () => {
  browser = await launch();
  rep = await newPage(browser, DESKTOP);
  customer = await newPage(browser, PHONE);
  customer.on('websocket', (ws) => ws.on('framereceived', (f) => customerFrames.push(String(f.payload))));
});
after(async () => {
  await browser?.close();
});

async function addStep(page, title, { owner, due, internal } = {}) {
  await page.getByLabel('New step').fill(title);
  if (owner) await page.getByLabel('Owner', { exact: true }).selectOption({ label: owner });
  if (due) await page.getByLabel('Due', { exact: true }).fill(due);
  if (internal) await page.getByLabel('Who sees it').selectOption('internal');
  await page.getByRole('button', { name: 'Add step' }).click();
  await taskRow(page, title).waitFor();
  if (internal) await page.getByLabel('Who sees it').selectOption('shared');
}

function isoDay(offset) {
  const d = new Date();
  d.setDate(d.getDate() + offset);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

describe('rep and customer in one room', () => {
  test('the rep opens a room and lays out the plan, with an internal step', async () => {
    await signInWithToken(rep, repToken);
    await rep.getByRole('heading', { name: 'Your rooms' }).waitFor();
    await shot(rep, 'rooms-empty-rep');
    await rep.getByLabel('Room name').fill(`Globex rollout ${id}`);
    await rep.getByLabel('Customer company').fill('Globex');
    await rep.getByLabel('Start from').selectOption({ label: 'Empty plan' });
    await rep.getByLabel('Deal value (optional)').fill('48000');
    await rep.getByLabel('Currency').fill('EUR');
    await rep.getByRole('button', { name: 'Create room' }).click();
    await rep.getByRole('heading', { name: `Globex rollout ${id}` }).waitFor();
    roomId = new URL(rep.url()).pathname.split('/')[2];
    assert.match(roomId, /^r_/);
    await rep.getByText('No steps yet').waitFor();
    await addStep(rep, SHARED_STEP, { owner: 'Riley Rep (me)', due: isoDay(3) });
    await addStep(rep, INTERNAL_STEP, { internal: true });
    await addStep(rep, 'Kick-off workshop');
    const internalRow = taskRow(rep, INTERNAL_STEP);
    assert.ok(await internalRow.evaluate((el) => el.classList.contains('is-internal')));
    await internalRow.locator('.badge-internal').waitFor();
    await shot(rep, 'room-plan-desktop');
  });

  test('the rep writes to the customer and leaves an internal note', async () => {
    await rep.getByRole('link', { name: 'Discussion' }).click();
    const box = rep.getByLabel('New message');
    await box.fill('Welcome to our shared room! Everything for the rollout lives here.');
    await rep.getByRole('button', { name: 'Post' }).click();
    await rep.locator('.msg-body', { hasText: 'Welcome to our shared room!' }).waitFor();
    await box.fill(INTERNAL_NOTE);
    await rep.getByLabel('Internal note (only your team sees it)').check();
    await rep.getByRole('button', { name: 'Post' }).click();
    await rep.locator('.thread.is-internal .msg-body', { hasText: INTERNAL_NOTE }).waitFor();
    await shot(rep, 'room-discussion-desktop');
  });

  test('the rep invites the customer and copies the link', async () => {
    await rep.getByRole('link', { name: /^People/ }).click();
    await rep.getByLabel('Customer email').fill(customerEmail);
    await rep.getByRole('button', { name: 'Create invite link' }).click();
    const link = rep.getByLabel(`Invite link for ${customerEmail}`);
    await link.waitFor();
    inviteUrl = await link.inputValue();
    assert.match(inviteUrl, /\/invite\/[0-9a-z]+$/);
    await rep.getByRole('button', { name: 'Copy link' }).click();
    await rep.getByText('Copied.').waitFor();
    assert.equal(await rep.evaluate(() => navigator.clipboard.readText()), inviteUrl);
    await rep.locator('.invite', { hasText: customerEmail }).getByText('Waiting').waitFor();
    await shot(rep, 'room-people-invite-desktop');
  });

  test('the customer opens the link on a phone, gives a name, and is in the room', async () => {
    await customer.goto(new URL(inviteUrl).pathname);
    await customer.getByRole('heading', { name: 'You are invited to a deal room' }).waitFor();
    await shot(customer, 'invite-accept-phone');
    await customer.getByLabel('Your name').fill('Carla Customer');
    await customer.getByLabel('Your email address').fill(customerEmail);
    await customer.getByRole('button', { name: 'Join the room' }).click();
    await customer.getByRole('heading', { name: `Globex rollout ${id}` }).waitFor();
    await taskRow(customer, SHARED_STEP).waitFor();
    await shot(customer, 'room-plan-phone');
    // Signed in by a session cookie: the invite's token is kept nowhere.
    assert.deepEqual(await storedSignIn(customer), { local: [], session: [], cookie: '' });
    const sess = await asPage(customer, 'GET', '/session');
    assert.equal(sess.status, 200);
    assert.equal(sess.body.user.kind, 'customer');
  });

  test('internal items never appear for the customer', async () => {
    await customer.reload();
    await taskRow(customer, 'Kick-off workshop').waitFor();
    const check = async (where) => {
      const text = await customer.locator('main').innerText();
      assert.ok(!text.includes(INTERNAL_STEP), `internal step visible in ${where}`);
      assert.ok(!text.includes(INTERNAL_NOTE), `internal note visible in ${where}`);
      assert.ok(!/Internal/.test(text), `something marked internal visible in ${where}`);
    };
    await check('the plan');
    await customer.getByRole('link', { name: 'Discussion' }).click();
    await customer.locator('.msg-body', { hasText: 'Welcome to our shared room!' }).waitFor();
    await check('the discussion');
    await shot(customer, 'room-discussion-phone');
    await customer.getByRole('link', { name: 'Timeline' }).click();
    await customer.locator('li.event', { hasText: 'joined the room by invite' }).waitFor();
    await check('the timeline');
    await shot(customer, 'room-timeline-phone');
    // Nor over the wire: not in the REST answers, not in websocket frames.
    const read = async (p) => {
      const res = await asPage(customer, 'GET', p);
      assert.equal(res.status, 200, p);
      return res.body;
    };
    const everything = JSON.stringify([
      await read(`/rooms/${roomId}/tasks`), await read(`/rooms/${roomId}/messages`), await read(`/rooms/${roomId}/events?after=0`)]);
    assert.ok(!everything.includes(INTERNAL_NOTE) && !everything.includes(INTERNAL_STEP));
    assert.ok(!customerFrames.some((f) => f.includes(INTERNAL_NOTE) || f.includes(INTERNAL_STEP)));
  });

  test('the customer replies in a thread; the rep reads the reply', async () => {
    await customer.getByRole('link', { name: 'Discussion' }).click();
    const thread = customer.locator('li.thread', { hasText: 'Welcome to our shared room!' });
    await thread.getByRole('button', { name: 'Reply' }).click();
    await customer.getByLabel('Reply to Riley Rep').fill('Thanks, glad to be here.');
    await thread.getByRole('button', { name: 'Reply', exact: true }).last().click();
    await thread.locator('.replies .msg-body', { hasText: 'glad to be here' }).waitFor();
    await rep.getByRole('link', { name: 'Discussion' }).click();
    await rep.locator('li.thread', { hasText: 'Welcome to our shared room!' }).locator('.replies .msg-body', { hasText: 'glad to be here' }).waitFor();
  });

  test('the rep gives the customer a step; it shows on the phone under My tasks', async () => {
    await rep.getByRole('link', { name: /^Plan\b/ }).click();
    await addStep(rep, CUSTOMER_STEP, { owner: 'Carla Customer', due: isoDay(1) });
    await taskRow(rep, CUSTOMER_STEP).locator('.person-customer', { hasText: 'Carla Customer' }).waitFor();
    await customer.locator('#bottomnav').getByRole('link', { name: 'My tasks' }).click();
    await customer.getByRole('heading', { name: 'My tasks' }).waitFor();
    const item = customer.locator('li.mytask', { hasText: CUSTOMER_STEP });
    await item.waitFor();
    assert.match(await item.innerText(), new RegExp(`Globex rollout ${id}`));
    assert.match(await item.innerText(), /Due tomorrow/);
    // A phone layout: the bottom navigation, no top navigation.
    assert.ok(await customer.locator('#bottomnav').isVisible());
    assert.ok(!(await customer.locator('.topnav').isVisible()));
    const width = await customer.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page is ${width}px wide on a 390px phone`);
    await shot(customer, 'my-tasks-phone');
  });

  test('the customer completes it on the phone; the rep sees it done', async () => {
    await customer.locator('li.mytask', { hasText: CUSTOMER_STEP }).getByRole('checkbox').check();
    await customer.locator('li.mytask.is-done', { hasText: CUSTOMER_STEP }).waitFor();
    await customer.getByText(`Done: “${CUSTOMER_STEP}”.`).waitFor();
    await shot(customer, 'my-tasks-done-phone');
    await rep.reload();
    await rep.locator('li.task.is-done', { hasText: CUSTOMER_STEP }).waitFor();
    await rep.getByRole('link', { name: 'Timeline' }).click();
    await rep.locator('li.event', { hasText: `completed “${CUSTOMER_STEP}”` }).waitFor();
    assert.match(await rep.locator('li.event', { hasText: `completed “${CUSTOMER_STEP}”` }).innerText(), /Carla Customer/);
    await shot(rep, 'room-timeline-desktop');
  });

  test('an @-mention picked from the room members reaches the customer’s inbox', async () => {
    await rep.getByRole('link', { name: 'Discussion' }).click();
    const box = rep.getByLabel('New message');
    await box.fill('Thanks ');
    await box.pressSequentially('@Car');
    const option = rep.getByRole('option', { name: /Carla Customer/ });
    await option.waitFor();
    await shot(rep, 'mention-autocomplete-desktop', { fullPage: false });
    await box.press('Enter');
    assert.equal(await box.inputValue(), 'Thanks @Carla Customer ');
    await box.pressSequentially('for signing so quickly!');
    await rep.getByRole('button', { name: 'Post' }).click();
    await rep.locator('.msg-body .mention', { hasText: '@Carla Customer' }).waitFor();
    await customer.locator('#bottomnav').getByRole('link', { name: 'Inbox' }).click();
    const item = customer.locator('li.inbox-item.unread', { hasText: 'Message from Riley Rep' });
    await item.waitFor();
    assert.match(await item.innerText(), /for signing so quickly/);
    await shot(customer, 'inbox-phone');
    await item.getByRole('link').click();
    await customer.locator('.msg-body', { hasText: 'for signing so quickly' }).waitFor();
  });

  test('a file uploaded with progress by the rep downloads on the phone', async () => {
    await rep.getByRole('link', { name: /^Files/ }).click();
    const content = `Proposal for Globex ${id}\n`.repeat(2000);
    await rep.getByLabel('Upload files').setInputFiles({ name: 'proposal.txt', mimeType: 'text/plain', buffer: Buffer.from(content) });
    await rep.locator('li.file', { hasText: 'proposal.txt' }).waitFor();
    await shot(rep, 'room-files-desktop');
    await customer.locator('#bottomnav').getByRole('link', { name: 'Rooms' }).click();
    await customer.getByRole('link', { name: new RegExp(`Globex rollout ${id}`) }).click();
    await customer.getByRole('link', { name: /^Files/ }).click();
    const [download] = await Promise.all([
      customer.waitForEvent('download'),
      customer.locator('li.file', { hasText: 'proposal.txt' }).getByRole('button').click(),
    ]);
    assert.equal(download.suggestedFilename(), 'proposal.txt');
    const path = await download.path();
    const { readFileSync } = await import('node:fs');
    assert.equal(readFileSync(path, 'utf8'), content);
    await shot(customer, 'room-files-phone');
  });

  test('the rep reorders the plan and opens a step', async () => {
    await rep.getByRole('link', { name: /^Plan\b/ }).click();
    const titles = () => rep.locator('ol.tasks a.task-title').allInnerTexts();
    const before = await titles();
    assert.deepEqual(before.slice(0, 2), [SHARED_STEP, INTERNAL_STEP]);
    await rep.getByRole('button', { name: `Move “${INTERNAL_STEP}” up` }).click();
    await waitUntil(async () => (await titles())[0] === INTERNAL_STEP, { what: 'the internal step to move first' });
    await rep.keyboard.press('Alt+ArrowDown');
    await waitUntil(async () => (await titles())[1] === INTERNAL_STEP, { what: 'Alt+ArrowDown to move it back down' });
    await taskRow(rep, SHARED_STEP).locator('a.task-title').click();
    await rep.getByRole('heading', { level: 2, name: SHARED_STEP }).waitFor();
    await rep.getByLabel('Description').fill('Send the questionnaire to @Carla Customer with the SOC 2 report.');
    await rep.getByRole('button', { name: 'Save changes' }).click();
    await rep.getByText('Saved.').waitFor();
    await rep.getByLabel('Add to the discussion of this step').fill('Questionnaire is attached in Files.');
    await rep.getByRole('button', { name: 'Post' }).click();
    await rep.locator('.task-pane .msg-body', { hasText: 'Questionnaire is attached' }).waitFor();
    await shot(rep, 'task-pane-desktop');
    // The same step on the phone: a full-screen page.
    await customer.goto(new URL(rep.url()).pathname);
    await customer.getByRole('heading', { level: 2, name: SHARED_STEP }).waitFor();
    await customer.locator('.task-pane .msg-body', { hasText: 'Questionnaire is attached' }).waitFor();
    await shot(customer, 'task-pane-phone');
  });

  test('the rep moves the deal to the next stage; both sides see it', async () => {
    await rep.getByRole('link', { name: /^Plan\b/ }).click();
    await rep.getByLabel('Stage').selectOption('solution');
    await rep.getByText('The deal is at Solution now.').waitFor();
    await rep.locator('.stage-path li.current', { hasText: 'Solution' }).waitFor();
    await customer.goto(`/room/${roomId}`);
    await customer.locator('.stage-path li.current', { hasText: 'Solution' }).waitFor();
    await rep.getByRole('link', { name: 'Timeline' }).click();
    await rep.locator('li.event', { hasText: 'moved the deal from Discovery to Solution' }).waitFor();
  });

  test('the lists across rooms, on both screens', async () => {
    await rep.locator('#topbar').getByRole('link', { name: 'Rooms' }).click();
    await rep.locator('.room-card', { hasText: `Globex rollout ${id}` }).waitFor();
    await shot(rep, 'rooms-list-desktop');
    await rep.locator('#topbar').getByRole('link', { name: 'My tasks' }).click();
    await rep.locator('li.mytask', { hasText: SHARED_STEP }).waitFor();
    await shot(rep, 'my-tasks-desktop');
    await rep.locator('#topbar').getByRole('link', { name: 'Inbox' }).click();
    await rep.getByRole('heading', { name: 'Inbox' }).waitFor();
    await shot(rep, 'inbox-desktop');
    await customer.locator('#bottomnav').getByRole('link', { name: 'Rooms' }).click();
    await customer.locator('.room-card', { hasText: `Globex rollout ${id}` }).waitFor();
    await shot(customer, 'rooms-list-phone');
    noPageErrors(rep, customer);
  });
});
