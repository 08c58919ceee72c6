/**
 * Node.js server SDK of nself-analytics, the self-hosted analytics service.
 *
 * `track`, `identify` and `page` queue messages in memory; they are sent in the background to
 * `POST {host}/analytics/batch` when `flushAt` are queued, every `flushInterval`, on `flush()` and
 * on `close()`. Network errors, 408, 429 and 5xx are retried with exponential backoff and jitter
 * (a `Retry-After` header sets the wait); every message carries a random UUID message id that a
 * retry keeps, so the service stores each message once.
 */

import { randomUUID } from "node:crypto";

export const VERSION = "0.1.0";
export const LIBRARY_NAME = "@nself/analytics-node";
/** The most messages one request carries (the service's limit). */
export const MAX_BATCH_MESSAGES = 100;
/** The largest request body the SDK sends (the service accepts 500 KB). */
export const MAX_BATCH_BYTES = 500_000;
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

/** A message as sent to the service (Segment field names). */
export interface WireMessage {
  type: "track" | "identify" | "page";
  messageId: string;
  timestamp: string;
  userId?: string;
  anonymousId?: string;
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
  /** Called when messages are dropped (rejected, retries exhausted, queue full); default: console.error. */
  onError?: (error: DeliveryError) => void;
  /** The fetch implementation; default the global fetch of Node 18+. */
  fetch?: typeof fetch;
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
  wire: WireMessage;
  json: string;
}

interface FlushWaiter {
  upTo: number;
  errors: DeliveryError[];
  resolve: () => void;
  reject: (error: Error) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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
  private readonly onError: (error: DeliveryError) => void;
  private readonly fetchImpl: typeof fetch;
  private readonly timer: ReturnType<typeof setInterval>;

  private queue: Queued[] = [];
  private seq = 0;
  private settledUpTo = 0;
  private draining: Promise<void> | null = null;
  private waiters: FlushWaiter[] = [];
  private closed = false;
  private closing: Promise<void> | null = null;

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
    this.timeout = positive(options.timeout, 10_000, "timeout");
    this.minRetryDelay = positive(options.minRetryDelay, 100, "minRetryDelay");
    this.maxRetryDelay = Math.max(this.minRetryDelay, positive(options.maxRetryDelay, 10_000, "maxRetryDelay"));
    this.maxQueueSize = Math.max(1, positive(options.maxQueueSize, 10_000, "maxQueueSize"));
    this.onError = options.onError ?? ((error) => console.error(`[${LIBRARY_NAME}] ${error.message}`));
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

  /** Queue a track message; returns its message id. Throws a TypeError for an invalid message. */
  track(params: TrackParams): string {
    if (!params || !nonEmpty(params.event)) throw new TypeError("track needs an event name");
    this.requireIdentity(params);
    return this.enqueue({
      type: "track",
      ...this.common(params),
      event: params.event,
      properties: params.properties,
    });
  }

  /** Queue an identify message; returns its message id. */
  identify(params: IdentifyParams): string {
    if (!params || !nonEmpty(params.userId)) throw new TypeError("identify needs a userId");
    return this.enqueue({ type: "identify", ...this.common(params), traits: params.traits });
  }

  /** Queue a page message; returns its message id. */
  page(params: PageParams): string {
    this.requireIdentity(params);
    return this.enqueue({
      type: "page",
      ...this.common(params),
      name: params.name,
      properties: params.properties,
    });
  }

