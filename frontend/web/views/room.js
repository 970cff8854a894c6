// views/room.js: the room, the digital studio of one opportunity: its
// header (deal, stage, who is here), and the plan, discussion, files,
// people and timeline tabs, kept live by a RoomSession.

import {
  h, field, icon, uid, reconcile, simple, toast, errorText, plural, stageLabel, WINDOWS, WINDOW_ORDER, fmtMoney, fill,
} from '../dom.js';
import { enc } from '../api.js';
import { RoomSession } from '../store.js';
import { threads, uploader, fileRow, avatar, internalBadge, planHealth, healthOf } from '../components.js';
import { planPanel, taskPane } from './plan.js';
import { peoplePanel } from './people.js';
import { timelinePanel } from './timeline.js';
import { engagementPanel, fileSeen } from '../engagement.js';

const TABS = [['plan', 'Plan'], ['discussion', 'Discussion'], ['files', 'Files'], ['people', 'People'], ['timeline', 'Timeline']];

function discussionPanel(ctx, session) {
  const headingId = uid('h');
  const talk = threads(session, { taskId: null, title: 'Discussion of the room' });
  const el = h('section', { class: 'panel', 'aria-labelledby': headingId },
    h('div', { class: 'panel-head' }, h('h2', { id: headingId, text: 'Discussion' })),
    session.me.kind === 'staff' ? h('p', { class: 'muted' }, 'Everything here is shared with the customer unless you tick ', h('em', { text: 'Internal note' }), '. Discussions of a step are on the step itself.') : null,
    talk.el);
  return { el, update: () => talk.update() };
}

function filesPanel(ctx, session) {
  const st = session.state;
  const headingId = uid('h');
  const rows = new Map();
  const list = h('ul', { class: 'files' });
  const empty = h('p', { class: 'empty', text: 'No files yet. Proposals, contracts and recordings live here.' });
  const up = session.perm().write ? uploader(session) : null;
  const el = h('section', { class: 'panel', 'aria-labelledby': headingId },
    h('div', { class: 'panel-head' }, h('h2', { id: headingId, text: 'Files' })), up ? up.el : null, list, empty);
  // Each file with who opened it ("seen by", from the download route).
  const row = fileRow(session);
  const withSeen = simple((x) => {
    const li = row(x.a).el;
    if (x.seen.length) li.append(h('p', { class: 'seen-by muted small', text: `Seen by ${x.seen.join(', ')}` }));
    return li;
  }, (x) => JSON.stringify(x.a) + x.seen.join(',') + (x.a.task_id ? st.tasks.get(x.a.task_id)?.title : '') + st.members.size);
  const draw = () => {
    const all = [...st.attachments.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1))
      .map((a) => ({ a, seen: seen.names(a) }));
    reconcile(list, rows, all, (x) => x.a.id, withSeen);
    empty.hidden = all.length > 0;
  };
  const seen = fileSeen(session, draw);
  return {
    el,
    update() {
      draw();
      seen.refresh();
    },
  };
}

/** settingsDialog edits the deal: name, company, value, forecast, tags. */
function settingsDialog(session) {
  const r = session.state.room;
  const name = h('input', { type: 'text', value: r.name, required: true, maxLength: 200 });
  const company = h('input', { type: 'text', value: r.company, required: true, maxLength: 200 });
  const value = h('input', { type: 'number', min: 0, step: 'any', value: r.value ?? '', inputMode: 'decimal' });
  const currency = h('input', { type: 'text', value: r.currency || '', maxLength: 3, pattern: '[A-Z]{3}', placeholder: 'EUR', autocapitalize: 'characters' });
  const win = h('select', {}, WINDOW_ORDER.map((w) => h('option', { value: w, text: WINDOWS[w] })));
  win.value = r.close_window || 'unknown';
  const tags = h('input', { type: 'text', value: (r.tags || []).join(', '), placeholder: 'renewal, enterprise' });
  const dlg = h('dialog', { class: 'dialog', 'aria-label': 'Deal settings' });
  const form = h('form', { method: 'dialog' },
    h('h2', { text: 'Deal settings' }), field('Room name', name), field('Company', company),
    h('div', { class: 'row' }, field('Value', value), field('Currency', currency, 'ISO code, like EUR')),
    field('Can be signed', win), field('Tags', tags, 'Separated by commas'),
    h('div', { class: 'form-end' },
      h('button', { type: 'button', class: 'ghost', text: 'Cancel', on: { click: () => dlg.close() } }),
      h('button', { type: 'submit', class: 'primary', text: 'Save' })));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!form.checkValidity()) {
      form.reportValidity();
      return;
    }
    const patch = {
      name: name.value.trim(), company: company.value.trim(),
      value: value.value === '' ? null : Number(value.value), currency: currency.value.trim().toUpperCase(),
      close_window: win.value, tags: tags.value.split(',').map((t) => t.trim()).filter(Boolean),
    };
    try {
      await session.run((api, base) => api.patch(base, patch));
      dlg.close();
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  });
  dlg.append(form);
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}

