/**
 * Node.js server SDK of nself-analytics, the self-hosted analytics service.
 *
 * `track`, `identify`, `page`, `screen`, `group` and `alias` queue messages in memory (Segment's
 * field names); they are sent in the background to `POST {host}/analytics/batch` when `flushAt` are
 * queued, every `flushInterval`, on `flush()` and on `close()`. Network errors, 408, 429 and 5xx are
 * retried with exponential backoff and jitter (a `Retry-After` header sets the wait); every message
 * carries a random UUID message id that a retry keeps, so the service stores each message once.
 *
 * The SDK never throws or rejects into the application for a delivery problem or an invalid call:
 * those are reported to `onError` and the message is dropped. `flush()` and `close()` resolve to a
 * {@link FlushResult}, each within its `timeout`.
 */

import { randomUUID } from "node:crypto";

export const VERSION = "0.2.0";
export const LIBRARY_NAME = "@nself/analytics-node";
/** The most messages one request carries (the service's limit). */
export const MAX_BATCH_MESSAGES = 100;
/** The largest request body the SDK sends (the service accepts 500 KB). */
export const MAX_BATCH_BYTES = 500_000;
/**
 * How long the service remembers a message id to store a retried message once (its
 * `x-dedupe-window-seconds`, 24 h). A message is never sent later than this after it was queued:
 * a retry after the window would be counted twice.
 */
export const DEDUPE_WINDOW_MS = 24 * 3600 * 1000;
/** Longest wait a Retry-After header can impose. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;
const ENVELOPE_BYTES = 96;

/** Free-form properties, traits or context: anything JSON.stringify encodes. */
export type JsonObject = Record<string, unknown>;

/** Who did it: a known user, an anonymous visitor, or both. */
export type Identity = { userId: string; anonymousId?: string } | { userId?: string; anonymousId: string };

/** Fields every message may carry. */
export interface CommonFields {
  /** Extra information about the call (ip, locale, app, ...); `library` is added by the SDK. */
  context?: JsonObject;
  /** When it happened; default: when the message was queued. */
  timestamp?: Date | string;
  /** Deduplication id; default: a random UUID (recommended). */
  messageId?: string;
}

/** A track call: `event` happened for the user or visitor. */
export type TrackParams = Identity & CommonFields & {
  /** The action's name, e.g. `subscription.created`. */
  event: string;
  /** What describes the action. */
  properties?: JsonObject;
};

/** An identify call: store `traits` on the user's profile. */
export type IdentifyParams = CommonFields & {
  userId: string;
  /** The id the user had before being identified, if any. */
  anonymousId?: string;
  traits?: JsonObject;
};

/** A page call: a page view (stored as the event `$pageview`). */
export type PageParams = Identity & CommonFields & {
  /** Optional page name, e.g. `Pricing`. */
  name?: string;
  /** url, path, referrer, title, ... */
  properties?: JsonObject;
};

/** A screen call: a mobile app screen view (stored as the event `$screen`). */
export type ScreenParams = PageParams;

/** A group call: the user belongs to the group (company, team, account) `groupId`. */
export type GroupParams = Identity & CommonFields & {
  groupId: string;
  /** What describes the group: name, plan, ... */
  traits?: JsonObject;
};

/** An alias call: `previousId` (an earlier user or anonymous id) is the same person as `userId`. */
export type AliasParams = CommonFields & {
  userId: string;
  previousId: string;
};

/** The types of messages. */
export type MessageType = "track" | "identify" | "page" | "screen" | "group" | "alias";

/** A message as sent to the service (Segment field names). */
export interface WireMessage {
  type: MessageType;
  messageId: string;
  timestamp: string;
  userId?: string;
  anonymousId?: string;
  previousId?: string;
  groupId?: string;
  event?: string;
  name?: string;
  properties?: JsonObject;
  traits?: JsonObject;
  context: JsonObject;
}

