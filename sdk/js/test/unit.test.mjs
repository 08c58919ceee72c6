// Unit tests of the browser SDK in Node (node --test) with a DOM-less harness and real HTTP servers.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { Analytics, ANONYMOUS_ID_KEY, DEDUPE_WINDOW_MS, SESSION_TIMEOUT_MS, VERSION } from "../src/analytics.js";
import { STALE_TAB_MS } from "../src/store.js";
import { beacons, LaggingView, Locks, noBrowser, openTab, server, Storage, tick, until } from "./harness.mjs";

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const clients = [];
const servers = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  beacons.length = 0;
});

async function srv(answer) {
  const s = await server(answer);
  servers.push(s);
  return s;
}

function client(options) {
  const errors = [];
  const c = new Analytics({ writeKey: "wk_unit", flushInterval: 3_600_000, minRetryDelay: 10, maxRetryDelay: 20,
    onError: (error, messages) => errors.push({ message: error.message, messages }), ...options });
  c.errors = errors;
  clients.push(c);
  return c;
}

const stored = (storage) => storage.entries("nsa:q:wk_unit:").map(([, v]) => JSON.parse(v));
const answer = (status, headers = {}) => (n, req, res) => {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(`{"status":"error","message":"answered ${status}"}`);
  return true;
};

test("the six calls carry Segment's field names, the anonymous id, a session id, page and UTM context", async () => {
  const s = await srv();
  openTab({ storage: new Storage() });
  const c = client({ host: s.url });
  const anon = c.anonymousId();
  assert.match(anon, UUID4);
  const ids = [
    c.page(),
    c.track("signup", { plan: "pro" }),
    c.identify("u1", { email: "a@example.com" }),
    c.screen("Settings", { tab: "billing" }),
    c.group("acme", { plan: "team" }),
    c.alias("u2"),
  ];
  assert.equal(await c.flush(), true);
  const batch = s.requests[0].body.batch;
  assert.deepEqual(batch.map((m) => m.messageId), ids);
  assert.equal(s.requests[0].body.writeKey, "wk_unit");
  const [page, track, identify, screen, group, alias] = batch;
  assert.deepEqual(page.properties, { url: "https://shop.example/pricing?utm_source=news&utm_campaign=spring", path: "/pricing",
    search: "?utm_source=news&utm_campaign=spring", referrer: "https://search.example/", title: "Pricing" });
  assert.deepEqual([track.type, track.event, track.properties, track.anonymousId, track.userId], ["track", "signup", { plan: "pro" }, anon, undefined]);
  assert.deepEqual([identify.userId, identify.traits], ["u1", { email: "a@example.com" }]);
  assert.deepEqual([screen.type, screen.name, screen.properties, screen.userId], ["screen", "Settings", { tab: "billing" }, "u1"]);
  assert.deepEqual([group.groupId, group.traits], ["acme", { plan: "team" }]);
  assert.deepEqual([alias.type, alias.userId, alias.previousId], ["alias", "u2", "u1"]);
  for (const m of batch) {
    assert.deepEqual(m.context.library, { name: "@nself/analytics-js", version: VERSION });
    assert.deepEqual(m.context.campaign, { source: "news", name: "spring" });
    assert.equal(m.context.sessionId, c.sessionId());
    assert.equal(m.context.page.path, "/pricing");
  }
  assert.deepEqual(c.errors, []);
});

test("invalid calls are reported and dropped, never thrown", () => {
  openTab({ storage: new Storage() });
  const c = client({ host: "http://127.0.0.1:1" });
  const calls = [
    () => c.track("signup", "abc"),
    () => c.track("signup", ["a"]),
    () => c.track(),
    () => c.track(42),
    () => c.identify(),
    () => c.identify({ toString: 1 }, "x"),
    () => c.page(3),
    () => c.group(),
    () => c.alias(""),
    () => c.track("e", { n: 1n }),
    () => c.track("big", { blob: "x".repeat(600_000) }),
  ];
  for (const call of calls) {
    const before = c.errors.length;
    assert.equal(call(), undefined);
    assert.equal(c.errors.length, before + 1, String(call));
  }
  assert.match(c.errors[0].message, /properties must be an object/);
  assert.equal(c.pending, 0);
  c.register("nope");
  c.setAnonymousId("");
  assert.equal(c.errors.length, calls.length + 2);
});

test("server-side rendering: construction and calls need no DOM and never throw", async () => {
  noBrowser();
  const s = await srv();
  const errors = [];
  const inert = new Analytics({ writeKey: "wk", onError: (e) => errors.push(e.message) });
  assert.equal(inert.track("e"), undefined);
  assert.match(errors[0], /host is required outside a web page/);
  const bad = new Analytics({ onError: (e) => errors.push(e.message) });
  assert.match(errors.at(-1), /writeKey is required/);
  assert.equal(await bad.flush(), true);
  const c = client({ host: s.url });
  const id = c.track("rendered", { on: "server" });
  assert.equal(await c.flush(), true);
  assert.deepEqual(s.ids(), [id]);
  assert.equal(s.requests[0].body.batch[0].context.page, undefined);
  assert.ok(c.page());
  assert.deepEqual(c.queue.at(-1).message.properties, {});
});

