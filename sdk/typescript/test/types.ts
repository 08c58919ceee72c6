// Compile-time checks of the public types (`npm run typecheck`); never executed.
import Analytics, { DeliveryError, type AnalyticsOptions, type TrackParams } from "../src/index.js";

const options: AnalyticsOptions = { writeKey: "wk", host: "http://localhost:3206", flushAt: 10, timeout: 5000 };
const analytics = new Analytics({ ...options, onError: (e: DeliveryError) => console.log(e.status, e.messages.length) });

const id: string = analytics.track({ userId: "u1", event: "signup", properties: { plan: "pro" } });
analytics.track({ anonymousId: "a1", event: "view", timestamp: new Date(), messageId: id });
analytics.identify({ userId: "u1", traits: { email: "a@example.com" } });
analytics.page({ anonymousId: "a1", name: "Pricing", properties: { path: "/pricing" } });
const flushed: Promise<void> = analytics.flush();
const closed: Promise<void> = analytics.close();
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
// @ts-expect-error: the write key is required
new Analytics({ host: "http://localhost:3206" });
// @ts-expect-error: flushAt is a number
new Analytics({ writeKey: "wk", flushAt: "20" });

const params: TrackParams = { userId: "u", event: "e" };
void params;
