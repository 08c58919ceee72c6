// Compile-time checks of the public types (`npm run typecheck`); never executed.
import Analytics, { DeliveryError, type AnalyticsOptions, type FlushResult, type TrackParams, type WireMessage } from "../src/index.js";

const options: AnalyticsOptions = { writeKey: "wk", host: "http://localhost:3206", flushAt: 10, timeout: 5000 };
const analytics = new Analytics({ ...options, onError: (e: DeliveryError) => console.log(e.status, e.messages.length) });

const id: string | undefined = analytics.track({ userId: "u1", event: "signup", properties: { plan: "pro" } });
analytics.track({ anonymousId: "a1", event: "view", timestamp: new Date(), messageId: id });
analytics.screen({ userId: "u1", name: "Settings", properties: { tab: "billing" } });
analytics.group({ userId: "u1", groupId: "acme", traits: { plan: "team" } });
analytics.alias({ userId: "u1", previousId: "a1" });
analytics.register({ env: "prod" });
analytics.unregister("env");
analytics.optOut();
analytics.optIn();
const hooked = new Analytics({ writeKey: "wk", beforeSend: (m: WireMessage) => (m.event === "x" ? null : m), disabled: true,
  maxMessageAge: 60_000, shutdownTimeout: 2000 });
void hooked;
analytics.identify({ userId: "u1", traits: { email: "a@example.com" } });
analytics.page({ anonymousId: "a1", name: "Pricing", properties: { path: "/pricing" } });
const flushed: Promise<FlushResult> = analytics.flush({ timeout: 1000 });
const closed: Promise<FlushResult> = analytics.close({ timeout: 1000 });
void flushed;
void closed;

// @ts-expect-error: a track needs an event
analytics.track({ userId: "u1" });
// @ts-expect-error: a message needs a userId or an anonymousId
analytics.track({ event: "signup" });
// @ts-expect-error: identify needs a userId
analytics.identify({ anonymousId: "a1" });
// @ts-expect-error: a page needs a userId or an anonymousId
analytics.page({ name: "Home" });
// @ts-expect-error: group needs a groupId
analytics.group({ userId: "u1" });
// @ts-expect-error: alias needs a previousId
analytics.alias({ userId: "u1" });
// @ts-expect-error: the write key is required
new Analytics({ host: "http://localhost:3206" });
// @ts-expect-error: flushAt is a number
new Analytics({ writeKey: "wk", flushAt: "20" });

const params: TrackParams = { userId: "u", event: "e" };
void params;
