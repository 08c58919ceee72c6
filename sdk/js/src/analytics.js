/**
 * @nself/analytics-js: the browser SDK of nself-analytics, the self-hosted analytics service.
 *
 *   import { Analytics } from "@nself/analytics-js";
 *   const analytics = new Analytics({ writeKey: "wk_...", host: "https://analytics.example.com" });
 *   analytics.track("signup", { plan: "pro" });
 *
 * Messages are queued and sent to POST {host}/analytics/batch in batches (flushAt messages or every
 * flushInterval ms). Failed sends (network errors, 408, 429, 5xx) are retried with exponential
 * backoff and jitter, after the delay of a Retry-After header when there is one. Every message has a
 * random UUID messageId, kept across retries and reloads, so the service stores it once. Unsent
 * messages are kept in localStorage and sent again after a reload; when the page is hidden or left,
 * what is queued goes out with navigator.sendBeacon.
 *
 * Requests are `text/plain` with the write key in the JSON body: a "simple" CORS request, so a
 * cross-origin page sends one request per batch, with no preflight (sendBeacon cannot send headers
 * anyway).
 */

export const VERSION = "0.1.0";
export const LIBRARY_NAME = "@nself/analytics-js";

const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 500000;
// Browsers cap the bodies of pending beacons / keepalive requests of a page at 64 KB in total.
const MAX_BEACON_BYTES = 60000;
const MAX_STORED_MESSAGES = 1000;
const MAX_STORED_AGE_MS = 7 * 24 * 3600 * 1000;
const MAX_RETRY_AFTER_MS = 5 * 60 * 1000;

const encoder = typeof TextEncoder === "function" ? new TextEncoder() : null;
const byteLength = (text) => (encoder ? encoder.encode(text).length : text.length * 3);