test("a failing server (401): reported, dropped from memory and storage, flush resolves false", async () => {
  const s = await srv(answer(401));
  const storage = new Storage();
  openTab({ storage });
  const c = client({ host: s.url });
  c.track("a");
  c.track("b");
  assert.equal(stored(storage).length, 2);
  assert.equal(await c.flush(), false);
  assert.equal(s.requests.length, 1);
  assert.match(c.errors[0].message, /service answered 401/);
  assert.equal(c.errors[0].messages.length, 2);
  assert.equal(stored(storage).length, 0);
});

test("a hanging server: the request times out, is retried with the same ids, and flush settles", async () => {
  let hang = true;
  const s = await srv(() => hang);
  openTab({ storage: new Storage() });
  const c = client({ host: s.url, timeout: 200 });
  const id = c.track("slow");
  setTimeout(() => {
    hang = false;
  }, 300);
  const started = Date.now();
  assert.equal(await c.flush(), true);
  assert.ok(Date.now() - started < 5000);
  assert.ok(s.requests.length >= 2 && s.requests.every((r) => r.ids[0] === id), `${s.requests.length} requests`);
});

test("a 503 with Retry-After: 300 keeps the messages stored; leaving does not beacon them; the next page load sends them", async () => {
  const down = await srv(answer(503, { "Retry-After": "300" }));
  const storage = new Storage();
  const tab = openTab({ storage });
  const c = client({ host: down.url });
  const ids = [c.track("a"), c.track("b")];
  const flushing = c.flush();
  await until(() => down.requests.length === 1);
  await tick(20);
  assert.equal(c.pending, 2);
  tab.leave();
  assert.equal(beacons.length, 0, "beaconed to a failing service");
  assert.deepEqual(stored(storage).map((e) => e.m.messageId), ids);
  c.destroy(); // ends the 300 s wait
  assert.equal(await flushing, false);

  const up = await srv();
  openTab({ storage });
  const next = client({ host: up.url });
  await until(() => up.requests.length === 1);
  assert.deepEqual(up.ids(), ids);
  await until(() => stored(storage).length === 0);
  assert.deepEqual(next.errors, []);
});

test("the memory queue is bounded: drops are reported", () => {
  openTab({ storage: new Storage() });
  const c = client({ host: "http://127.0.0.1:1", flushAt: 100, maxQueueSize: 5 });
  for (let i = 0; i < 7; i++) c.track("e", { i });
  assert.equal(c.pending, 5);
  assert.equal(c.errors.length, 2);
  assert.match(c.errors[0].message, /queue is full \(5\)/);
  assert.equal(c.errors[1].messages[0].properties.i, 6);
});

test("storage is written incrementally: one small key per message, whatever is already queued", () => {
  const storage = new Storage();
  openTab({ storage });
  const c = client({ host: "http://127.0.0.1:1", flushAt: 100, maxQueueSize: 5000 });
  for (let i = 0; i < 50; i++) c.track("warm", { i });
  const costs = [];
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 450 * round; i++) c.track("fill", { i });
    const [writes, bytes] = [storage.writes, storage.bytesWritten];
    c.track("measured", { round });
    costs.push([storage.writes - writes, storage.bytesWritten - bytes]);
  }
  // the same cost with 50 or 500 messages queued: the message's key and the session's
  assert.deepEqual(costs[0][0], 2);
  assert.deepEqual(costs[1][0], 2);
  assert.ok(costs[1][1] < 2000 && Math.abs(costs[1][1] - costs[0][1]) < 50, JSON.stringify(costs));
  assert.equal(stored(storage).length, 502);
});

test("beacon on leaving: the messages leave the storage and are not sent again after a reload", async () => {
  const s = await srv();
  const storage = new Storage();
  const tab = openTab({ storage });
  const c = client({ host: s.url, flushAt: 100 });
  const ids = [c.track("a"), c.page(), c.track("b")];
  tab.leave();
  assert.equal(beacons.length, 1);
  assert.deepEqual(beacons[0].body.batch.map((m) => m.messageId), ids);
  assert.equal(stored(storage).length, 0);
  assert.equal(c.pending, 0);
  await until(() => s.requests.length === 1);

  openTab({ storage }); // the reload
  const next = client({ host: s.url });
  await tick(100);
  assert.equal(s.requests.length, 1, "sent again after the reload");
  assert.equal(next.pending, 0);
});