export function roomView(ctx, params) {
  const session = new RoomSession({ api: ctx.api, sync: ctx.sync, me: ctx.me, roomId: params.id });
  const st = session.state;
  const roomPath = `/room/${enc(params.id)}`;
  let current = { ...params };
  const panels = {};
  let pane = null;
  let paneId = null;

  const el = h('div', { class: 'room' }, h('p', { class: 'loading', role: 'status', text: 'Loading the room…' }));

  // Parts built once the room is loaded.
  const title = h('h1', { class: 'room-name' });
  const sub = h('p', { class: 'room-sub' });
  const facts = h('div', { class: 'room-facts' });
  const presence = h('div', { class: 'presence', 'aria-label': 'Here now' });
  const typing = h('p', { class: 'typing' });
  const stagePath = h('ol', { class: 'stage-path', 'aria-label': 'Where the deal stands' });
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Room' });
  const tabLinks = {};
  const tabList = [...TABS, ['engagement', ctx.me.kind === 'staff' ? 'Engagement' : 'Your visits']];
  for (const [key, label] of tabList) {
    tabLinks[key] = h('a', { href: key === 'plan' ? roomPath : `${roomPath}/${key}`, class: 'tab' }, h('span', { text: label }), h('span', { class: 'tab-count' }));
    tabs.append(tabLinks[key]);
  }
  const main = h('div', { class: 'room-main' });
  const callout = h('div', { class: 'callout', hidden: true },
    h('p', { text: 'No one from the customer’s side is in this room yet. Invite them: they open a link and are in, on a laptop or a phone.' }),
    h('a', { class: 'button', href: `${roomPath}/people` }, icon('mail'), 'Invite the customer'));
  const side = h('div', { class: 'room-side' });
  const body = h('div', { class: 'room-body' }, main, side);
  const stageSelect = h('select', { 'aria-label': 'Stage' });
  stageSelect.addEventListener('change', async () => {
    const stage = stageSelect.value;
    try {
      await session.run((api, base) => api.patch(base, { stage }));
      toast(`The deal is at ${stageLabel(stage)} now.`, { kind: 'ok', timeout: 3000 });
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
      stageSelect.value = st.room.stage;
    }
  });
  const windowSelect = h('select', { 'aria-label': 'Can be signed' }, WINDOW_ORDER.map((w) => h('option', { value: w, text: WINDOWS[w] })));
  windowSelect.addEventListener('change', async () => {
    try {
      await session.run((api, base) => api.patch(base, { close_window: windowSelect.value }));
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
      windowSelect.value = st.room.close_window;
    }
  });

  const panelFor = (tab) => {
    if (!panels[tab]) {
      panels[tab] = tab === 'discussion' ? discussionPanel(ctx, session)
        : tab === 'files' ? filesPanel(ctx, session)
          : tab === 'people' ? peoplePanel(ctx, session)
            : tab === 'timeline' ? timelinePanel(ctx, session)
              : tab === 'engagement' ? engagementPanel(ctx, session)
                : planPanel(ctx, session);
    }
    return panels[tab];
  };

  // Escape closes the step's pane (unless it is closing a list or dialog).
  const onKey = (e) => {
    if (e.key !== 'Escape' || !paneId || e.defaultPrevented) return;
    if (e.target.closest && e.target.closest('input, textarea, select, dialog')) return;
    ctx.navigate(roomPath);
  };
  document.addEventListener('keydown', onKey);

  const presenceState = () => (document.hidden ? 'idle' : 'viewing');
  const onVisibility = () => session.setPresence(presenceState(), session.viewingTask || undefined);
  document.addEventListener('visibilitychange', onVisibility);

  const renderHeader = () => {
    const r = st.room;
    const p = session.perm();
    title.textContent = r.name;
    ctx.setTitle(r.name);
    const owner = r.owner_id ? st.name(r.owner_id) : '';
    sub.textContent = st.customer ? r.company : `${r.company}${owner ? ` · owner ${owner}` : ''}`;
    // Stage and forecast.
    const stages = [...(r.pipeline || []), 'won', 'lost'];
    // The plan's health, kept live from the steps (both sides see it: it
    // counts shared steps only).
    const health = h('span', { class: 'fact' }, planHealth(healthOf(st.tasks.values())));
    if (p.settings) {
      const v = stageSelect.value;
      if (stageSelect.options.length !== stages.length) fill(stageSelect, ...stages.map((s) => h('option', { value: s, text: stageLabel(s) })));
      if (v !== r.stage || document.activeElement !== stageSelect) stageSelect.value = r.stage;
      if (document.activeElement !== windowSelect) windowSelect.value = r.close_window || 'unknown';
      fill(facts, 
        h('label', { class: 'fact' }, h('span', { class: 'fact-label', text: 'Stage' }), stageSelect),
        h('label', { class: 'fact' }, h('span', { class: 'fact-label', text: 'Can be signed' }), windowSelect),
        r.value !== null && r.value !== undefined ? h('span', { class: 'fact' }, h('span', { class: 'fact-label', text: 'Value' }), h('strong', { text: fmtMoney(r.value, r.currency) })) : null,
        h('button', { type: 'button', class: 'ghost small', text: 'Deal settings', on: { click: () => settingsDialog(session) } }),
        health);
    } else {
      fill(facts, h('span', { class: 'fact' }, h('span', { class: 'fact-label', text: 'Stage' }), h('strong', { text: stageLabel(r.stage) })),
        !st.customer && r.close_window ? h('span', { class: 'fact' }, h('span', { class: 'fact-label', text: 'Can be signed' }), h('strong', { text: WINDOWS[r.close_window] })) : null,
        health);
    }
    const at = stages.indexOf(r.stage);
    fill(stagePath, ...(r.pipeline || []).map((s, i) => h('li', {
      class: [i < at && r.stage !== 'lost' && 'passed', s === r.stage && 'current'],
      'aria-current': s === r.stage ? 'step' : null,
    }, h('span', { text: stageLabel(s) }))),
    r.stage === 'won' || r.stage === 'lost' ? h('li', { class: ['current', `closed-${r.stage}`], 'aria-current': 'step' }, h('span', { text: stageLabel(r.stage) })) : null);
  };

  const renderPresence = () => {
    const here = session.presence.filter((x) => x.state !== 'offline');
    fill(presence, ...(here.length ? [h('span', { class: 'muted small', text: 'Here now' })] : []),
      ...here.map((x) => h('span', { class: ['here', x.state === 'typing' && 'is-typing', x.state === 'idle' && 'is-idle'], title: `${x.name}${x.state === 'typing' ? ' is typing' : x.state === 'idle' ? ' (away)' : ' is here'}` },
        avatar(x.name, x.kind), h('span', { class: 'visually-hidden', text: `${x.name}${x.state === 'typing' ? ', typing' : x.state === 'idle' ? ', away' : ''}` }))));
    const typers = here.filter((x) => x.state === 'typing' && x.user_id !== ctx.me.user_id).map((x) => x.name);
    typing.textContent = typers.length ? `${typers.join(', ')} ${typers.length === 1 ? 'is' : 'are'} typing…` : '';
  };

  const renderTabs = () => {
    const tab = current.taskId ? 'plan' : current.tab || 'plan';
    for (const [key] of tabList) {
      if (key === tab) tabLinks[key].setAttribute('aria-current', 'page');
      else tabLinks[key].removeAttribute('aria-current');
    }
    const open = [...st.tasks.values()].filter((t) => t.status !== 'done').length;
    tabLinks.plan.lastChild.textContent = open ? String(open) : '';
    tabLinks.plan.lastChild.title = `${plural(open, 'open step')}`;
    tabLinks.files.lastChild.textContent = st.attachments.size ? String(st.attachments.size) : '';
    tabLinks.people.lastChild.textContent = String(st.members.size);
  };

  const show = () => {
    const tab = current.taskId ? 'plan' : current.tab || 'plan';
    const panel = panelFor(tab);
    if (main.firstChild !== panel.el) fill(main, panel.el);
    if ((current.taskId || null) !== paneId) {
      paneId = current.taskId || null;
      pane = paneId ? taskPane(ctx, session, paneId) : null;
      fill(side, ...(pane ? [pane.el] : []));
      body.classList.toggle('has-pane', !!pane);
      el.classList.toggle('pane-open', !!pane);
      session.viewingTask = paneId;
      session.setPresence(presenceState(), paneId || undefined);
      if (pane) {
        pane.update();
        requestAnimationFrame(() => pane.focus());
      }
    }
  };

  const render = () => {
    if (session.status === 'loading') return;
    if (session.status === 'error') {
      const e = session.error;
      fill(el, h('div', { class: 'panel center' },
        h('h1', { text: e.status === 404 ? 'Room not found' : 'Could not open the room' }),
        h('p', { text: e.status === 404 ? 'This room does not exist, or you are not a member of it.' : errorText(e) }),
        h('p', {}, h('a', { href: '/', class: 'button', text: 'Go to your rooms' }))));
      ctx.setTitle('Room not found');
      return;
    }
    if (st.removed) {
      fill(el, h('div', { class: 'panel center' }, h('h1', { text: 'You left this room' }),
        h('p', { text: 'You are not a member of this room any more.' }), h('p', {}, h('a', { href: '/', class: 'button', text: 'Go to your rooms' }))));
      return;
    }
    if (!title.isConnected) {
      fill(el, 
        h('header', { class: 'room-head' },
          h('div', { class: 'room-id' }, h('a', { href: '/', class: 'back small' }, icon('back'), 'Rooms'), title, sub),
          facts, h('div', { class: 'room-here' }, presence, typing)),
        stagePath,
        st.customer ? null : h('p', { class: 'legend muted small' }, 'Items marked ', internalBadge(true), ' are internal: the customer never sees them.'),
        callout, tabs, body);
    }
    renderHeader();
    const customers = [...st.members.values()].some((m) => m.kind === 'customer');
    const pending = [...st.invites.values()].some((i) => !i.accepted_at && !i.revoked_at && Date.parse(i.expires_at) > Date.now());
    callout.hidden = st.customer || !session.perm().invite || customers || pending || current.tab === 'people';
    renderPresence();
    renderTabs();
    show();
    const tab = current.taskId ? 'plan' : current.tab || 'plan';
    panels[tab].update();
    pane?.update();
  };

  session.on((changes) => {
    if (changes.has('presence') && changes.size === 1 && session.status === 'ready') {
      renderPresence();
      const tab = current.taskId ? 'plan' : current.tab || 'plan';
      if (tab === 'people' || tab === 'discussion') panels[tab]?.update();
      pane?.update();
      return;
    }
    render();
  });
  session.load();

  return {
    el,
    /** route follows a change of tab or step within the same room. */
    route(p) {
      if (p.id !== current.id) return false;
      current = { ...p };
      render();
      return true;
    },
    destroy() {
      document.removeEventListener('visibilitychange', onVisibility);
      document.removeEventListener('keydown', onKey);
      session.close();
    },
    session,
  };
}
