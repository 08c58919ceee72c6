/**
 * @nself/analytics-js: the browser SDK of nself-analytics, the self-hosted analytics service.
 *
 *   import { Analytics } from "@nself/analytics-js";
 *   const analytics = new Analytics({ writeKey: "wk_...", host: "https://analytics.example.com" });
 *   analytics.track("signup", { plan: "pro" });
 *
 * Messages (track, identify, page, screen, group, alias; Segment's field names) are queued and sent
 * to POST {host}/analytics/batch in batches (flushAt messages or every flushInterval ms). Failed
 * sends (network errors, timeouts, 408, 429, 5xx) are retried with exponential backoff and jitter,
 * after the delay of a Retry-After header when there is one. Every message has a random UUID
 * messageId, kept across retries and reloads, so the service stores it once. Unsent messages are
 * kept in localStorage (one key each, see store.js) and sent again after a reload, never later than
 * the service's de-duplication window; when the page is hidden or left, what is queued goes out with
 * navigator.sendBeacon and leaves the storage.
 *
 * Nothing here throws into the page: invalid calls and delivery problems go to onError. Nothing
 * at construction needs a DOM (server-side rendering constructs it safely).
 *
 * Requests are `text/plain` with the write key in the JSON body: a "simple" CORS request, so a
 * cross-origin page sends one request per batch, with no preflight (sendBeacon cannot send headers
 * anyway).
 */

import { baseContext, pageInfo, privacySignals } from "./context.js";
import { HEARTBEAT_MS, MessageStore, openStorage } from "./store.js";

export const VERSION = "0.2.0";
export const LIBRARY_NAME = "@nself/analytics-js";
/**
 * How long the service remembers a message id (its OpenAPI's info.x-dedupe-window-seconds, 24 h):
 * a message is never sent later than this after it was queued, or it would be counted twice.
 */
export const DEDUPE_WINDOW_MS = 24 * 3600 * 1000;
/** The localStorage key of the anonymous id, shared with the page-view beacon (a.js). */
export const ANONYMOUS_ID_KEY = "nsa_anonymous_id";
/** A session ends after this much inactivity. */
export const SESSION_TIMEOUT_MS = 30 * 60 * 1000;

const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 500000;
// Browsers cap the bodies of pending beacons / keepalive requests of a page at 64 KB in total.
const MAX_BEACON_BYTES = 60000;
const MAX_RETRY_AFTER_MS = 5 * 60 * 1000;

const encoder = typeof TextEncoder === "function" ? new TextEncoder() : null;
const byteLength = (text) => (encoder ? encoder.encode(text).length : text.length * 3);
const nonEmpty = (value) => typeof value === "string" && value.trim() !== "";
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const hasWindow = () => typeof window !== "undefined" && typeof document !== "undefined";

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

const number = (value, fallback) => (typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : fallback);