test("two tabs: a live tab's stored messages are not taken by the other; a crashed tab's are, by one tab only", async () => {
  const s = await srv(answer(500));
  const storage = new Storage();
  openTab({ storage });
  const a = client({ host: s.url, maxRetries: 0 });
  const ids = [a.track("a1"), a.track("a2")];
  await a.flush(); // given up for now: stored, owned by tab A (alive)
  assert.equal(stored(storage).length, 2);

  const tabB = openTab({ storage });
  const b = client({ host: s.url, maxRetries: 0 });
  const tabC = openTab({ storage });
  const c = client({ host: s.url, maxRetries: 0 });
  await tick(50);
  assert.equal(b.pending + c.pending, 0, "a live tab's messages were adopted");

  // tab A crashes: no pagehide, its heartbeat goes stale
  a.destroyed = true;
  clearInterval(a.heartbeatTimer);
  storage.setItem(`nsa:tab:${a.tabId}`, String(Date.now() - STALE_TAB_MS - 1));
  const requests = s.requests.length;
  tabB.window.dispatchEvent(new Event("online"));
  tabC.window.dispatchEvent(new Event("online"));
  await until(() => s.requests.length >= requests + 1);
  await tick(100);
  const resent = s.requests.slice(requests).flatMap((r) => r.ids);
  assert.deepEqual(resent.sort(), ids.slice().sort(), "each stored message adopted by exactly one tab");
  assert.ok(stored(storage).every((e) => e.o === b.tabId) || stored(storage).every((e) => e.o === c.tabId));
  assert.equal(storage.getItem(`nsa:tab:${a.tabId}`), null, "the crashed tab's heartbeat was left behind");
  assert.ok(storage.getItem(`nsa:tab:${b.tabId}`) && storage.getItem(`nsa:tab:${c.tabId}`));
});

test("two tabs opening at once adopt a left page's messages once, though each reads localStorage late", async () => {
  let down = true;
  const s = await srv((n, req, res) => down && answer(500)(n, req, res));
  const storage = new Storage();
  openTab({ storage });
  const a = client({ host: s.url, maxRetries: 0 });
  const ids = [a.track("a1"), a.track("a2")];
  await a.flush(); // the service is down: stored, owned by tab A
  a.destroy(); // the page is left: its heartbeat goes
  down = false;
  const before = s.requests.length;
  const sent = () => s.requests.slice(before).flatMap((r) => r.ids);

  // B and C open together (a Web Lock orders their claims), but C's copy of localStorage does not
  // yet hold B's claim when C claims: still owned by the left tab A there
  const locks = new Locks();
  const views = [new LaggingView(storage), new LaggingView(storage)];
  const [b, c] = views.map((view) => {
    openTab({ storage: view, navigatorExtra: { locks } });
    return client({ host: s.url });
  });
  await until(() => sent().length >= ids.length);
  await tick(100);
  assert.deepEqual(sent().sort(), ids.slice().sort(), "each stored message adopted by exactly one tab");
  assert.equal(b.pending + c.pending, 0);
  assert.deepEqual(stored(storage), []);
});