/** Options of an {@link Analytics} client. Only `writeKey` is required. */
export interface AnalyticsOptions {
  /** One of the service's ingest keys (ANALYTICS_WRITE_KEYS), sent as `Authorization: Bearer`. */
  writeKey: string;
  /** Base URL of the service, without `/analytics` (a path prefix is kept). Default `http://localhost:3206`. */
  host?: string;
  /** Queued messages that trigger a send; default 20 (a request carries at most 100). */
  flushAt?: number;
  /** Milliseconds between background sends of whatever is queued; default 5000. */
  flushInterval?: number;
  /** Retries of a failed request; default 8 (0: none). */
  maxRetries?: number;
  /** Request timeout in milliseconds; default 10000. */
  timeout?: number;
  /** Backoff before the first retry, doubled for each next one, in ms; default 100. */
  minRetryDelay?: number;
  /** Cap of the backoff in ms; default 10000 (a Retry-After is honoured up to five minutes). */
  maxRetryDelay?: number;
  /** Messages waiting in memory; beyond it new ones are dropped (reported to `onError`). Default 10000. */
  maxQueueSize?: number;
  /**
   * Longest time in ms a message is kept (queued or retried) before it is dropped and reported;
   * default and maximum {@link DEDUPE_WINDOW_MS}, the service's de-duplication window.
   */
  maxMessageAge?: number;
  /** Default deadline of `flush()` and `close()` in ms; default 10000. */
  shutdownTimeout?: number;
  /** Called when messages are dropped (invalid, rejected, retries exhausted, queue full, closed); default: console.error. */
  onError?: (error: DeliveryError) => void;
  /**
   * Called with each message before it is queued; return it (changed or not) to send it, or
   * `null`/`undefined` to drop it silently. A throwing hook drops the message with a report.
   */
  beforeSend?: (message: WireMessage) => WireMessage | null | undefined;
  /** Start opted out: nothing is queued or sent until `optIn()`. Default false. */
  disabled?: boolean;
  /** The fetch implementation; default the global fetch of Node 18+. */
  fetch?: typeof fetch;
}

/** Options of `flush()` and `close()`. */
export interface FlushOptions {
  /** Deadline in ms; default the client's `shutdownTimeout` (10000). */
  timeout?: number;
}

/** What a `flush()` or `close()` achieved. */
export interface FlushResult {
  /** Every message the call covered was accepted by the service. */
  ok: boolean;
  /** The deadline passed first. */
  timedOut: boolean;
  /**
   * Messages not delivered when the call returned: after `flush()` they are still queued and keep
   * being retried; after `close()` they are dropped (and reported to `onError`).
   */
  unsent: WireMessage[];
  /** Messages dropped meanwhile (rejected by the service, retries exhausted, too old). */
  errors: DeliveryError[];
}

/** Messages were dropped: `messages` were not stored, `status` is the service's answer if any. */
export class DeliveryError extends Error {
  readonly messages: WireMessage[];
  readonly status?: number;
  /** Position of the rejected message in its batch, when the service named one. */
  readonly index?: number;

  constructor(message: string, messages: WireMessage[], status?: number, index?: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "DeliveryError";
    this.messages = messages;
    this.status = status;
    this.index = index;
  }
}

interface Queued {
  seq: number;
  queuedAt: number;
  wire: WireMessage;
  json: string;
}