export class Analytics {
  /** See README.md (and analytics.d.ts) for the options. Never throws: bad options are reported and make the client inert. */
  constructor(options) {
    const o = isObject(options) ? options : {};
    this.onError = typeof o.onError === "function" ? o.onError
      : (error, messages) => console.warn(`[${LIBRARY_NAME}] ${messages.length} message(s) not sent: ${error.message}`);
    this.writeKey = o.writeKey;
    this.queue = []; // { message, queuedAt } waiting to be sent, oldest first
    this.inflight = []; // the batch being sent (or waiting to be retried)
    this.timer = null;
    this.sending = null;
    this.failing = false; // the last attempt failed and will be retried: the service is unreachable
    this.destroyed = false;
    this.listeners = [];
    this.tabId = uuid();

    let host = o.host == null || o.host === "" ? undefined : String(o.host);
    if (host === undefined && hasWindow() && window.location && /^https?:$/.test(window.location.protocol)) {
      host = window.location.origin;
    }
    this.inert = !nonEmpty(o.writeKey) || host === undefined;
    if (this.inert) {
      this._report(new TypeError(nonEmpty(o.writeKey) ? "host is required outside a web page" : "writeKey is required"), []);
    }
    this.endpoint = (host || "").replace(/\/+$/, "") + "/analytics/batch";
    this.flushAt = Math.min(MAX_BATCH_MESSAGES, Math.max(1, Math.floor(number(o.flushAt, 20))));
    this.flushInterval = number(o.flushInterval, 5000);
    this.maxRetries = Math.floor(number(o.maxRetries, 10));
    this.minRetryDelay = Math.max(1, number(o.minRetryDelay, 1000));
    this.maxRetryDelay = Math.max(this.minRetryDelay, number(o.maxRetryDelay, 30000));
    this.timeout = Math.max(1, number(o.timeout, 10000));
    this.maxQueueSize = Math.max(1, Math.floor(number(o.maxQueueSize, 1000)));
    this.maxMessageAge = Math.min(DEDUPE_WINDOW_MS, number(o.maxMessageAge, DEDUPE_WINDOW_MS));
    this.beforeSend = typeof o.beforeSend === "function" ? o.beforeSend : null;
    this.respectDoNotTrack = o.respectDoNotTrack === true;
    this.respectGlobalPrivacyControl = o.respectGlobalPrivacyControl === true;

    const prefix = nonEmpty(o.storagePrefix) ? o.storagePrefix : "nsa";
    this.keys = {
      userId: `${prefix}:user_id`,
      session: `${prefix}:session`,
      props: `${prefix}:props`,
      optOut: `${prefix}:opt_out`,
      legacyAnonymousId: `${prefix}:anonymous_id`,
    };
    this.storage = openStorage(o.persistence === "memory" ? "memory" : "localStorage");
    this.store = new MessageStore(this.storage, prefix, String(o.writeKey || ""), this.tabId);
    this.defaults = this._readJson(this.keys.props) || {};
    if (!this._get(ANONYMOUS_ID_KEY)) {
      // an id kept by an earlier version of this SDK stays the visitor's id
      this._set(ANONYMOUS_ID_KEY, this._get(this.keys.legacyAnonymousId) || uuid());
    }
    if (this.inert || !hasWindow()) return; // server-side rendering: no listeners, no timers

    const win = window;
    const doc = document;
    this._listen(doc, "visibilitychange", () => {
      if (doc.visibilityState === "hidden") this._onHide(false);
    });
    this._listen(win, "pagehide", () => this._onHide(true));
    this._listen(win, "pageshow", (event) => {
      if (event && event.persisted) this._heartbeat(); // back from the back/forward cache
    });
    this._listen(win, "online", () => {
      this._adoptStored(true);
      this.flush();
    });
    this._heartbeat();
    this.heartbeatTimer = setInterval(() => this._heartbeat(), HEARTBEAT_MS);
    // messages an earlier page view of this site could not deliver
    this._adoptStored();
  }

  // --- the spec -----------------------------------------------------------------------------

  /** Record an action; returns the message id, or undefined when the call was dropped. */
  track(event, properties) {
    return this._call("track", () => {
      if (!nonEmpty(event)) throw new TypeError("track needs an event name");
      return { event, properties: this._properties(properties) };
    });
  }

  /**
   * Identify the visitor as userId (kept for the next calls), with traits; `identify(traits)`
   * adds traits to the current user. Returns the message id.
   */
  identify(userId, traits) {
    return this._call("identify", () => {
      if (isObject(userId) && traits === undefined) {
        traits = userId;
        userId = this.userId();
      }
      if (userId == null || String(userId).trim() === "") throw new TypeError("identify needs a userId");
      if (typeof userId !== "string" && typeof userId !== "number") throw new TypeError("userId must be a string");
      this._set(this.keys.userId, String(userId));
      return { userId: String(userId), traits: this._object(traits, "traits") };
    });
  }

