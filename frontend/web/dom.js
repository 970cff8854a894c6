// dom.js: building the page with DOM APIs only, and the small formatting
// helpers every view shares. User text always goes in as text nodes
// (textContent), never as HTML: there is no innerHTML anywhere in the app.

/**
 * h creates an element. props: `class` (string or array), `text`
 * (textContent), `on` ({event: handler}), `dataset`, `for`; names with a
 * dash and `role` become attributes; anything else is set as a property.
 * Children may be nodes, strings (as text), arrays, or null/false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'for') el.htmlFor = v;
    else if (k.includes('-') || k === 'role') el.setAttribute(k, v === true ? '' : String(v));
    else el[k] = v;
  }
  append(el, children);
  return el;
}

/** append adds children (nodes, strings, nested arrays) to el. */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** fill replaces el's children (skipping null and false, unlike replaceChildren). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** place makes els the children of container in order, moving as few nodes as it can (so focus stays). */
export function place(container, els) {
  const active = document.activeElement;
  const hadFocus = active && active !== document.body && container.contains(active);
  let ref = container.firstChild;
  for (const el of els) {
    if (el === ref) ref = ref.nextSibling;
    else container.insertBefore(el, ref);
  }
  while (ref) {
    const next = ref.nextSibling;
    ref.remove();
    ref = next;
  }
  // Moving a node takes the focus away from it: give it back.
  if (hadFocus && active.isConnected && document.activeElement !== active) active.focus({ preventScroll: true });
}

/**
 * reconcile keeps one component ({el, update(item), destroy?()}) per item
 * key in map, creating, updating and dropping them as items come and go,
 * and puts their elements into container in the items' order.
 */
export function reconcile(container, map, items, keyOf, create) {
  const seen = new Set();
  const els = [];
  for (const it of items) {
    const k = keyOf(it);
    seen.add(k);
    let c = map.get(k);
    if (c) c.update(it);
    else {
      c = create(it);
      map.set(k, c);
    }
    els.push(c.el);
  }
  for (const [k, c] of map) {
    if (!seen.has(k)) {
      c.destroy?.();
      map.delete(k);
    }
  }
  place(container, els);
}

/**
 * simple turns a render function into a reconcile component that renders
 * again only when sig(item) changes, keeping the focus on the element with
 * the same data-fk inside it.
 */
export function simple(render, sig) {
  return (item) => {
    let s = sig(item);
    const c = {
      el: render(item),
      update(it) {
        const s2 = sig(it);
        if (s2 === s) return;
        s = s2;
        const next = render(it);
        const active = document.activeElement;
        const fk = active && c.el.contains(active) ? active.dataset.fk : null;
        c.el.replaceWith(next);
        c.el = next;
        if (fk) next.querySelector(`[data-fk="${CSS.escape(fk)}"]`)?.focus();
      },
    };
    return c;
  };
}

let uidCounter = 0;
/** uid returns an id unique in the page, for label/aria wiring. */
export function uid(prefix = 'u') {
  uidCounter += 1;
  return `${prefix}-${uidCounter}`;
}

/** field wraps a control with its visible label (and an optional hint). */
export function field(label, control, hint) {
  if (!control.id) control.id = uid('f');
  let hintEl = null;
  if (hint) {
    hintEl = h('small', { class: 'hint', id: uid('hint'), text: hint });
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, hintEl);
}

// Icons: small line drawings made here, so they look the same everywhere
// (no icon font, no emoji font needed).
const ICONS = {
  lock: ['M7 11h10a2 2 0 0 1 2 2v6a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2v-6a2 2 0 0 1 2-2z', 'M8 11V8a4 4 0 0 1 8 0v3'],
  people: ['M9 11.5a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z', 'M2.5 20c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6', 'M17 11a2.5 2.5 0 1 0 0-5', 'M17.5 14c2.4.4 4 2.3 4 5'],
  clip: ['M20 11.5l-8.2 8.2a5 5 0 0 1-7.1-7.1l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7l-8.5 8.5a1.7 1.7 0 0 1-2.4-2.4l7.8-7.8'],
  chat: ['M4 5h16v11H10l-6 4z'],
  file: ['M6 3h8l4 4v14H6z', 'M14 3v4h4'],
  home: ['M3 11l9-7 9 7', 'M5 9.5V20h5v-6h4v6h5V9.5'],
  chart: ['M4 20V11', 'M10 20V5', 'M16 20v-7', 'M2 20h20'],
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  at: ['M12 16a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M16 12v1.5a2.5 2.5 0 0 0 5 0V12a9 9 0 1 0-3.5 7.1'],
  plus: ['M12 5v14', 'M5 12h14'],
  copy: ['M10 8h9a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1h-9a1 1 0 0 1-1-1V9a1 1 0 0 1 1-1z', 'M15 8V5a1 1 0 0 0-1-1H5a1 1 0 0 0-1 1v9a1 1 0 0 0 1 1h4'],
  mail: ['M5 5h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z', 'M3 7l9 6 9-6'],
  warn: ['M12 3l10 18H2z', 'M12 10v5', 'M12 18v.5'],
  refresh: ['M20 12a8 8 0 1 1-2.3-5.7', 'M20 4v5h-5'],
  back: ['M15 5l-7 7 7 7'],
};
const SVG = 'http://www.w3.org/2000/svg';

