// views/timeline.js: the room's events as a readable history of the deal,
// day by day, oldest first, so a deal can be replayed and learned from.

import { h, uid, toast, errorText, fmtTime, fmtBytes, fmtDay, stageLabel, WINDOWS, STATUSES, fmtMoney, fill } from '../dom.js';
import { internalBadge, avatar } from '../components.js';

const KINDS = [['all', 'Everything'], ['task', 'Plan'], ['message', 'Discussion'], ['member', 'People'], ['attachment', 'Files'], ['room', 'Deal']];

function kindOf(type) {
  const k = type.split('.')[0];
  return k === 'invite' ? 'member' : k;
}

/** describe turns an event into a sentence: an array of strings and nodes. */
export function describe(e, st) {
  const d = e.data || {};
  const q = (s) => h('strong', { class: 'q', text: `“${s}”` });
  const who = (id, fallback) => h('strong', { text: st.members.get(id)?.name || fallback || id });
  const ch = e.changes || {};
  switch (e.type) {
    case 'room.created':
      return ['opened the room ', q(d.name), ` for ${d.company}`, d.tasks && d.tasks.length ? ` with a plan of ${d.tasks.length} steps` : '', '.'];
    case 'room.updated': {
      const parts = [];
      if (ch.stage) parts.push(['moved the deal from ', h('strong', { text: stageLabel(ch.stage.from) }), ' to ', h('strong', { text: stageLabel(ch.stage.to) })]);
      if (ch.close_window) parts.push([`changed the forecast to “${WINDOWS[ch.close_window.to] || ch.close_window.to}”`]);
      if (ch.value) parts.push([ch.value.to === null ? 'cleared the value' : `set the value to ${fmtMoney(ch.value.to, d.currency)}`]);
      if (ch.currency && !ch.value) parts.push([`set the currency to ${ch.currency.to || 'none'}`]);
      if (ch.name) parts.push(['renamed the room to ', q(ch.name.to)]);
      if (ch.company) parts.push([`changed the company to ${ch.company.to}`]);
      if (ch.tags) parts.push([`changed the tags to ${(ch.tags.to || []).join(', ') || 'none'}`]);
      if (!parts.length) return ['changed the room’s settings.'];
      return parts.flatMap((p, i) => [i ? (i === parts.length - 1 ? ' and ' : ', ') : '', ...p]).concat('.');
    }
    case 'member.added':
      return ['added ', h('strong', { text: d.name }), d.kind === 'customer' ? ' (customer)' : '', ' to the room.'];
    case 'member.updated':
      if (ch.access) return ['gave ', h('strong', { text: d.name }), ch.access.to === 'read' ? ' read-only access.' : ' edit access.'];
      if (ch.role_in_room) return [ch.role_in_room.to === 'owner' ? 'made ' : 'removed ', h('strong', { text: d.name }), ch.role_in_room.to === 'owner' ? ' an owner of the room.' : ' as an owner.'];
      return ['changed ', h('strong', { text: d.name }), '’s membership.'];
    case 'member.removed':
      return e.actor && e.actor.id === d.user_id ? ['left the room.'] : ['removed ', h('strong', { text: d.name }), ' from the room.'];
    case 'invite.created':
      return [`invited ${d.email}.`];
    case 'invite.revoked':
      return [`revoked the invite for ${d.email}.`];
    case 'invite.accepted':
      return ['joined the room by invite.'];
    case 'task.created': {
      const to = (d.assignees || []).map((u) => st.name(u));
      return ['added the step ', q(d.title), to.length ? `, owned by ${to.join(', ')}` : '', d.due ? `, due ${fmtDay(d.due)}` : '', '.'];
    }
    case 'task.updated': {
      const parts = [];
      if (ch.status) {
        const to = ch.status.to;
        parts.push(to === 'done' ? ['completed ', q(d.title)] : ch.status.from === 'done' ? ['reopened ', q(d.title)] : [`set `, q(d.title), ` to “${STATUSES[to] || to}”`]);
      }
      if (ch.assignees) {
        const to = (ch.assignees.to || []).map((u) => st.name(u));
        parts.push(to.length ? ['gave ', q(d.title), ` to ${to.join(', ')}`] : ['left ', q(d.title), ' without an owner']);
      }
      const slip = ch.commitment?.to?.state === 'slipped' ? ` (slipped ${ch.commitment.to.slipped_days} d after it was confirmed)` : '';
      if (ch.due) parts.push(ch.due.to ? ['moved the due date of ', q(d.title), ` to ${fmtDay(ch.due.to)}${slip}`] : ['cleared the due date of ', q(d.title)]);
      if (ch.commitment && !ch.due && ch.commitment.to?.state === 'confirmed') parts.push(['confirmed the due date of ', q(d.title), d.due ? ` (${fmtDay(d.due)})` : '']);
      if (ch.title) parts.push(['renamed ', q(ch.title.from), ' to ', q(ch.title.to)]);
      if (ch.visibility) parts.push(['shared ', q(d.title), ' with the customer']);
      if (ch.description) parts.push(['edited the description of ', q(d.title)]);
      if (ch.position && !parts.length) parts.push(['moved ', q(d.title), ' in the plan']);
      if (!parts.length) return ['changed ', q(d.title), '.'];
      return parts.flatMap((p, i) => [i ? '; ' : '', ...p]).concat('.');
    }
    case 'task.deleted':
      return ['deleted the step ', q(d.title), '.'];
    case 'message.posted': {
      const task = d.task_id ? st.tasks.get(d.task_id) : null;
      const where = task ? [' on ', q(task.title)] : '';
      const text = d.body || '';
      if (d.deleted || !text) return [d.parent_id ? 'replied' : 'wrote a message', where, ' (since deleted).'];
      const body = text.length > 140 ? `${text.slice(0, 140)}…` : text;
      return [d.parent_id ? 'replied' : 'wrote', where, ': ', h('span', { class: 'quote', text: body })];
    }
    case 'message.edited':
      return ['edited a message.'];
    case 'message.deleted':
      return ['deleted a message.'];
    case 'attachment.added': {
      const task = d.task_id ? st.tasks.get(d.task_id) : null;
      return ['uploaded ', h('strong', { text: d.name }), ` (${fmtBytes(d.size)})`, task ? [' to ', q(task.title)] : '', '.'];
    }
    default:
      return [`did “${e.type}”.`];
  }
}