interface FlushWaiter {
  upTo: number;
  errors: DeliveryError[];
  resolve: () => void;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a non-negative number`);
  return value;
}

function isoTime(value: Date | string | undefined): string {
  if (value === undefined) return new Date().toISOString();
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new TypeError(`timestamp is not a valid date: ${String(value)}`);
  return date.toISOString();
}

function nonEmpty(value: unknown): value is string {
  return typeof value === "string" && value.trim() !== "";
}

/** A plain object (not an array, string or class instance) or undefined. */
function objectOrNothing(value: unknown, name: string): JsonObject | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new TypeError(`${name} must be an object`);
  return value as JsonObject;
}

/**
 * Parse a Retry-After header (delay seconds or an HTTP date) into milliseconds, or undefined.
 * The result is capped at five minutes.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null || value.trim() === "") return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) {
    ms = Number(text) * 1000;
  } else {
    // an HTTP date names its weekday and month; anything else ("-3", "soon") is ignored
    if (!/^[A-Za-z]{3}, /.test(text)) return undefined;
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/**
 * Backoff before retry number `attempt + 1`: `min` doubled per attempt, capped at `max`, with
 * "equal jitter" (half fixed, half random).
 */
export function backoff(attempt: number, min: number, max: number): number {
  const delay = Math.min(max, min * 2 ** Math.min(attempt, 40));
  return delay / 2 + Math.random() * (delay / 2);
}

/** The client: create one per process, call `close()` before exiting. */
export class Analytics {
  readonly endpoint: string;
  private readonly writeKey: string;
  private readonly flushAt: number;
  private readonly maxRetries: number;
  private readonly timeout: number;
  private readonly minRetryDelay: number;
  private readonly maxRetryDelay: number;
  private readonly maxQueueSize: number;
  private readonly maxMessageAge: number;
  private readonly shutdownTimeout: number;
  private readonly onError: (error: DeliveryError) => void;
  private readonly beforeSend?: (message: WireMessage) => WireMessage | null | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly timer: ReturnType<typeof setInterval>;
  /** Aborted when close() gives up: ends the request in flight and the retry sleep at once. */
  private readonly stop = new AbortController();

  private queue: Queued[] = [];
  private inflight: Queued[] = [];
  private seq = 0;
  private settledUpTo = 0;
  private draining: Promise<void> | null = null;
  private waiters: FlushWaiter[] = [];
  private closed = false;
  private closing: Promise<FlushResult> | null = null;
  private optedOut: boolean;
  private defaults: JsonObject = {};

  constructor(options: AnalyticsOptions) {
    if (!options || !nonEmpty(options.writeKey)) throw new TypeError("writeKey is required");
    const host = options.host ?? "http://localhost:3206";
    let url: URL;
    try {
      url = new URL(host);
    } catch {
      throw new TypeError(`host is not a URL: ${host}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`host must be http(s): ${host}`);
    this.endpoint = host.replace(/\/+$/, "") + "/analytics/batch";
    this.writeKey = options.writeKey;
    this.flushAt = Math.min(MAX_BATCH_MESSAGES, Math.max(1, Math.floor(positive(options.flushAt, 20, "flushAt"))));
    this.maxRetries = Math.floor(positive(options.maxRetries, 8, "maxRetries"));
    this.timeout = Math.max(1, positive(options.timeout, 10_000, "timeout"));
    this.minRetryDelay = positive(options.minRetryDelay, 100, "minRetryDelay");
    this.maxRetryDelay = Math.max(this.minRetryDelay, positive(options.maxRetryDelay, 10_000, "maxRetryDelay"));
    this.maxQueueSize = Math.max(1, positive(options.maxQueueSize, 10_000, "maxQueueSize"));
    this.maxMessageAge = Math.min(DEDUPE_WINDOW_MS, positive(options.maxMessageAge, DEDUPE_WINDOW_MS, "maxMessageAge"));
    this.shutdownTimeout = positive(options.shutdownTimeout, 10_000, "shutdownTimeout");
    this.onError = options.onError ?? ((error) => console.error(`[${LIBRARY_NAME}] ${error.message}`));
    if (options.beforeSend !== undefined && typeof options.beforeSend !== "function") {
      throw new TypeError("beforeSend must be a function");
    }
    this.beforeSend = options.beforeSend;
    this.optedOut = options.disabled === true;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new TypeError("no fetch: use Node 18+ or pass options.fetch");
    this.fetchImpl = fetchImpl;
    const interval = Math.max(1, positive(options.flushInterval, 5000, "flushInterval"));
    this.timer = setInterval(() => {
      if (this.queue.length > 0) this.kick();
    }, interval);
    // the timer alone does not keep the process alive: call close() (or flush()) before exiting
    this.timer.unref?.();
  }

  /** Queue a track message; returns its message id, or undefined when it was dropped (reported to onError). */
  track(params: TrackParams): string | undefined {
    return this.build("track", params, (p) => {
      if (!nonEmpty(p.event)) throw new TypeError("track needs an event name");
      this.requireIdentity(p);
      return { event: p.event, properties: this.withDefaults(objectOrNothing(p.properties, "properties")) };
    });
  }

  /** Queue an identify message; returns its message id (see {@link track}). */
  identify(params: IdentifyParams): string | undefined {
    return this.build("identify", params, (p) => {
      if (!nonEmpty(p.userId)) throw new TypeError("identify needs a userId");
      return { traits: objectOrNothing(p.traits, "traits") };
    });
  }

  /** Queue a page message (stored as `$pageview`); returns its message id (see {@link track}). */
  page(params: PageParams): string | undefined {
    return this.build("page", params, (p) => this.view(p));
  }

  /** Queue a screen message (stored as `$screen`); returns its message id (see {@link track}). */
  screen(params: ScreenParams): string | undefined {
    return this.build("screen", params, (p) => this.view(p));
  }

  /** Queue a group message; returns its message id (see {@link track}). */
  group(params: GroupParams): string | undefined {
    return this.build("group", params, (p) => {
      if (!nonEmpty(p.groupId)) throw new TypeError("group needs a groupId");
      this.requireIdentity(p);
      return { groupId: p.groupId, traits: objectOrNothing(p.traits, "traits") };
    });
  }

  /** Queue an alias message; returns its message id (see {@link track}). */
  alias(params: AliasParams): string | undefined {
    return this.build("alias", params, (p) => {
      if (!nonEmpty(p.userId) || !nonEmpty(p.previousId)) throw new TypeError("alias needs a userId and a previousId");
      return { previousId: p.previousId };
    });
  }

  /** Properties added to every track, page and screen (a message's own properties win). */
  register(properties: JsonObject): void {
    try {
      this.defaults = { ...this.defaults, ...objectOrNothing(properties, "register's properties") };
    } catch (error) {
      this.report(new DeliveryError((error as Error).message, []));
    }
  }

  /** Stop adding the default property `key`. */
  unregister(key: string): void {
    const { [key]: _removed, ...rest } = this.defaults;
    void _removed;
    this.defaults = rest;
  }

  /** Stop recording: later calls are dropped silently until {@link optIn}. */
  optOut(): void {
    this.optedOut = true;
  }

  /** Record again after {@link optOut} (or the `disabled` option). */
  optIn(): void {
    this.optedOut = false;
  }

  /** Whether calls are currently dropped because of {@link optOut} or `disabled`. */
  get isOptedOut(): boolean {
    return this.optedOut;
  }

  /** Number of messages waiting to be sent (queued or in flight). */
  get pending(): number {
    return this.queue.length + this.inflight.length;
  }

  /**
   * Send every queued message and wait until each was stored or dropped, or the timeout passed.
   * Never rejects: the result says what was not delivered (those messages stay queued).
   */
  flush(options: FlushOptions = {}): Promise<FlushResult> {
    return this.waitSettled(this.seq, this.deadline(options));
  }

  /**
   * Stop the background timer and send what is queued, within the timeout; what is still unsent
   * then is dropped and reported to onError. Afterwards calls are dropped with a report. Calling
   * it again returns the same promise. Never rejects.
   */
  close(options: FlushOptions = {}): Promise<FlushResult> {
    if (!this.closing) {
      this.closed = true;
      clearInterval(this.timer);
      this.closing = this.waitSettled(this.seq, this.deadline(options)).then((result) => {
        if (!result.timedOut) return result;
        this.stop.abort();
        const unsent = this.inflight.concat(this.queue).map((q) => q.wire);
        this.inflight = [];
        this.queue = [];
        if (unsent.length > 0) {
          this.report(new DeliveryError(`close timed out: ${unsent.length} message(s) not sent`, unsent));
        }
        return { ...result, unsent };
      });
    }
    return this.closing;
  }

  private deadline(options: FlushOptions | undefined): number {
    const timeout = options?.timeout;
    return typeof timeout === "number" && Number.isFinite(timeout) && timeout >= 0 ? timeout : this.shutdownTimeout;
  }

  private waitSettled(upTo: number, timeout: number): Promise<FlushResult> {
    const errors: DeliveryError[] = [];
    const result = (timedOut: boolean): FlushResult => {
      const unsent = this.inflight.concat(this.queue).filter((q) => q.seq <= upTo).map((q) => q.wire);
      return { ok: errors.length === 0 && unsent.length === 0, timedOut, unsent, errors };
    };
    if (this.settledUpTo >= upTo && this.queue.length === 0 && !this.draining) return Promise.resolve(result(false));
    return new Promise<FlushResult>((resolve) => {
      const waiter: FlushWaiter = {
        upTo,
        errors,
        resolve: () => {
          clearTimeout(timer);
          resolve(result(false));
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(result(true));
      }, timeout);
      this.waiters.push(waiter);
      this.kick();
    });
  }

  private build<P>(type: MessageType, params: P, fields: (p: P) => Partial<WireMessage>): string | undefined {
    if (this.closed) {
      this.report(new DeliveryError(`${type} after close(): message dropped`, []));
      return undefined;
    }
    if (this.optedOut) return undefined;
    let wire: WireMessage;
    try {
      if (params === null || typeof params !== "object") throw new TypeError(`${type} needs an object of fields`);
      const specific = fields(params);
      wire = { type, ...this.common(params as CommonFields & { userId?: string; anonymousId?: string }), ...specific };
    } catch (error) {
      this.report(new DeliveryError(`invalid ${type}: ${(error as Error).message}; message dropped`, []));
      return undefined;
    }
    if (this.beforeSend) {
      let changed: WireMessage | null | undefined;
      try {
        changed = this.beforeSend(wire);
      } catch (error) {
        this.report(new DeliveryError(`beforeSend threw: ${(error as Error).message}; message dropped`, [wire], undefined,
          undefined, error));
        return undefined;
      }
      if (changed === null || changed === undefined) return undefined;
      wire = changed;
    }
    return this.enqueue(wire);
  }

  private view(p: PageParams): Partial<WireMessage> {
    this.requireIdentity(p);
    if (p.name !== undefined && typeof p.name !== "string") throw new TypeError("name must be a string");
    return { name: p.name, properties: this.withDefaults(objectOrNothing(p.properties, "properties")) };
  }

  private withDefaults(properties: JsonObject | undefined): JsonObject | undefined {
    if (Object.keys(this.defaults).length === 0) return properties;
    return { ...this.defaults, ...(properties ?? {}) };
  }

  private requireIdentity(params: { userId?: unknown; anonymousId?: unknown }): void {
    if (!nonEmpty(params.userId) && !nonEmpty(params.anonymousId)) {
      throw new TypeError("a message needs a userId or an anonymousId");
    }
  }

  private common(params: CommonFields & { userId?: string; anonymousId?: string }) {
    const context: JsonObject = { ...(objectOrNothing(params.context, "context") ?? {}) };
    if (context.library === undefined) context.library = { name: LIBRARY_NAME, version: VERSION };
    if (params.messageId !== undefined && !nonEmpty(params.messageId)) throw new TypeError("messageId must be a string");
    return {
      messageId: params.messageId ?? randomUUID(),
      timestamp: isoTime(params.timestamp),
      userId: params.userId,
      anonymousId: params.anonymousId,
      context,
    };
  }

  private enqueue(wire: WireMessage): string | undefined {
    let json: string;
    try {
      json = JSON.stringify(wire);
    } catch (error) {
      this.report(new DeliveryError(`message cannot be encoded: ${(error as Error).message}`, [wire]));
      return undefined;
    }
    if (Buffer.byteLength(json) + ENVELOPE_BYTES > MAX_BATCH_BYTES) {
      this.report(new DeliveryError(`message exceeds ${MAX_BATCH_BYTES} bytes; dropped`, [wire]));
      return undefined;
    }
    if (this.pending >= this.maxQueueSize) {
      this.report(new DeliveryError("queue is full; message dropped", [wire]));
      return undefined;
    }
    this.queue.push({ seq: ++this.seq, queuedAt: Date.now(), wire, json });
    if (this.queue.length >= this.flushAt) this.kick();
    return wire.messageId;
  }

  /** Start the sending loop unless it runs. */
  private kick(): void {
    if (this.draining || this.stop.signal.aborted) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      // messages queued while the last request was in flight, or a flush waiting for them
      if (this.queue.length > 0 && (this.queue.length >= this.flushAt || this.waiters.length > 0)) this.kick();
      else this.settleWaiters();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.stop.signal.aborted) {
      this.inflight = this.takeBatch();
      const last = this.inflight[this.inflight.length - 1].seq;
      try {
        await this.send();
      } catch (error) {
        // a bug of ours must not leave an unhandled rejection in the application
        this.fail(new DeliveryError(`unexpected error: ${(error as Error).message}`, this.inflight.map((q) => q.wire)),
          this.inflight);
      }
      if (this.stop.signal.aborted) return; // close() reports what was in flight
      this.inflight = [];
      this.settledUpTo = last;
      this.settleWaiters();
    }
  }

  private takeBatch(): Queued[] {
    let size = ENVELOPE_BYTES;
    let n = 0;
    for (const item of this.queue) {
      const bytes = Buffer.byteLength(item.json) + 1;
      if (n === MAX_BATCH_MESSAGES || (n > 0 && size + bytes > MAX_BATCH_BYTES)) break;
      size += bytes;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private settleWaiters(): void {
    const idle = this.queue.length === 0;
    this.waiters = this.waiters.filter((waiter) => {
      if (this.settledUpTo < waiter.upTo && !(idle && !this.draining)) return true;
      waiter.resolve();
      return false;
    });
  }

  private report(error: DeliveryError): void {
    try {
      this.onError(error);
    } catch {
      // a throwing callback must not reach the application's call nor stop delivery
    }
  }

  private fail(error: DeliveryError, items: Queued[]): void {
    const first = items.length > 0 ? items[0].seq : 0;
    for (const waiter of this.waiters) {
      if (first <= waiter.upTo) waiter.errors.push(error);
    }
    this.report(error);
  }

  /** Drop the in-flight messages the service might already have forgotten (older than maxMessageAge). */
  private dropExpired(): void {
    // an attempt starting now may land up to `timeout` later: it must still be inside the window
    const limit = Date.now() + this.timeout - this.maxMessageAge;
    const expired = this.inflight.filter((q) => q.queuedAt <= limit);
    if (expired.length === 0) return;
    this.inflight = this.inflight.filter((q) => q.queuedAt > limit);
    this.fail(new DeliveryError(`${expired.length} message(s) older than ${this.maxMessageAge} ms dropped unsent`,
      expired.map((q) => q.wire)), expired);
  }

  /** Deliver the in-flight batch, retrying as configured; a retry resends the very same messages. */
  private async send(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      this.dropExpired();
      const items = this.inflight;
      if (items.length === 0 || this.stop.signal.aborted) return;
      const outcome = await this.post(items);
      if (outcome.ok || this.stop.signal.aborted) return;
      const { status, index, retryAfter, error } = outcome;
      if (status === 400 && index !== undefined && index >= 0 && index < items.length && items.length > 1) {
        // the service refuses a whole batch for one invalid message and names it: drop that one
        const rejected = items[index];
        this.fail(new DeliveryError(error.message, [rejected.wire], status, index), [rejected]);
        this.inflight = items.filter((_, i) => i !== index);
        attempt = -1;
        continue;
      }
      const retryable = status === undefined || status === 408 || status === 429 || status >= 500;
      if (!retryable || attempt >= this.maxRetries) {
        const message = retryable ? `giving up after ${attempt + 1} attempt${attempt === 0 ? "" : "s"}: ${error.message}` : error.message;
        this.fail(new DeliveryError(message, items.map((q) => q.wire), status, index, error), items);
        this.inflight = [];
        return;
      }
      await this.sleep(retryAfter ?? backoff(attempt, this.minRetryDelay, this.maxRetryDelay));
    }
  }

  /** Wait `ms`, or less when close() gives up. */
  private sleep(ms: number): Promise<void> {
    const signal = this.stop.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
    });
  }

  private async post(items: Queued[]): Promise<
    | { ok: true }
    | { ok: false; status?: number; index?: number; retryAfter?: number; error: Error }
  > {
    const body = `{"batch":[${items.map((q) => q.json).join(",")}],"sentAt":"${new Date().toISOString()}"}`;
    // one signal for the request timeout and for close() giving up (AbortSignal.any needs Node 20)
    const controller = new AbortController();
    const abort = () => controller.abort();
    const timer = setTimeout(abort, this.timeout);
    this.stop.signal.addEventListener("abort", abort);
    try {
      let response: Response;
      try {
        response = await this.fetchImpl(this.endpoint, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            Authorization: `Bearer ${this.writeKey}`,
            "User-Agent": `${LIBRARY_NAME}/${VERSION}`,
          },
          body,
          signal: controller.signal,
        });
      } catch (cause) {
        const detail = controller.signal.aborted ? `no answer within ${this.timeout} ms`
          : cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause);
        return { ok: false, error: new Error(`request failed: ${detail}`) };
      }
      let text = "";
      try {
        text = await response.text();
      } catch {
        // the answer was cut: its status is what counts
      }
      if (response.ok) return { ok: true };
      let message = text.trim().slice(0, 200);
      let index: number | undefined;
      try {
        const parsed = JSON.parse(text) as { message?: unknown; index?: unknown };
        if (typeof parsed.message === "string") message = parsed.message;
        if (typeof parsed.index === "number" && Number.isInteger(parsed.index)) index = parsed.index;
      } catch {
        // not JSON: keep the raw text
      }
      return {
        ok: false,
        status: response.status,
        index,
        retryAfter: parseRetryAfter(response.headers.get("Retry-After")),
        error: new Error(`service answered ${response.status}${message ? `: ${message}` : ""}`),
      };
    } finally {
      clearTimeout(timer);
      this.stop.signal.removeEventListener("abort", abort);
    }
  }
}

export default Analytics;