  /**
   * Record a page view (stored as $pageview) with url, path, referrer, title and search of the
   * current page; properties override them. page(name, properties) also names the page.
   */
  page(nameOrProperties, maybeProperties) {
    return this._call("page", () => this._view(nameOrProperties, maybeProperties, pageInfo()));
  }

  /** Record a screen view (stored as $screen): screen(name, properties). */
  screen(nameOrProperties, maybeProperties) {
    return this._call("screen", () => this._view(nameOrProperties, maybeProperties, {}));
  }

  /** The visitor belongs to the group (company, team, account) groupId, with its traits. */
  group(groupId, traits) {
    return this._call("group", () => {
      if (!nonEmpty(groupId)) throw new TypeError("group needs a groupId");
      return { groupId, traits: this._object(traits, "traits") };
    });
  }

  /** previousId (default: the current user or anonymous id) is the same person as userId. */
  alias(userId, previousId) {
    return this._call("alias", () => {
      if (!nonEmpty(userId)) throw new TypeError("alias needs a userId");
      const previous = previousId === undefined ? this.userId() || this.anonymousId() : previousId;
      if (!nonEmpty(previous)) throw new TypeError("alias needs a previousId");
      return { userId, previousId: previous };
    });
  }

  /** Properties added to every track, page and screen (a call's own properties win); kept across page loads. */
  register(properties) {
    if (!isObject(properties)) {
      this._report(new TypeError("register needs an object of properties"), []);
      return;
    }
    this.defaults = { ...this.defaults, ...properties };
    this._set(this.keys.props, JSON.stringify(this.defaults));
  }

  /** Stop adding the default property key. */
  unregister(key) {
    const { [key]: _removed, ...rest } = this.defaults;
    this.defaults = rest;
    this._set(this.keys.props, JSON.stringify(rest));
  }

  /** Forget the user id and the default properties, start a new anonymous id and session (e.g. on log-out). */
  reset() {
    this._remove(this.keys.userId);
    this._remove(this.keys.props);
    this._remove(this.keys.session);
    this.defaults = {};
    this._set(ANONYMOUS_ID_KEY, uuid());
  }

  /** Use id as the anonymous id from now on (e.g. one a server assigned). */
  setAnonymousId(id) {
    if (!nonEmpty(id)) {
      this._report(new TypeError("setAnonymousId needs a non-empty string"), []);
      return;
    }
    this._set(ANONYMOUS_ID_KEY, id);
  }

  /** The current anonymous id. */
  anonymousId() {
    let id = this._get(ANONYMOUS_ID_KEY);
    if (!id) {
      id = uuid();
      this._set(ANONYMOUS_ID_KEY, id);
    }
    return id;
  }

  /** The identified user id, or null. */
  userId() {
    return this._get(this.keys.userId);
  }

  /** The current session id (a new one after 30 minutes without a call), also sent as context.sessionId. */
  sessionId() {
    return this._session(Date.now(), false);
  }

  /** Stop recording, and remember it on this device: later calls are dropped silently, queued ones discarded. */
  optOut() {
    this._set(this.keys.optOut, "1");
    const dropped = this.inflight.concat(this.queue).map((q) => q.message);
    this.store.remove(dropped);
    this.queue = [];
    this.inflight = [];
  }

  /** Record again after optOut(). */
  optIn() {
    this._remove(this.keys.optOut);
  }

  /** Whether calls are dropped: optOut() was called, or a honoured Do Not Track / Global Privacy Control is on. */
  hasOptedOut() {
    if (this._get(this.keys.optOut) === "1") return true;
    const { dnt, gpc } = privacySignals();
    return (this.respectDoNotTrack && dnt) || (this.respectGlobalPrivacyControl && gpc);
  }

  /** Messages waiting to be sent (queued or in flight). */
  get pending() {
    return this.queue.length + this.inflight.length;
  }