/** icon returns a decorative drawing (or glyph) that screen readers skip. */
export function icon(name) {
  const paths = ICONS[name];
  if (!paths) return h('span', { class: 'icon', 'aria-hidden': 'true', text: name });
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of paths) {
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

// ---------------------------------------------------------------------------
// Words for the server's values.

export const STAGES = {
  discovery: 'Discovery', solution: 'Solution', trust: 'Trust', signing: 'Signing',
  implementation: 'Implementation', relationship: 'Relationship', won: 'Won', lost: 'Lost',
};
export const WINDOWS = {
  this_month: 'This month', next_month: 'Next month', quarter: 'This quarter',
  half_year: 'Within half a year', unknown: 'Not forecast',
};
export const WINDOW_ORDER = ['this_month', 'next_month', 'quarter', 'half_year', 'unknown'];
export const STATUSES = { open: 'Open', in_progress: 'In progress', done: 'Done', blocked: 'Blocked' };

export function stageLabel(s) {
  if (!s) return '';
  return STAGES[s] || s.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

// ---------------------------------------------------------------------------
// Dates, sizes, money.

const pad = (n) => String(n).padStart(2, '0');

/** todayISO is the local calendar day, YYYY-MM-DD. */
export function todayISO(d = new Date()) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** addDays returns the day n days after the YYYY-MM-DD day iso. */
export function addDays(iso, n) {
  const d = new Date(`${iso}T12:00:00`);
  d.setDate(d.getDate() + n);
  return todayISO(d);
}

/** daysFromToday counts the days from today to the YYYY-MM-DD day (negative: past). */
export function daysFromToday(iso) {
  return Math.round((Date.parse(`${iso}T00:00:00Z`) - Date.parse(`${todayISO()}T00:00:00Z`)) / 86400000);
}

export function fmtDay(iso) {
  const d = new Date(`${iso}T12:00:00`);
  const opts = { day: 'numeric', month: 'short' };
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString(undefined, opts);
}

/** dueInfo describes a due date: {label, overdue, soon}, or null without one. */
export function dueInfo(due, status) {
  if (!due) return null;
  const n = daysFromToday(due);
  const done = status === 'done';
  let label;
  if (done) label = `Due ${fmtDay(due)}`;
  else if (n < 0) label = `${-n} day${n === -1 ? '' : 's'} overdue (${fmtDay(due)})`;
  else if (n === 0) label = 'Due today';
  else if (n === 1) label = 'Due tomorrow';
  else if (n < 7) label = `Due ${new Date(`${due}T12:00:00`).toLocaleDateString(undefined, { weekday: 'long' })}`;
  else label = `Due ${fmtDay(due)}`;
  return { label, overdue: !done && n < 0, soon: !done && n >= 0 && n <= 2 };
}

export function fmtDateTime(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}

export function fmtTime(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/** fmtAgo says how long ago an RFC 3339 time was, in words. */
export function fmtAgo(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 45) return 'just now';
  if (s < 90) return 'a minute ago';
  if (s < 3600) return `${Math.round(s / 60)} minutes ago`;
  if (s < 5400) return 'an hour ago';
  if (s < 86400) return `${Math.round(s / 3600)} hours ago`;
  const d = Math.round(s / 86400);
  if (d === 1) return 'yesterday';
  if (d < 60) return `${d} days ago`;
  return new Date(iso).toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
}

/** daysSince counts whole days since an RFC 3339 time. */
export function daysSince(iso) {
  return (Date.now() - Date.parse(iso)) / 86400000;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

export function fmtMoney(value, currency) {
  if (value === null || value === undefined) return '';
  try {
    return new Intl.NumberFormat(undefined, currency
      ? { style: 'currency', currency, maximumFractionDigits: 0 }
      : { maximumFractionDigits: 0 }).format(value);
  } catch {
    return `${value} ${currency || ''}`.trim();
  }
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return s.toUpperCase();
}

/** plural: "1 step", "3 steps". */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// ---------------------------------------------------------------------------
// Toasts and screen-reader announcements.

/**
 * toast shows a short message at the bottom of the screen, announced to
 * screen readers. kind: "info" | "error" | "ok". action: {label, run}.
 */
export function toast(message, { kind = 'info', action, timeout = 6000 } = {}) {
  const region = document.getElementById('toasts');
  if (!region) return;
  const close = () => el.remove();
  const el = h('div', { class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : 'status' },
    h('span', { text: message }),
    action ? h('button', { type: 'button', class: 'link', text: action.label, on: { click: () => { close(); action.run(); } } }) : null,
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', text: '×', on: { click: close } }));
  region.append(el);
  if (timeout) setTimeout(close, timeout);
}

/** errorText turns an error into a sentence for people. */
export function errorText(err) {
  if (!err) return 'Something went wrong.';
  if (err.code === 'offline') return err.message;
  return err.message || String(err);
}

/** copyText copies text to the clipboard, falling back to selecting it. */
export async function copyText(text, fallbackInput) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallbackInput) {
      fallbackInput.focus();
      fallbackInput.select();
      try {
        return document.execCommand('copy');
      } catch {
        return false;
      }
    }
    return false;
  }
}

/** mapLimit runs fn over items with at most n running at once. */
export async function mapLimit(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