/** A random (version 4) UUID: crypto.randomUUID, else crypto.getRandomValues, else Math.random. */
export function uuid() {
  const c = typeof crypto !== "undefined" ? crypto : undefined;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Milliseconds a Retry-After header asks to wait (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null) return undefined;
  const text = String(value).trim();
  let ms;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else if (/^[A-Za-z]{3}, /.test(text) && !Number.isNaN(Date.parse(text))) ms = Math.max(0, Date.parse(text) - now);
  else return undefined;
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** Backoff before retry number attempt + 1: min doubled per attempt, capped at max, equal jitter. */
export function backoff(attempt, min, max) {
  const delay = Math.min(max, min * Math.pow(2, Math.min(attempt, 40)));
  return delay / 2 + Math.random() * (delay / 2);
}

/** localStorage when it works (it throws in some private modes and sandboxed frames), else memory. */
function openStorage() {
  try {
    const probe = "__nsa_probe__";
    window.localStorage.setItem(probe, probe);
    window.localStorage.removeItem(probe);
    return window.localStorage;
  } catch {
    const memory = new Map();
    return {
      getItem: (k) => (memory.has(k) ? memory.get(k) : null),
      setItem: (k, v) => memory.set(k, String(v)),
      removeItem: (k) => memory.delete(k),
    };
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Analytics {
  /**
   * @param {object} options
   * @param {string} options.writeKey one of the service's write keys (ANALYTICS_WRITE_KEYS); required
   * @param {string} [options.host] the service's base URL, without /analytics; default: this page's origin
   * @param {number} [options.flushAt=20] queued messages that trigger a send (at most 100 per request)
   * @param {number} [options.flushInterval=5000] ms after the first queued message before a send
   * @param {number} [options.maxRetries=10] retries of a failed request before giving up for this page view
   *   (the messages stay stored and are sent again after the next page load)
   * @param {number} [options.minRetryDelay=1000] backoff before the first retry, ms, doubled each time
   * @param {number} [options.maxRetryDelay=30000] cap of the backoff, ms
   * @param {boolean} [options.persist=true] keep unsent messages in localStorage across page loads
   * @param {string} [options.storagePrefix="nsa"] prefix of the localStorage keys
   * @param {(error: Error, messages: object[]) => void} [options.onError] told about dropped messages
   */
  constructor(options) {
    const o = options || {};
    if (typeof o.writeKey !== "string" || !o.writeKey.trim()) throw new TypeError("writeKey is required");
    this.writeKey = o.writeKey;
    const host = o.host == null || o.host === "" ? window.location.origin : String(o.host);
    this.endpoint = host.replace(/\/+$/, "") + "/analytics/batch";
    this.flushAt = Math.min(MAX_BATCH_MESSAGES, Math.max(1, Math.floor(o.flushAt ?? 20)));
    this.flushInterval = Math.max(0, o.flushInterval ?? 5000);
    this.maxRetries = Math.max(0, Math.floor(o.maxRetries ?? 10));
    this.minRetryDelay = Math.max(1, o.minRetryDelay ?? 1000);
    this.maxRetryDelay = Math.max(this.minRetryDelay, o.maxRetryDelay ?? 30000);
    this.persist = o.persist !== false;
    this.onError = typeof o.onError === "function" ? o.onError
      : (error, messages) => console.warn(`[${LIBRARY_NAME}] ${messages.length} message(s) not sent: ${error.message}`);

    const prefix = o.storagePrefix || "nsa";
    this.keys = {
      anonymousId: `${prefix}:anonymous_id`,
      userId: `${prefix}:user_id`,
      queue: `${prefix}:queue:${this.writeKey}`,
    };
    this.storage = openStorage();
    this.queue = []; // messages waiting to be sent, oldest first
    this.inflight = []; // messages of the request being sent (or waiting to be retried)
    this.timer = null;
    this.sending = null;

    if (!this._get(this.keys.anonymousId)) this._set(this.keys.anonymousId, uuid());

    this._onHide = this._onHide.bind(this);
    this._onVisibility = () => {
      if (document.visibilityState === "hidden") this._onHide();
    };
    this._onOnline = () => {
      this._adoptStored();
      this.flush();
    };
    document.addEventListener("visibilitychange", this._onVisibility);
    window.addEventListener("pagehide", this._onHide);
    window.addEventListener("online", this._onOnline);

    // messages a previous page view of this site could not deliver
    if (this._adoptStored() > 0) setTimeout(() => this.flush(), 0);
  }

  /** Record an action; returns the message id. */
  track(event, properties) {
    if (typeof event !== "string" || !event.trim()) throw new TypeError("track needs an event name");
    return this._enqueue({ type: "track", event, properties: { ...(properties || {}) } });
  }

  /** Identify the visitor as userId (kept in localStorage for the next calls), with traits; returns the message id. */
  identify(userId, traits) {
    if (userId == null || String(userId).trim() === "") throw new TypeError("identify needs a userId");
    this._set(this.keys.userId, String(userId));
    return this._enqueue({ type: "identify", traits: { ...(traits || {}) } });
  }

  /**
   * Record a page view (stored as $pageview) with url, path, referrer, title and search of the
   * current page; properties override them. page(name, properties) also names the page.
   */
  page(nameOrProperties, maybeProperties) {
    const name = typeof nameOrProperties === "string" ? nameOrProperties : undefined;
    const properties = (name === undefined ? nameOrProperties : maybeProperties) || {};
    const message = { type: "page", properties: { ...pageInfo(), ...properties } };
    if (name) message.name = name;
    return this._enqueue(message);
  }

  /** Forget the identified user and start a new anonymous id (e.g. on log-out). */
  reset() {
    this._remove(this.keys.userId);
    this._set(this.keys.anonymousId, uuid());
  }

  /** The current anonymous id. */
  anonymousId() {
    return this._get(this.keys.anonymousId);
  }

  /** The identified user id, or null. */
  userId() {
    return this._get(this.keys.userId);
  }

  /** Messages waiting to be sent (not counting the request in flight). */
  get pending() {
    return this.queue.length;
  }

  /**
   * Send what is queued now. Resolves true when everything queued (and in flight) was accepted,
   * false when some messages could not be delivered (they are reported to onError).
   */
  flush() {
    this._clearTimer();
    if (!this.sending) {
      this.sending = this._drain().finally(() => {
        this.sending = null;
        if (this.queue.length > 0) this._schedule();
      });
    }
    return this.sending;
  }

  /** Stop listening to page events and timers (messages still queued stay stored). */
  destroy() {
    this._clearTimer();
    document.removeEventListener("visibilitychange", this._onVisibility);
    window.removeEventListener("pagehide", this._onHide);
    window.removeEventListener("online", this._onOnline);
  }

  // --- internals ----------------------------------------------------------------------------

  _enqueue(partial) {
    const message = {
      ...partial,
      messageId: uuid(),
      timestamp: new Date().toISOString(),
      anonymousId: this.anonymousId(),
      context: context(),
    };
    const userId = this.userId();
    if (userId) message.userId = userId;
    if (byteLength(JSON.stringify(message)) > MAX_BATCH_BYTES - 200) {
      throw new TypeError(`message exceeds ${MAX_BATCH_BYTES} bytes`);
    }
    this.queue.push(message);
    this._store((stored) => stored.concat([message]));
    if (this.queue.length >= this.flushAt) this.flush();
    else this._schedule();
    return message.messageId;
  }

  _schedule() {
    if (this.timer === null && !this.sending) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.flushInterval);
    }
  }

  _clearTimer() {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  async _drain() {
    let allSent = true;
    while (this.queue.length > 0) {
      this.inflight = this._take(this.queue, MAX_BATCH_BYTES);
      const sent = await this._send(this.inflight);
      this.inflight = [];
      if (!sent) allSent = false;
    }
    return allSent;
  }

  /** Remove and return the first messages of list that fit in one request of at most maxBytes. */
  _take(list, maxBytes) {
    let size = 200;
    let n = 0;
    for (const message of list) {
      const bytes = byteLength(JSON.stringify(message)) + 1;
      if (n === MAX_BATCH_MESSAGES || (n > 0 && size + bytes > maxBytes)) break;
      size += bytes;
      n++;
    }
    return list.splice(0, n);
  }

  _body(messages) {
    return JSON.stringify({ batch: messages, sentAt: new Date().toISOString(), writeKey: this.writeKey });
  }

  /** Deliver one batch with retries; true when the service accepted it. */
  async _send(batch) {
    let messages = batch;
    for (let attempt = 0; messages.length > 0; attempt++) {
      let status;
      let answer = {};
      let retryAfter;
      let error;
      try {
        const response = await fetch(this.endpoint, {
          method: "POST",
          headers: { "Content-Type": "text/plain;charset=UTF-8" },
          body: this._body(messages),
          credentials: "omit",
        });
        status = response.status;
        if (response.ok) {
          this._forget(messages);
          return true;
        }
        retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
        try {
          answer = await response.json();
        } catch {
          answer = {};
        }
        error = new Error(`service answered ${status}${answer && answer.message ? `: ${answer.message}` : ""}`);
      } catch (cause) {
        error = new Error(`request failed: ${cause && cause.message ? cause.message : cause}`);
      }
      const index = answer && Number.isInteger(answer.index) ? answer.index : -1;
      if (status === 400 && index >= 0 && index < messages.length && messages.length > 1) {
        // one invalid message makes the service refuse the batch and it names it: drop it, resend the rest
        const [rejected] = messages.splice(index, 1);
        this._forget([rejected]);
        this._report(error, [rejected]);
        attempt = -1;
        continue;
      }
      const retryable = status === undefined || status === 408 || status === 429 || status >= 500;
      if (!retryable) {
        this._forget(messages); // the service will never take them
        this._report(error, messages);
        return false;
      }
      if (attempt >= this.maxRetries) {
        // kept in localStorage: the next page load sends them again
        this._report(new Error(`giving up for now after ${attempt + 1} attempts: ${error.message}`), messages);
        return false;
      }
      await sleep(retryAfter ?? backoff(attempt, this.minRetryDelay, this.maxRetryDelay));
    }
    return true;
  }

  /** The page is hidden or being left: send everything queued with sendBeacon. */
  _onHide() {
    this._clearTimer();
    const messages = this.inflight.concat(this.queue);
    if (messages.length === 0) return;
    this.queue = [];
    // They stay in localStorage: a beacon's fate is unknown, so the next page load sends them again
    // and the service's dedupe by messageId stores them once.
    const pending = messages.slice();
    while (pending.length > 0) {
      const chunk = this._take(pending, MAX_BEACON_BYTES);
      const body = this._body(chunk);
      let queued = false;
      try {
        queued = typeof navigator.sendBeacon === "function" && navigator.sendBeacon(this.endpoint, body);
      } catch {
        queued = false;
      }
      if (!queued) {
        try {
          fetch(this.endpoint, { method: "POST", body, keepalive: true, credentials: "omit",
            headers: { "Content-Type": "text/plain;charset=UTF-8" } }).catch(() => {});
        } catch {
          // stored: sent on the next page load
        }
      }
    }
  }

  _report(error, messages) {
    try {
      this.onError(error, messages);
    } catch {
      // a throwing callback must not stop delivery
    }
  }

  // --- localStorage -------------------------------------------------------------------------

  _get(key) {
    try {
      return this.storage.getItem(key);
    } catch {
      return null;
    }
  }

  _set(key, value) {
    try {
      this.storage.setItem(key, value);
    } catch {
      // full or unavailable: the value lives for this page view only
    }
  }

  _remove(key) {
    try {
      this.storage.removeItem(key);
    } catch {
      // unavailable
    }
  }

  _readStored() {
    try {
      const parsed = JSON.parse(this._get(this.keys.queue) || "[]");
      return Array.isArray(parsed) ? parsed.filter((m) => m && typeof m.messageId === "string") : [];
    } catch {
      return [];
    }
  }

  /** Read-modify-write the stored unsent messages (shared by the tabs of this site). */
  _store(change) {
    if (!this.persist) return;
    let stored = change(this._readStored());
    if (stored.length > MAX_STORED_MESSAGES) stored = stored.slice(stored.length - MAX_STORED_MESSAGES);
    if (stored.length === 0) this._remove(this.keys.queue);
    else this._set(this.keys.queue, JSON.stringify(stored));
  }

  _forget(messages) {
    const ids = new Set(messages.map((m) => m.messageId));
    this._store((stored) => stored.filter((m) => !ids.has(m.messageId)));
  }

  /** Queue the stored messages this instance does not hold (left by an earlier page view); returns how many. */
  _adoptStored() {
    if (!this.persist) return 0;
    const cutoff = Date.now() - MAX_STORED_AGE_MS;
    const fresh = this._readStored().filter((m) => !(Date.parse(m.timestamp) < cutoff));
    this._store(() => fresh);
    const held = new Set(this.queue.concat(this.inflight).map((m) => m.messageId));
    const adopted = fresh.filter((m) => !held.has(m.messageId));
    this.queue.unshift(...adopted);
    return adopted.length;
  }
}

function pageInfo() {
  const { href, pathname, search } = window.location;
  return { url: href, path: pathname, search, referrer: document.referrer, title: document.title };
}

function context() {
  const ctx = {
    library: { name: LIBRARY_NAME, version: VERSION },
    page: pageInfo(),
    userAgent: navigator.userAgent,
    locale: navigator.language,
  };
  if (window.screen) ctx.screen = { width: window.screen.width, height: window.screen.height };
  try {
    ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    // no Intl
  }
  return ctx;
}

export default Analytics;