export function timelinePanel(ctx, session) {
  const st = session.state;
  const headingId = uid('h');
  let kind = 'all';
  let limit = 300;
  let loading = false;
  const list = h('ol', { class: 'timeline', 'aria-labelledby': headingId });
  const status = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', class: 'ghost', text: 'Show earlier events', hidden: true, on: { click: () => { limit += 500; render(); } } });
  const select = h('select', { 'aria-label': 'Show in the timeline' }, KINDS.map(([v, l]) => h('option', { value: v, text: l })));
  select.addEventListener('change', () => {
    kind = select.value;
    render();
  });
  const el = h('section', { class: 'panel timeline-panel', 'aria-labelledby': headingId },
    h('div', { class: 'panel-head' }, h('h2', { id: headingId, text: 'Timeline' }), select),
    h('p', { class: 'muted', text: 'Everything that happened in this room, in order: the history of the deal.' }),
    status, more, list);

  let renderedSig = '';
  const render = () => {
    const all = [...st.timeline.values()].sort((a, b) => a.seq - b.seq).filter((e) => kind === 'all' || kindOf(e.type) === kind);
    const shown = all.slice(-limit);
    const sig = `${kind}|${limit}|${shown.length}|${shown.length ? shown[shown.length - 1].seq : 0}|${st.members.size}`;
    if (sig === renderedSig) return;
    renderedSig = sig;
    more.hidden = all.length <= shown.length;
    const items = [];
    let day = '';
    for (const e of shown) {
      const dDay = new Date(e.at).toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
      if (dDay !== day) {
        day = dDay;
        items.push(h('li', { class: 'day' }, h('h3', { text: dDay })));
      }
      const name = e.actor?.name || st.name(e.actor?.id);
      items.push(h('li', { class: ['event', `ev-${kindOf(e.type)}`, e.visibility === 'internal' && 'is-internal'], dataset: { seq: e.seq } },
        h('time', { dateTime: e.at, text: fmtTime(e.at) }),
        avatar(name, e.actor?.kind),
        h('p', {}, h('strong', { text: name }), ' ', describe(e, st), e.visibility === 'internal' ? [' ', internalBadge(true)] : null)));
    }
    fill(list, ...items);
    if (!loading) status.textContent = shown.length ? '' : 'Nothing here yet.';
  };

  let asked = false;
  return {
    el,
    update() {
      if (!asked) {
        asked = true;
        loading = true;
        status.textContent = 'Loading the history…';
        session.loadHistory().then(() => {
          loading = false;
          status.textContent = '';
          renderedSig = '';
          render();
        }, (err) => {
          loading = false;
          status.textContent = '';
          toast(`Could not load the whole timeline: ${errorText(err)}`, { kind: 'error' });
        });
      }
      render();
    },
  };
}
