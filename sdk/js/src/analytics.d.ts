/** Type declarations of @nself/analytics-js (src/analytics.js). */

/** Free-form properties, traits or context: anything JSON.stringify encodes. */
export type JsonObject = Record<string, unknown>;

export type MessageType = "track" | "identify" | "page" | "screen" | "group" | "alias";

/** A message as sent to the service (Segment's field names). */
export interface Message {
  type: MessageType;
  messageId: string;
  timestamp: string;
  anonymousId: string;
  userId?: string;
  previousId?: string;
  groupId?: string;
  event?: string;
  name?: string;
  properties?: JsonObject;
  traits?: JsonObject;
  context: JsonObject;
}

export interface AnalyticsOptions {
  /** One of the service's write keys (ANALYTICS_WRITE_KEYS); required. */
  writeKey: string;
  /** Base URL of the service, without /analytics; default: this page's origin (required outside a page). */
  host?: string;
  /** Queued messages that trigger a send; default 20 (a request carries at most 100). */
  flushAt?: number;
  /** Milliseconds after the first queued message before a send; default 5000. */
  flushInterval?: number;
  /** Retries of a failed request in this page view; default 10 (the messages stay stored for the next page load). */
  maxRetries?: number;
  /** Backoff before the first retry, ms, doubled each time; default 1000. */
  minRetryDelay?: number;
  /** Cap of the backoff, ms; default 30000 (a Retry-After is honoured up to 5 minutes). */
  maxRetryDelay?: number;
  /** Request timeout, ms; default 10000. */
  timeout?: number;
  /** Messages held in memory (queued or in flight); beyond it new ones are dropped and reported. Default 1000. */
  maxQueueSize?: number;
  /** Longest a message is kept or retried, ms; default and maximum DEDUPE_WINDOW_MS (24 h). */
  maxMessageAge?: number;
  /** "localStorage" (default) or "memory": memory-only mode writes nothing to the browser's storage. */
  persistence?: "localStorage" | "memory";
  /** Prefix of the storage keys (not of the anonymous id's, shared with the beacon); default "nsa". */
  storagePrefix?: string;
  /** Treat a Do Not Track signal as an opt-out; default false. */
  respectDoNotTrack?: boolean;
  /** Treat a Global Privacy Control signal as an opt-out; default false. */
  respectGlobalPrivacyControl?: boolean;
  /** Change each message before it is queued, or return null to drop it. */
  beforeSend?: (message: Message) => Message | null | undefined;
  /** Told about invalid calls and dropped messages; default console.warn. */
  onError?: (error: Error, messages: Message[]) => void;
}

export declare const VERSION: string;
export declare const LIBRARY_NAME: string;
/** The service's de-duplication window (its OpenAPI's info.x-dedupe-window-seconds), ms. */
export declare const DEDUPE_WINDOW_MS: number;
/** localStorage key of the anonymous id, shared with the page-view beacon. */
export declare const ANONYMOUS_ID_KEY: "nsa_anonymous_id";
export declare const SESSION_TIMEOUT_MS: number;

export declare function uuid(): string;
export declare function parseRetryAfter(value: string | null | undefined, now?: number): number | undefined;
export declare function backoff(attempt: number, min: number, max: number): number;

/** The browser client. No method throws; calls return the message id, or undefined when dropped. */
export declare class Analytics {
  constructor(options: AnalyticsOptions);
  readonly writeKey: string;
  readonly endpoint: string;
  /** Messages waiting to be sent (queued or in flight). */
  readonly pending: number;
  track(event: string, properties?: JsonObject): string | undefined;
  identify(userId: string, traits?: JsonObject): string | undefined;
  identify(traits: JsonObject): string | undefined;
  page(name?: string, properties?: JsonObject): string | undefined;
  page(properties?: JsonObject): string | undefined;
  screen(name?: string, properties?: JsonObject): string | undefined;
  screen(properties?: JsonObject): string | undefined;
  group(groupId: string, traits?: JsonObject): string | undefined;
  alias(userId: string, previousId?: string): string | undefined;
  register(properties: JsonObject): void;
  unregister(key: string): void;
  reset(): void;
  setAnonymousId(id: string): void;
  anonymousId(): string;
  userId(): string | null;
  sessionId(): string;
  optOut(): void;
  optIn(): void;
  hasOptedOut(): boolean;
  /** Resolves true when everything queued was accepted; never rejects. */
  flush(): Promise<boolean>;
  destroy(): void;
}

export default Analytics;
