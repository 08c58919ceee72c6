// Compile-time checks of src/analytics.d.ts (`npm run typecheck`, strict); never executed.
import Analytics, { DEDUPE_WINDOW_MS, type AnalyticsOptions, type Message } from "@nself/analytics-js";

const options: AnalyticsOptions = { writeKey: "wk", host: "https://analytics.example.com", persistence: "memory" };
const analytics = new Analytics({
  ...options,
  respectDoNotTrack: true,
  respectGlobalPrivacyControl: true,
  beforeSend: (m: Message) => (m.event === "secret" ? null : m),
  onError: (error: Error, messages: Message[]) => console.log(error.message, messages.length),
});
const id: string | undefined = analytics.track("signup", { plan: "pro" });
analytics.identify("u1", { email: "a@example.com" });
analytics.identify({ plan: "pro" });
analytics.page();
analytics.page("Pricing", { path: "/pricing" });
analytics.screen("Settings");
analytics.group("acme", { plan: "team" });
analytics.alias("u2");
analytics.register({ env: "prod" });
analytics.setAnonymousId(analytics.anonymousId());
const user: string | null = analytics.userId();
const flushed: Promise<boolean> = analytics.flush();
const window_: number = DEDUPE_WINDOW_MS;
void [id, user, flushed, window_];

// @ts-expect-error: properties are an object
analytics.track("signup", "abc");
// @ts-expect-error: the write key is required
new Analytics({ host: "https://analytics.example.com" });
// @ts-expect-error: persistence is localStorage or memory
new Analytics({ writeKey: "wk", persistence: "cookie" });