  /**
   * Send what is queued now. Resolves true when everything queued (and in flight) was accepted,
   * false when some messages could not be delivered (they are reported to onError). Never rejects.
   */
  flush() {
    this._clearTimer();
    if (this.inert || this.destroyed) return Promise.resolve(this.pending === 0);
    if (!this.sending) {
      this.sending = this._drain()
        .catch((error) => {
          this._report(error, []);
          return false;
        })
        .finally(() => {
          this.sending = null;
          if (this.queue.length > 0) this._schedule();
        });
    }
    return this.sending;
  }

  /** Stop listening to page events and timers; messages still queued stay stored for the next page load. */
  destroy() {
    this.destroyed = true;
    this._clearTimer();
    if (this.wake) this.wake(); // ends a retry wait
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    for (const [target, type, fn] of this.listeners) target.removeEventListener(type, fn);
    this.listeners = [];
    this.store.leave();
  }

  // --- internals ----------------------------------------------------------------------------

  _listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.listeners.push([target, type, fn]);
  }

  _report(error, messages) {
    try {
      this.onError(error, messages);
    } catch {
      // a throwing callback must not reach the page nor stop delivery
    }
  }

  _object(value, name) {
    if (value === undefined || value === null) return undefined;
    if (!isObject(value)) throw new TypeError(`${name} must be an object`);
    return value;
  }

  _properties(value) {
    return { ...this.defaults, ...(this._object(value, "properties") || {}) };
  }

  _view(nameOrProperties, maybeProperties, base) {
    const named = typeof nameOrProperties === "string";
    if (!named && nameOrProperties != null && !isObject(nameOrProperties)) throw new TypeError("page/screen takes (name?, properties?)");
    const own = this._object(named ? maybeProperties : nameOrProperties, "properties");
    const message = { properties: { ...this.defaults, ...base, ...(own || {}) } };
    if (named && nameOrProperties) message.name = nameOrProperties;
    return message;
  }

  /** Build, check and queue one message; every problem is reported, never thrown. */
  _call(type, build) {
    if (this.inert) {
      this._report(new Error(`${type} dropped: the client is not configured (writeKey, host)`), []);
      return undefined;
    }
    if (this.destroyed) {
      this._report(new Error(`${type} after destroy(): message dropped`), []);
      return undefined;
    }
    if (this.hasOptedOut()) return undefined;
    let message;
    try {
      const now = Date.now();
      message = {
        type,
        messageId: uuid(),
        timestamp: new Date(now).toISOString(),
        anonymousId: this.anonymousId(),
        ...build(),
        context: { ...baseContext({ name: LIBRARY_NAME, version: VERSION }), sessionId: this._session(now, true) },
      };
      if (message.userId === undefined) {
        const userId = this.userId();
        if (userId && type !== "alias") message.userId = userId;
      }
    } catch (error) {
      this._report(new TypeError(`invalid ${type}: ${error && error.message}; message dropped`), []);
      return undefined;
    }
    if (this.beforeSend) {
      let changed;
      try {
        changed = this.beforeSend(message);
      } catch (error) {
        this._report(new Error(`beforeSend threw: ${error && error.message}; message dropped`), [message]);
        return undefined;
      }
      if (!isObject(changed)) return undefined;
      message = changed;
    }
    let size;
    try {
      size = byteLength(JSON.stringify(message));
    } catch (error) {
      this._report(new TypeError(`message cannot be encoded: ${error && error.message}`), [message]);
      return undefined;
    }
    if (size > MAX_BATCH_BYTES - 200) {
      this._report(new TypeError(`message exceeds ${MAX_BATCH_BYTES} bytes; dropped`), [message]);
      return undefined;
    }
    if (this.pending >= this.maxQueueSize) {
      this._report(new Error(`queue is full (${this.maxQueueSize}); message dropped`), [message]);
      return undefined;
    }
    const queuedAt = Date.now();
    this.queue.push({ message, queuedAt });
    this.store.add(message, queuedAt);
    if (this.queue.length >= this.flushAt) this.flush();
    else this._schedule();
    return message.messageId;
  }

  /** The session id, renewed after SESSION_TIMEOUT_MS without activity; touch records activity. */
  _session(now, touch) {
    const [id, last] = String(this._get(this.keys.session) || "").split("|");
    let current = id;
    if (!current || !(now - Number(last) < SESSION_TIMEOUT_MS)) current = uuid();
    if (touch || current !== id) this._set(this.keys.session, `${current}|${now}`);
    return current;
  }

  _schedule() {
    if (this.timer === null && !this.sending && !this.destroyed) {
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

  _heartbeat() {
    if (this.destroyed) return;
    this.store.beat();
    if (this.queue.length === 0 && this.inflight.length === 0) this._adoptStored();
  }

  /** Queue the stored messages whose tab is gone (an earlier page view, a crashed tab), with own: also ours given up on. */
  _adoptStored(own = false) {
    if (this.adopting || !this.store.persistent || this.hasOptedOut()) return this.adopting || Promise.resolve(0);
    const held = new Set(this.queue.concat(this.inflight).map((q) => q.message.messageId));
    this.adopting = this.store.claimOrphans(this.maxMessageAge, this.maxQueueSize - this.pending, held, own).then(({ claimed, expired }) => {
      this.adopting = null;
      if (expired.length > 0) {
        this._report(new Error(`${expired.length} stored message(s) older than the service's de-duplication window dropped unsent`), expired);
      }
      const held = new Set(this.queue.concat(this.inflight).map((q) => q.message.messageId));
      const adopted = claimed.filter((c) => !held.has(c.message.messageId));
      if (adopted.length > 0) {
        this.queue.unshift(...adopted);
        setTimeout(() => this.flush(), 0);
      }
      return adopted.length;
    });
    return this.adopting;
  }

  /** Drop (and report) the messages an attempt starting now might deliver after the dedupe window. */
  _dropExpired(list) {
    const limit = Date.now() + this.timeout - this.maxMessageAge;
    const expired = list.filter((q) => q.queuedAt <= limit);
    if (expired.length === 0) return list;
    const messages = expired.map((q) => q.message);
    this.store.remove(messages);
    this._report(new Error(`${expired.length} message(s) older than ${this.maxMessageAge} ms dropped unsent`), messages);
    return list.filter((q) => q.queuedAt > limit);
  }

  async _drain() {
    let allSent = true;
    while (this.queue.length > 0 && !this.destroyed) {
      this.inflight = this._take(this.queue, MAX_BATCH_BYTES);
      const sent = await this._send();
      this.inflight = [];
      if (!sent) allSent = false;
    }
    return allSent;
  }

  /** Remove and return the first entries of list that fit in one request of at most maxBytes. */
  _take(list, maxBytes) {
    let size = 200;
    let n = 0;
    for (const entry of list) {
      const bytes = byteLength(JSON.stringify(entry.message)) + 1;
      if (n === MAX_BATCH_MESSAGES || (n > 0 && size + bytes > maxBytes)) break;
      size += bytes;
      n++;
    }
    return list.splice(0, n);
  }

  _body(entries) {
    return JSON.stringify({ batch: entries.map((q) => q.message), sentAt: new Date().toISOString(), writeKey: this.writeKey });
  }

  /** One POST with a timeout: { status, answer, retryAfter } or { error } for a network failure. */
  async _post(entries) {
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), this.timeout) : null;
    try {
      const response = await fetch(this.endpoint, {
        method: "POST",
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: this._body(entries),
        credentials: "omit",
        signal: controller ? controller.signal : undefined,
      });
      let answer = {};
      if (!response.ok) {
        try {
          answer = (await response.json()) || {};
        } catch {
          answer = {};
        }
      }
      return { status: response.status, ok: response.ok, answer, retryAfter: parseRetryAfter(response.headers.get("Retry-After")) };
    } catch (cause) {
      const detail = controller && controller.signal.aborted ? `no answer within ${this.timeout} ms` : cause && cause.message ? cause.message : cause;
      return { error: new Error(`request failed: ${detail}`) };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Deliver the in-flight batch with retries; true when the service accepted all of it. */
  async _send() {
    let allSent = true;
    for (let attempt = 0; ; attempt++) {
      const before = this.inflight.length;
      this.inflight = this._dropExpired(this.inflight);
      if (this.inflight.length < before) allSent = false;
      if (this.inflight.length === 0 || this.destroyed) return allSent && this.inflight.length === 0;
      const entries = this.inflight;
      const { status, ok, answer = {}, retryAfter, error: networkError } = await this._post(entries);
      if (this.inflight !== entries) return false; // taken over meanwhile (optOut, a beacon)
      if (ok) {
        this.failing = false;
        this.store.remove(entries.map((q) => q.message));
        return allSent;
      }
      const error = networkError || new Error(`service answered ${status}${answer.message ? `: ${answer.message}` : ""}`);
      const index = Number.isInteger(answer.index) ? answer.index : -1;
      if (status === 400 && index >= 0 && index < entries.length && entries.length > 1) {
        // one invalid message makes the service refuse the batch and it names it: drop it, resend the rest
        const [rejected] = entries.splice(index, 1);
        this.store.remove([rejected.message]);
        this._report(error, [rejected.message]);
        allSent = false;
        attempt = -1;
        continue;
      }
      const retryable = status === undefined || status === 408 || status === 429 || status >= 500;
      if (!retryable) {
        this.failing = false;
        this.store.remove(entries.map((q) => q.message)); // the service will never take them
        this._report(error, entries.map((q) => q.message));
        return false;
      }
      this.failing = true;
      if (attempt >= this.maxRetries) {
        // kept in storage: the next page load sends them again (within the de-duplication window)
        this._report(new Error(`giving up for now after ${attempt + 1} attempts: ${error.message}`), entries.map((q) => q.message));
        return false;
      }
      await this._sleep(retryAfter ?? backoff(attempt, this.minRetryDelay, this.maxRetryDelay));
    }
  }

  /** Wait ms, or until destroy(). */
  _sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  /**
   * The page is hidden or left: send everything queued with sendBeacon and forget what the browser
   * took (no resend after a reload, none by another tab). While the service is failing, the
   * messages stay stored instead, for the next page load. On leaving, the heartbeat goes so the
   * next page load adopts what is left at once.
   */
  _onHide(leaving) {
    this._clearTimer();
    const entries = this._dropExpired(this.inflight.concat(this.queue));
    if (entries.length > 0 && !this.failing && !this.hasOptedOut()) {
      const pending = entries.slice();
      const unsent = [];
      while (pending.length > 0) {
        const chunk = this._take(pending, MAX_BEACON_BYTES);
        let queued = false;
        try {
          queued = typeof navigator !== "undefined" && typeof navigator.sendBeacon === "function"
            && navigator.sendBeacon(this.endpoint, this._body(chunk));
        } catch {
          queued = false;
        }
        if (queued) this.store.remove(chunk.map((q) => q.message));
        else unsent.push(...chunk);
      }
      this.queue = unsent;
      this.inflight = [];
    }
    if (leaving) this.store.leave();
  }

  // --- storage ------------------------------------------------------------------------------

  _get(key) {
    return this.storage.get(key);
  }

  _set(key, value) {
    this.storage.set(key, value);
  }

  _remove(key) {
    this.storage.remove(key);
  }

  _readJson(key) {
    try {
      const value = JSON.parse(this._get(key) || "null");
      return isObject(value) ? value : null;
    } catch {
      return null;
    }
  }
}

export default Analytics;
