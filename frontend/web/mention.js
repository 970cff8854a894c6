// mention.js: @-mention autocomplete for text areas, and showing message
// text with its mentions and links marked, all as text nodes.

import { h, uid, fill } from './dom.js';
import { sideText } from './components.js';

/**
 * mentionBox adds @-mention autocomplete to a textarea. members() returns
 * the people who can be mentioned there: [{user_id, name, kind}]. It
 * returns the listbox element, to be placed right after the textarea.
 */
export function mentionBox(textarea, members) {
  const id = uid('mentions');
  const list = h('ul', { class: 'mention-list', id, role: 'listbox', hidden: true, 'aria-label': 'People to mention' });
  textarea.setAttribute('aria-autocomplete', 'list');
  textarea.setAttribute('aria-controls', id);
  textarea.setAttribute('aria-expanded', 'false');
  let matches = [];
  let active = 0;
  let start = -1;

  const close = () => {
    matches = [];
    start = -1;
    list.hidden = true;
    list.replaceChildren();
    textarea.setAttribute('aria-expanded', 'false');
    textarea.removeAttribute('aria-activedescendant');
  };

  const show = () => {
    fill(list, ...matches.map((m, i) => h('li', {
      id: `${id}-${i}`, role: 'option', class: i === active ? 'active' : '', 'aria-selected': i === active ? 'true' : 'false',
      on: { mousedown: (e) => { e.preventDefault(); choose(i); } },
    }, h('span', { class: 'avatar small', 'aria-hidden': 'true', text: initialsOf(m.name) }),
    h('span', { text: m.name }),
    h('span', { class: ['side', m.kind === 'customer' ? 'side-customer' : 'side-team'], text: sideText(m.kind) }))));
    const wasHidden = list.hidden;
    list.hidden = false;
    if (wasHidden) list.scrollIntoView({ block: 'nearest' });
    textarea.setAttribute('aria-expanded', 'true');
    textarea.setAttribute('aria-activedescendant', `${id}-${active}`);
  };

  const choose = (i) => {
    const m = matches[i];
    if (!m) return;
    const pos = textarea.selectionStart;
    const before = textarea.value.slice(0, start);
    const after = textarea.value.slice(pos);
    const insert = `@${m.name} `;
    textarea.value = before + insert + after;
    const caret = before.length + insert.length;
    textarea.setSelectionRange(caret, caret);
    close();
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
    textarea.focus();
  };

  const update = () => {
    const pos = textarea.selectionStart;
    const before = textarea.value.slice(0, pos);
    const at = before.lastIndexOf('@');
    if (at < 0 || (at > 0 && /[\p{L}\p{N}_.]/u.test(before[at - 1]))) return close();
    const q = before.slice(at + 1);
    if (q.length > 40 || /[\n@]/.test(q) || /\s\s/.test(q)) return close();
    const ql = q.toLowerCase();
    const found = members().filter((m) => {
      const name = m.name.toLowerCase();
      return !ql || name.startsWith(ql) || name.split(/\s+/).some((w) => w.startsWith(ql)) || m.user_id.toLowerCase().startsWith(ql);
    }).slice(0, 8);
    if (!found.length) return close();
    matches = found;
    start = at;
    active = Math.min(active, matches.length - 1);
    show();
  };

  textarea.addEventListener('input', update);
  textarea.addEventListener('click', update);
  textarea.addEventListener('blur', () => setTimeout(close, 150));
  textarea.addEventListener('keydown', (e) => {
    if (list.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + matches.length) % matches.length;
      show();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      if (e.ctrlKey || e.metaKey) return;
      e.preventDefault();
      choose(active);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
    }
  });
  return list;
}

function initialsOf(name) {
  const p = String(name).trim().split(/\s+/);
  return ((p[0] || '?')[0] + (p.length > 1 ? p[p.length - 1][0] : '')).toUpperCase();
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * richText returns a fragment showing text with @mentions of the given
 * names marked and http(s) links made clickable. Everything is a text node
 * or an element built here; nothing is parsed as HTML.
 */
export function richText(text, names = []) {
  const frag = document.createDocumentFragment();
  const alts = [...new Set(names.filter(Boolean))].sort((a, b) => b.length - a.length).map(escapeRe);
  const parts = ['https?://[^\\s<>"]+[^\\s<>".,;:!?)\\]]'];
  if (alts.length) parts.unshift(`@(?:${alts.join('|')})(?![\\p{L}\\p{N}_])`);
  const re = new RegExp(parts.join('|'), 'giu');
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) frag.append(text.slice(last, m.index));
    const s = m[0];
    if (s.startsWith('@')) frag.append(h('span', { class: 'mention', text: s }));
    else frag.append(h('a', { href: s, text: s, target: '_blank', rel: 'noopener noreferrer' }));
    last = m.index + s.length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}
