// api.js: the REST client. Every call goes to /api/v1, signed in by the
// browser's session cookie (HttpOnly: this code never sees it); every
// change repeats the session's CSRF token in X-CSRF-Token, the proof that
// it comes from this page. Failures come back as ApiError carrying the
// contract's error code and message. Changes carry an Idempotency-Key, so
// a retry after a lost answer is applied once by the server.

const BASE = '/api/v1';

/** ApiError is a failed call: status 0 means the server was not reached. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** newKey returns a fresh random Idempotency-Key (works without a secure context). */
export function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** enc escapes an id for a URL path. */
export const enc = encodeURIComponent;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Methods that only read: the server asks no CSRF proof of them.
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

const offline = () => new ApiError(0, 'offline', 'Could not reach the server. Check your connection and try again.');

export class Api {
  /** csrf is the session's CSRF token (kept in memory only); onUnauthorized is called on every 401. */
  constructor({ csrf = '', onUnauthorized = () => {} } = {}) {
    this.csrf = csrf;
    this.onUnauthorized = onUnauthorized;
  }

  url(path, query) {
    const u = new URL(BASE + path, location.origin);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
    }
    return u.pathname + u.search;
  }

  /**
   * request calls the API. Reads, and changes that carry an
   * Idempotency-Key, are retried a couple of times when the network fails
   * or the server is busy (503, 429); the key makes a retried change land
   * once.
   */
  async request(method, path, { query, body, key, retries } = {}) {
    const headers = { Accept: 'application/json' };
    if (!SAFE.has(method) && this.csrf) headers['X-CSRF-Token'] = this.csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && key) headers['Idempotency-Key'] = key;
    const max = retries ?? (method === 'GET' || key ? 2 : 0);
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await fetch(this.url(path, query), {
          method, headers, cache: 'no-store', credentials: 'same-origin',
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch {
        if (attempt < max) {
          await sleep(400 * (attempt + 1) ** 2);
          continue;
        }
        throw offline();
      }
      if ((res.status === 503 || res.status === 429) && attempt < max) {
        const ra = Number(res.headers.get('Retry-After'));
        await sleep(ra > 0 ? Math.min(ra, 5) * 1000 : 500 * (attempt + 1));
        continue;
      }
      return this.decode(res);
    }
  }

  async decode(res) {
    if (res.status === 204) return null;
    let data = null;
    if ((res.headers.get('Content-Type') || '').includes('json')) {
      try {
        data = await res.json();
      } catch {
        data = null;
      }
    }
    if (res.ok) return data;
    throw this.fail(res.status, data);
  }

  fail(status, data) {
    const e = (data && data.error) || {};
    const err = new ApiError(status, e.code || `http_${status}`, e.message || `The server answered ${status}.`, e.field);
    if (status === 401) this.onUnauthorized(err);
    return err;
  }

  get(path, query) { return this.request('GET', path, { query }); }

  post(path, body, key = newKey()) { return this.request('POST', path, { body, key }); }

  patch(path, body, key = newKey()) { return this.request('PATCH', path, { body, key }); }

  del(path, key = newKey()) { return this.request('DELETE', path, { key }); }

  /** put replaces settings; repeating it is harmless, so it is retried like a read. */
  put(path, body) { return this.request('PUT', path, { body, retries: 2 }); }

  /** all follows next_cursor and returns every item of a list (up to maxPages pages). */
  async all(path, query = {}, maxPages = 50) {
    const items = [];
    let cursor;
    for (let i = 0; i < maxPages; i++) {
      const page = await this.get(path, { ...query, cursor });
      items.push(...page.items);
      if (!page.next_cursor || page.items.length === 0) break;
      cursor = page.next_cursor;
    }
    return items;
  }

  /** events returns every event of a room after seq `after`, in order. */
  async events(room, after) {
    const out = [];
    for (let i = 0; i < 1000; i++) {
      const page = await this.get(`/rooms/${enc(room)}/events`, { after, limit: 1000 });
      out.push(...page.items);
      if (!page.next_cursor || page.items.length === 0) break;
      after = page.items[page.items.length - 1].seq;
    }
    return out;
  }

  /**
   * upload sends one file as multipart/form-data, reporting progress.
   * Returns {promise, abort}; the promise resolves to the Attachment.
   */
  upload(room, file, { visibility, taskId, onProgress } = {}) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise((resolve, reject) => {
      xhr.open('POST', this.url(`/rooms/${enc(room)}/attachments`));
      if (this.csrf) xhr.setRequestHeader('X-CSRF-Token', this.csrf);
      xhr.setRequestHeader('Idempotency-Key', newKey());
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total);
      };
      xhr.onload = () => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          data = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else reject(this.fail(xhr.status, data));
      };
      xhr.onerror = () => reject(new ApiError(0, 'offline', 'The upload was interrupted: the server could not be reached.'));
      xhr.onabort = () => reject(new ApiError(0, 'aborted', 'Upload cancelled.'));
      const form = new FormData();
      if (visibility) form.append('visibility', visibility);
      if (taskId) form.append('task_id', taskId);
      form.append('file', file, file.name);
      xhr.send(form);
    });
    return { promise, abort: () => xhr.abort() };
  }

  /**
   * download fetches an attachment (signed in by the cookie, like every
   * call) and hands it to the browser as a file, reporting progress.
   */
  async download(room, att, onProgress) {
    let res;
    try {
      res = await fetch(this.url(`/rooms/${enc(room)}/attachments/${enc(att.id)}`), {
        cache: 'no-store', credentials: 'same-origin',
      });
    } catch {
      throw offline();
    }
    if (!res.ok) return this.decode(res);
    const total = Number(res.headers.get('Content-Length')) || att.size || 0;
    const chunks = [];
    let got = 0;
    if (res.body && res.body.getReader) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        got += value.length;
        onProgress?.(got, total);
      }
    } else {
      chunks.push(await res.arrayBuffer());
    }
    const url = URL.createObjectURL(new Blob(chunks, { type: att.content_type || 'application/octet-stream' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = att.name;
    a.rel = 'noopener';
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    return null;
  }
}