test("a message is never kept past the service's de-duplication window", async () => {
  assert.equal(DEDUPE_WINDOW_MS, 24 * 3600 * 1000);
  const s = await srv();
  const storage = new Storage();
  openTab({ storage });
  const old = { messageId: "5f0b1c2a-0000-4000-8000-000000000001", type: "track", event: "old", timestamp: new Date().toISOString() };
  const fresh = { ...old, messageId: "5f0b1c2a-0000-4000-8000-000000000002", event: "fresh" };
  storage.setItem(`nsa:q:wk_unit:${old.messageId}`, JSON.stringify({ o: "gone", t: Date.now() - DEDUPE_WINDOW_MS - 1, m: old }));
  storage.setItem(`nsa:q:wk_unit:${fresh.messageId}`, JSON.stringify({ o: "gone", t: Date.now() - 3600_000, m: fresh }));
  const c = client({ host: s.url });
  await until(() => s.requests.length === 1);
  assert.deepEqual(s.ids(), [fresh.messageId]);
  assert.match(c.errors[0].message, /older than the service's de-duplication window/);
  assert.equal(c.errors[0].messages[0].messageId, old.messageId);
  await until(() => stored(storage).length === 0);

  const failing = await srv(answer(500));
  const d = client({ host: failing.url, maxMessageAge: 300, timeout: 100, maxRetries: 1000 });
  d.track("retried");
  assert.equal(await d.flush(), false);
  // none later than maxMessageAge - timeout (200 ms) after queueing, plus slack for a loaded machine
  assert.ok(failing.requests.at(-1).at - failing.requests[0].at <= 600 && failing.requests.length < 20);
  assert.match(d.errors[0].message, /older than 300 ms dropped unsent/);
  assert.equal(stored(storage).length, 0);
});

test("anonymous id: shared key with the beacon, kept from the old key, setAnonymousId, reset; sessions", () => {
  const storage = new Storage();
  storage.setItem("nsa:anonymous_id", "legacy-id");
  openTab({ storage });
  const c = client({ host: "http://127.0.0.1:1" });
  assert.equal(c.anonymousId(), "legacy-id");
  assert.equal(storage.getItem(ANONYMOUS_ID_KEY), "legacy-id");
  c.setAnonymousId("from-server");
  assert.equal(storage.getItem("nsa_anonymous_id"), "from-server");
  c.identify("u1");
  c.register({ plan: "pro" });
  const session = c.sessionId();
  assert.equal(c.sessionId(), session);
  storage.setItem("nsa:session", `${session}|${Date.now() - SESSION_TIMEOUT_MS - 1}`);
  const next = c.sessionId();
  assert.notEqual(next, session);
  c.reset();
  assert.equal(c.userId(), null);
  assert.match(c.anonymousId(), UUID4);
  assert.notEqual(c.sessionId(), next);
  c.track("after");
  assert.deepEqual(c.queue.at(-1).message.properties, {});
});

test("register() default properties persist; beforeSend changes or drops", async () => {
  const s = await srv();
  const storage = new Storage();
  openTab({ storage });
  const c = client({ host: s.url, beforeSend: (m) => (m.event === "secret" ? null : { ...m, properties: { ...m.properties, hooked: true } }) });
  c.register({ env: "prod", plan: "free" });
  c.track("a", { plan: "pro" });
  c.track("secret");
  c.unregister("env");
  const again = client({ host: s.url }); // the next page load
  again.track("b");
  await c.flush();
  await again.flush();
  const [a, b] = s.requests.flatMap((r) => r.body.batch);
  assert.deepEqual(a.properties, { env: "prod", plan: "pro", hooked: true });
  assert.deepEqual(b.properties, { plan: "free" });
  assert.equal(s.ids().length, 2);
  const t = client({ host: s.url, beforeSend: () => { throw new Error("hook bug"); } });
  assert.equal(t.track("x"), undefined);
  assert.match(t.errors[0].message, /beforeSend threw: hook bug/);
});

test("opt-out persists across page loads; Do Not Track and Global Privacy Control are honoured when asked", async () => {
  const s = await srv();
  const storage = new Storage();
  openTab({ storage });
  const c = client({ host: s.url, flushAt: 100 });
  c.track("queued");
  c.optOut();
  assert.equal(c.pending, 0);
  assert.equal(stored(storage).length, 0);
  assert.equal(c.track("no"), undefined);
  const reloaded = client({ host: s.url });
  assert.equal(reloaded.hasOptedOut(), true);
  assert.equal(reloaded.track("no"), undefined);
  reloaded.optIn();
  assert.ok(reloaded.track("yes"));

  openTab({ storage: new Storage(), navigatorExtra: { doNotTrack: "1", globalPrivacyControl: true } });
  assert.ok(client({ host: s.url }).track("ignored signals"));
  assert.equal(client({ host: s.url, respectDoNotTrack: true }).track("dnt"), undefined);
  assert.equal(client({ host: s.url, respectGlobalPrivacyControl: true }).track("gpc"), undefined);
  assert.deepEqual(clients.flatMap((x) => x.errors), []);
});

test("memory-only mode writes nothing to localStorage", async () => {
  const s = await srv();
  const storage = new Storage();
  const tab = openTab({ storage });
  const c = client({ host: s.url, persistence: "memory", flushAt: 100 });
  c.identify("u1");
  c.register({ a: 1 });
  c.track("e");
  c.optOut();
  c.optIn();
  c.track("f");
  tab.leave();
  assert.equal(storage.writes, 0);
  assert.equal(storage.length, 0);
  assert.deepEqual(beacons[0].body.batch.map((m) => m.event), ["f"]); // optOut() discarded the queued ones
});

test("the async snippet's buffered calls are replayed once the script loads", async () => {
  const s = await srv();
  const tab = openTab({ storage: new Storage() });
  // what the README's snippet leaves before the script arrives
  const stub = [];
  stub._writeKey = "wk_unit";
  stub._options = { host: s.url, flushAt: 2 };
  stub.push(["identify", "u9", { plan: "pro" }], ["track", "early", { n: 1 }], ["nonexistent"], ["_private"]);
  tab.window.nselfAnalytics = stub;
  await import("../src/browser.js");
  const client = tab.window.nselfAnalytics;
  clients.push(client);
  assert.ok(client instanceof Analytics);
  assert.equal(tab.window.NselfAnalytics, Analytics);
  await until(() => s.requests.length === 1);
  assert.deepEqual(s.requests[0].body.batch.map((m) => [m.type, m.userId]), [["identify", "u9"], ["track", "u9"]]);
});