  /** Number of messages waiting to be sent. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Send every queued message and wait until each was stored or dropped. Rejects with the first
   * {@link DeliveryError} if messages queued before the call were dropped.
   */
  flush(): Promise<void> {
    const upTo = this.seq;
    if (this.settledUpTo >= upTo && this.queue.length === 0 && !this.draining) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => {
      this.waiters.push({ upTo, errors: [], resolve, reject });
    });
    this.kick();
    return done;
  }

  /**
   * Stop the background timer and send what is queued (see {@link flush}); afterwards `track`,
   * `identify` and `page` throw. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      clearInterval(this.timer);
      this.closing = this.flush();
    }
    return this.closing;
  }

  private requireIdentity(params: { userId?: unknown; anonymousId?: unknown } | undefined): void {
    if (!params || (!nonEmpty(params.userId) && !nonEmpty(params.anonymousId))) {
      throw new TypeError("a message needs a userId or an anonymousId");
    }
  }

  private common(params: CommonFields & { userId?: string; anonymousId?: string }) {
    const context: JsonObject = { ...(params.context ?? {}) };
    if (context.library === undefined) context.library = { name: LIBRARY_NAME, version: VERSION };
    return {
      messageId: params.messageId ?? randomUUID(),
      timestamp: isoTime(params.timestamp),
      userId: params.userId,
      anonymousId: params.anonymousId,
      context,
    };
  }

  private enqueue(wire: WireMessage): string {
    if (this.closed) throw new Error("analytics client is closed");
    const json = JSON.stringify(wire);
    if (Buffer.byteLength(json) + ENVELOPE_BYTES > MAX_BATCH_BYTES) {
      throw new TypeError(`message exceeds ${MAX_BATCH_BYTES} bytes`);
    }
    if (this.queue.length >= this.maxQueueSize) {
      this.onError(new DeliveryError("queue is full; message dropped", [wire]));
      return wire.messageId;
    }
    this.queue.push({ seq: ++this.seq, wire, json });
    if (this.queue.length >= this.flushAt) this.kick();
    return wire.messageId;
  }

  /** Start the sending loop unless it runs. */
  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      // messages queued while the last request was in flight, or a flush waiting for them
      if (this.queue.length > 0 && (this.queue.length >= this.flushAt || this.waiters.length > 0)) this.kick();
      else this.settleWaiters();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      await this.send(batch);
      this.settledUpTo = batch[batch.length - 1].seq;
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
      if (waiter.errors.length > 0) waiter.reject(waiter.errors[0]);
      else waiter.resolve();
      return false;
    });
  }

  private fail(error: DeliveryError, items: Queued[]): void {
    const first = items.length > 0 ? items[0].seq : 0;
    for (const waiter of this.waiters) {
      if (first <= waiter.upTo) waiter.errors.push(error);
    }
    try {
      this.onError(error);
    } catch {
      // a throwing callback must not stop the delivery of other messages
    }
  }

  /** Deliver one batch, retrying as configured; a retry resends the very same messages. */
  private async send(batch: Queued[]): Promise<void> {
    let items = batch;
    for (let attempt = 0; items.length > 0; attempt++) {
      const outcome = await this.post(items);
      if (outcome.ok) return;
      const { status, index, retryAfter, error } = outcome;
      if (status === 400 && index !== undefined && index >= 0 && index < items.length && items.length > 1) {
        // the service refuses a whole batch for one invalid message and names it: drop that one
        const rejected = items[index];
        this.fail(new DeliveryError(error.message, [rejected.wire], status, index), [rejected]);
        items = items.filter((_, i) => i !== index);
        attempt = -1;
        continue;
      }
      const retryable = status === undefined || status === 408 || status === 429 || status >= 500;
      if (!retryable || attempt >= this.maxRetries) {
        const message = retryable ? `giving up after ${attempt + 1} attempt${attempt === 0 ? "" : "s"}: ${error.message}` : error.message;
        this.fail(new DeliveryError(message, items.map((q) => q.wire), status, index, error), items);
        return;
      }
      await sleep(retryAfter ?? backoff(attempt, this.minRetryDelay, this.maxRetryDelay));
    }
  }

  private async post(items: Queued[]): Promise<
    | { ok: true }
    | { ok: false; status?: number; index?: number; retryAfter?: number; error: Error }
  > {
    const body = `{"batch":[${items.map((q) => q.json).join(",")}],"sentAt":"${new Date().toISOString()}"}`;
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
        signal: AbortSignal.timeout(this.timeout),
      });
    } catch (cause) {
      const detail = cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause);
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
  }
}

export default Analytics;
