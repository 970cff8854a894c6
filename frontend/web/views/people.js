// views/people.js: who is in the room and who is here now, managing
// access, adding teammates, and inviting customers by link.

import { h, field, icon, uid, reconcile, simple, toast, errorText, fmtAgo, fmtDay, copyText, plural, fill } from '../dom.js';
import { enc } from '../api.js';
import { avatar, sideLabel } from '../components.js';

function inviteStatus(i) {
  if (i.status) return i.status;
  if (i.revoked_at) return 'revoked'; // an accepted invite may be revoked too
  if (i.accepted_at) return 'accepted';
  if (Date.parse(i.expires_at) <= Date.now()) return 'expired';
  return 'pending';
}

const STATUS_WORDS = { pending: 'Waiting', accepted: 'Joined', revoked: 'Revoked', expired: 'Expired' };

export function peoplePanel(ctx, session) {
  const st = session.state;
  const headingId = uid('h');
  const rows = new Map();
  const list = h('ul', { class: 'members' });
  const here = h('p', { class: 'here-now' });

  const memberRow = (m) => {
    const p = session.perm();
    const me = m.user_id === st.me.user_id;
    const pres = session.presence.find((x) => x.user_id === m.user_id);
    const actions = [];
    if (p.manage && !me) {
      const access = h('select', { 'aria-label': `Access of ${m.name}`, dataset: { fk: 'access' } },
        h('option', { value: 'write', text: 'Can edit' }), h('option', { value: 'read', text: 'Read only' }));
      access.value = m.access;
      access.addEventListener('change', () => change(m, { access: access.value }));
      actions.push(access);
      if (m.kind === 'staff') {
        actions.push(h('button', {
          type: 'button', class: 'link', dataset: { fk: 'owner' },
          text: m.role_in_room === 'owner' ? 'Remove as owner' : 'Make owner',
          on: { click: () => change(m, { role_in_room: m.role_in_room === 'owner' ? 'member' : 'owner' }) },
        }));
      }
      actions.push(h('button', {
        type: 'button', class: 'link danger', text: 'Remove', dataset: { fk: 'remove' },
        on: {
          click: async () => {
            if (!confirm(`Remove ${m.name} from this room?`)) return;
            try {
              await session.run((api, base) => api.del(`${base}/members/${enc(m.user_id)}`));
            } catch (err) {
              toast(errorText(err), { kind: 'error' });
            }
          },
        },
      }));
    }
    return h('li', { class: 'member' },
      h('span', { class: 'avatar-wrap' }, avatar(m.name, m.kind), pres ? h('span', { class: 'dot-here', title: 'Here now' }) : null),
      h('span', { class: 'member-main' },
        h('strong', { text: me ? `${m.name} (me)` : m.name }), ' ', sideLabel(m.kind),
        m.role_in_room === 'owner' ? h('span', { class: 'badge', text: 'Owner' }) : null,
        h('span', { class: 'muted small' },
          m.access === 'read' ? ' · Read only' : ' · Can edit',
          pres ? (pres.state === 'typing' ? ' · typing…' : ' · here now') : '')),
      actions.length ? h('span', { class: 'member-actions' }, actions) : null);
  };

  const change = async (m, patch) => {
    try {
      await session.run((api, base) => api.patch(`${base}/members/${enc(m.user_id)}`, patch));
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  };

  // Inviting a customer.
  const email = h('input', { type: 'email', required: true, autocomplete: 'off', placeholder: 'name@customer.com', maxLength: 254 });
  const access = h('select', {}, h('option', { value: 'write', text: 'Can edit (complete steps, post, upload)' }), h('option', { value: 'read', text: 'Read only' }));
  const days = h('input', { type: 'number', min: 1, max: 90, value: 14, inputMode: 'numeric' });
  const inviteBtn = h('button', { type: 'submit', class: 'primary' }, icon('mail'), 'Create invite link');
  const result = h('div', { class: 'invite-result', hidden: true, role: 'status' });
  const inviteForm = h('form', { class: 'invite-form', 'aria-label': 'Invite a customer' },
    field('Customer email', email, 'The invite works once, for this address.'), field('Access', access),
    field('Valid for (days)', days), h('div', { class: 'form-end' }, inviteBtn));
  inviteForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!email.checkValidity()) {
      email.reportValidity();
      return;
    }
    inviteBtn.disabled = true;
    try {
      const inv = await session.run((api, base) => api.post(`${base}/invites`, { email: email.value.trim(), access: access.value, expires_in_days: Number(days.value) || 14 }));
      showLink(inv);
      email.value = '';
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    } finally {
      inviteBtn.disabled = false;
    }
  });
  const showLink = (inv) => {
    if (!inv.url) {
      fill(result, h('p', { text: 'The invite exists, but its link was shown only once. Revoke it and make a new one.' }));
      result.hidden = false;
      return;
    }
    const link = h('input', { type: 'text', readOnly: true, value: inv.url, class: 'invite-link', 'aria-label': `Invite link for ${inv.email}` });
    const copied = h('span', { class: 'ok-text', 'aria-live': 'polite' });
    const copy = h('button', {
      type: 'button', class: 'primary',
      on: {
        click: async () => {
          const ok = await copyText(inv.url, link);
          copied.textContent = ok ? 'Copied.' : 'Select the link and copy it.';
        },
      },
    }, icon('copy'), 'Copy link');
    link.addEventListener('focus', () => link.select());
    fill(result, 
      h('p', {}, 'Send this link to ', h('strong', { text: inv.email }), `. It works once, until ${fmtDay(inv.expires_at.slice(0, 10))}, and it is shown only now.`),
      h('div', { class: 'copy-row' }, link, copy), copied);
    result.hidden = false;
    copy.focus();
  };

  const invites = new Map();
  const inviteList = h('ul', { class: 'invites' });
  const inviteRow = (i) => {
    const s = inviteStatus(i);
    return h('li', { class: 'invite' },
      h('span', { class: 'invite-email', text: i.email }),
      h('span', { class: ['badge', `invite-${s}`], text: STATUS_WORDS[s] || s }),
      h('span', { class: 'muted small', text: s === 'pending' ? `until ${fmtDay(i.expires_at.slice(0, 10))}` : `sent ${fmtAgo(i.created_at)}` }),
      s === 'pending' || s === 'accepted' ? h('button', {
        type: 'button', class: 'link danger', text: s === 'pending' ? 'Revoke' : 'End sign-in',
        title: s === 'pending' ? 'The link stops working.' : 'Every device that joined through this link is signed out; the person stays a member until removed.',
        on: {
          click: async () => {
            const what = s === 'pending'
              ? `Revoke the invite for ${i.email}? The link stops working.`
              : `End the sign-in of ${i.email} through this invite? Every device that joined with the link is signed out at once. They stay a member until you remove them; send a new invite to let them back in.`;
            if (!confirm(what)) return;
            try {
              await session.run((api, base) => api.del(`${base}/invites/${enc(i.id)}`));
            } catch (err) {
              toast(errorText(err), { kind: 'error' });
            }
          },
        },
      }) : null);
  };

  // Adding a teammate (owners, managers, admins).
  const mateId = h('input', { type: 'text', required: true, autocomplete: 'off', placeholder: 'e.g. alice', pattern: '[A-Za-z0-9][A-Za-z0-9._@:+|\\-]{0,127}' });
  const mateName = h('input', { type: 'text', required: true, maxLength: 100, placeholder: 'Alice Example' });
  const mateForm = h('form', { class: 'mate-form', 'aria-label': 'Add a teammate' },
    field('User id', mateId, 'The id they sign in with (the token\'s sub).'), field('Name', mateName),
    h('div', { class: 'form-end' }, h('button', { type: 'submit', class: 'ghost', text: 'Add teammate' })));
  mateForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!mateForm.checkValidity()) {
      mateForm.reportValidity();
      return;
    }
    try {
      await session.run((api, base) => api.post(`${base}/members`, { user_id: mateId.value.trim(), name: mateName.value.trim(), kind: 'staff' }));
      mateId.value = '';
      mateName.value = '';
    } catch (err) {
      toast(errorText(err), { kind: 'error' });
    }
  });

  const leave = h('button', {
    type: 'button', class: 'link danger', text: 'Leave this room',
    on: {
      click: async () => {
        if (!confirm('Leave this room? You will need a new invitation to come back.')) return;
        try {
          await session.api.del(`/rooms/${enc(session.id)}/members/${enc(st.me.user_id)}`);
          ctx.navigate('/');
        } catch (err) {
          toast(errorText(err), { kind: 'error' });
        }
      },
    },
  });

  const inviteSection = h('section', { class: 'card', 'aria-labelledby': `${headingId}-inv` },
    h('h3', { id: `${headingId}-inv`, text: 'Invite a customer' }),
    h('p', { class: 'muted', text: 'The customer opens the link, enters their name and this email address, and is in the room: no account needed.' }),
    inviteForm, result, h('h4', { text: 'Invites' }), inviteList);
  const mateSection = h('section', { class: 'card', 'aria-labelledby': `${headingId}-mate` },
    h('h3', { id: `${headingId}-mate`, text: 'Add a teammate' }), mateForm);
  const el = h('section', { class: 'panel people', 'aria-labelledby': headingId },
    h('div', { class: 'panel-head' }, h('h2', { id: headingId, text: 'People' })), here, list,
    inviteSection, mateSection, h('p', {}, leave));

  return {
    el,
    update() {
      const p = session.perm();
      const members = [...st.members.values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'staff' ? -1 : 1));
      reconcile(list, rows, members, (m) => m.user_id, simple(memberRow,
        (m) => JSON.stringify(m) + JSON.stringify(session.presence.find((x) => x.user_id === m.user_id) || null) + JSON.stringify(p)));
      const present = session.presence.filter((x) => st.members.has(x.user_id) || x.name);
      here.textContent = present.length ? `Here now: ${present.map((x) => x.name || st.name(x.user_id)).join(', ')}` : `${plural(members.length, 'member')}.`;
      inviteSection.hidden = !p.invite;
      mateSection.hidden = !p.manage;
      leave.hidden = !st.members.has(st.me.user_id);
      const invs = [...st.invites.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
      reconcile(inviteList, invites, invs, (i) => i.id, simple(inviteRow, (i) => JSON.stringify(i) + inviteStatus(i)));
    },
  };
}
