// Unit tests of the compiled SDK (dist/) against a real local HTTP server (node --test).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";

import Analytics, {
  Analytics as Named,
  DEDUPE_WINDOW_MS,
  DeliveryError,
  LIBRARY_NAME,
  MAX_BATCH_BYTES,
  MAX_BATCH_MESSAGES,
  VERSION,
  backoff,
  parseRetryAfter,
} from "../dist/esm/index.js";

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const clients = [];
after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
});

/** A real server recording requests; answer(n, req, res) may answer itself and return true. */
async function server(answer) {
  const requests = [];
  const srv = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const rec = { at: Date.now(), url: req.url, headers: req.headers, size: raw.length, body: JSON.parse(raw) };
      rec.ids = rec.body.batch.map((m) => m.messageId);
      const n = requests.push(rec) - 1;
      if (answer && answer(n, req, res)) return;
      res.writeHead(202, { "Content-Type": "application/json" });
      res.end('{"status":"success"}');
    });
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  after(() => new Promise((resolve) => srv.close(resolve)));
  return { url: `http://127.0.0.1:${srv.address().port}`, requests, srv };
}

function client(options) {
  const errors = [];
  const c = new Analytics({ writeKey: "wk_unit", onError: (e) => errors.push(e), ...options });
  c.errors = errors;
  clients.push(c);
  return c;
}

async function until(predicate, timeout = 3000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("batches by count, with Segment field names, auth and context.library", async () => {
  const s = await server();
  const c = client({ host: s.url, flushAt: 3, flushInterval: 3_600_000 });
  const trackId = c.track({ userId: "u1", event: "signup", properties: { plan: "pro" } });
  c.identify({ userId: "u1", traits: { email: "a@example.com" } });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(s.requests.length, 0, "sent before flushAt was reached");
  c.page({ anonymousId: "anon-1", name: "Pricing", properties: { path: "/pricing" } });
  await until(() => s.requests.length === 1);
  const req = s.requests[0];
  assert.equal(req.url, "/analytics/batch");
  assert.equal(req.headers.authorization, "Bearer wk_unit");
  assert.equal(req.headers["content-type"], "application/json");
  assert.match(req.headers["user-agent"], /^@nself\/analytics-node\//);
  assert.ok(!Number.isNaN(Date.parse(req.body.sentAt)));
  const [track, identify, page] = req.body.batch;
  assert.equal(track.messageId, trackId);
  for (const m of req.body.batch) {
    assert.match(m.messageId, UUID4);
    assert.ok(Math.abs(Date.now() - Date.parse(m.timestamp)) < 60_000);
    assert.deepEqual(m.context.library, { name: LIBRARY_NAME, version: VERSION });
  }
  assert.deepEqual([track.type, track.event, track.userId, track.properties], ["track", "signup", "u1", { plan: "pro" }]);
  assert.deepEqual([identify.type, identify.userId, identify.traits], ["identify", "u1", { email: "a@example.com" }]);
  assert.deepEqual([page.type, page.anonymousId, page.name, page.userId], ["page", "anon-1", "Pricing", undefined]);
});

test("the interval sends a partial batch", async () => {
  const s = await server();
  const c = client({ host: s.url, flushAt: 50, flushInterval: 100 });
  const start = Date.now();
  c.track({ anonymousId: "a", event: "tick" });
  await until(() => s.requests.length === 1);
  assert.equal(s.requests[0].body.batch.length, 1);
  assert.ok(Date.now() - start >= 50);
});

test("caller-given messageId and timestamp are kept", async () => {
  const s = await server();
  const c = client({ host: s.url });
  const id = c.track({ userId: "u", event: "e", messageId: "my-id", timestamp: new Date("2025-01-06T12:30:00+01:00"),
    context: { library: "mine", ip: "1.2.3.4" } });
  assert.equal(id, "my-id");
  await c.flush();
  const m = s.requests[0].body.batch[0];
  assert.equal(m.timestamp, "2025-01-06T11:30:00.000Z");
  assert.deepEqual(m.context, { library: "mine", ip: "1.2.3.4" });
});

test("flush and close deliver everything; after close calls are dropped with a report", async () => {
  const s = await server();
  const c = client({ host: s.url, flushAt: 100, flushInterval: 3_600_000 });
  for (let i = 0; i < 5; i++) c.track({ userId: "u", event: "a" });
  assert.equal(c.pending, 5);
  assert.deepEqual(await c.flush(), { ok: true, timedOut: false, unsent: [], errors: [] });
  assert.equal(s.requests.length, 1);
  await c.flush(); // nothing queued: no request
  assert.equal(s.requests.length, 1);
  for (let i = 0; i < 3; i++) c.track({ userId: "u", event: "b" });
  const closed = await c.close();
  assert.equal(closed.ok, true);
  assert.equal(s.requests.length, 2);
  assert.equal(s.requests[1].body.batch.length, 3);
  assert.equal(c.errors.length, 0);
  assert.equal(c.track({ userId: "u", event: "late" }), undefined);
  assert.equal(c.errors.length, 1);
  assert.match(c.errors[0].message, /after close/);
  assert.equal(await c.close(), closed); // idempotent
  assert.equal(s.requests.length, 2);
});

test("5xx is retried with the same message ids", async () => {
  const s = await server((n, req, res) => {
    if (n < 2) {
      res.writeHead(500);
      res.end();
      return true;
    }
    return false;
  });
  const c = client({ host: s.url, minRetryDelay: 10 });
  c.track({ userId: "u", event: "a" });
  c.track({ userId: "u", event: "b" });
  await c.flush();
  assert.equal(s.requests.length, 3);
  for (const r of s.requests) assert.deepEqual(r.ids, s.requests[0].ids);
  assert.equal(c.errors.length, 0);
});

test("Retry-After of a 503 sets the wait", async () => {
  const s = await server((n, req, res) => {
    if (n === 0) {
      res.writeHead(503, { "Retry-After": "1", "Content-Type": "application/json" });
      res.end('{"status":"error","message":"Ingest queue is full; retry later"}');
      return true;
    }
    return false;
  });
  const c = client({ host: s.url, minRetryDelay: 1, maxRetryDelay: 5 });
  c.track({ userId: "u", event: "a" });
  await c.flush();
  assert.equal(s.requests.length, 2);
  const gap = s.requests[1].at - s.requests[0].at;
  assert.ok(gap >= 950 && gap < 3000, `retried ${gap} ms after Retry-After: 1`);
});

test("429 is retried; retries are bounded and the failure reported", async () => {
  const s = await server((n, req, res) => {
    res.writeHead(n === 0 ? 429 : 502);
    res.end();
    return true;
  });
  const c = client({ host: s.url, maxRetries: 2, minRetryDelay: 1 });
  c.track({ userId: "u", event: "a" });
  const result = await c.flush();
  assert.equal(result.ok, false);
  assert.ok(result.errors[0] instanceof DeliveryError && result.errors[0].status === 502);
  assert.match(result.errors[0].message, /giving up after 3/);
  assert.equal(s.requests.length, 3);
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0].messages[0].event, "a");
});

test("4xx is not retried", async () => {
  const s = await server((n, req, res) => {
    res.writeHead(401, { "Content-Type": "application/json" });
    res.end('{"status":"error","message":"Invalid write key"}');
    return true;
  });
  const c = client({ host: s.url, minRetryDelay: 1 });
  c.track({ userId: "u", event: "a" });
  const { errors } = await c.flush();
  assert.deepEqual(errors.map((e) => [e.status, e.message]), [[401, "service answered 401: Invalid write key"]]);
  assert.equal(s.requests.length, 1);
});

test("a 400 naming one message drops it and resends the rest", async () => {
  const s = await server((n, req, res) => {
    if (n === 0) {
      res.writeHead(400, { "Content-Type": "application/json" });
      res.end('{"status":"error","message":"batch[1]: event is longer than 200 characters","index":1}');
      return true;
    }
    return false;
  });
  const c = client({ host: s.url, flushAt: 10 });
  for (const event of ["a", "b".repeat(300), "c"]) c.track({ userId: "u", event });
  const { errors } = await c.flush();
  assert.ok(errors.length === 1 && errors[0].status === 400 && errors[0].index === 1);
  assert.equal(s.requests.length, 2);
  assert.deepEqual(s.requests[1].body.batch.map((m) => m.event), ["a", "c"]);
  assert.deepEqual(s.requests[1].ids, [s.requests[0].ids[0], s.requests[0].ids[2]]);
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0].messages[0].event.length, 300);
});

test("a dropped connection is retried with the same ids", async () => {
  const s = await server((n, req, res) => {
    if (n === 0) {
      req.socket.destroy();
      return true;
    }
    return false;
  });
  const c = client({ host: s.url, minRetryDelay: 10 });
  c.track({ userId: "u", event: "a" });
  await c.flush();
  assert.equal(s.requests.length, 2);
  assert.deepEqual(s.requests[1].ids, s.requests[0].ids);
});

test("a request that times out is retried", async () => {
  const s = await server((n, req, res) => n === 0); // the first request never gets an answer
  const c = client({ host: s.url, timeout: 200, minRetryDelay: 10 });
  c.track({ userId: "u", event: "a" });
  await c.flush();
  assert.equal(s.requests.length, 2);
  assert.deepEqual(s.requests[1].ids, s.requests[0].ids);
  s.srv.closeAllConnections();
});

test("an unreachable service: retries then a DeliveryError", async () => {
  const s = await server();
  await new Promise((resolve) => s.srv.close(resolve));
  const c = client({ host: s.url, maxRetries: 2, minRetryDelay: 1 });
  c.track({ userId: "u", event: "a" });
  const { errors } = await c.flush();
  assert.ok(errors[0] instanceof DeliveryError && errors[0].status === undefined);
  assert.match(errors[0].message, /giving up after 3 attempts: request failed/);
});

test("batches are split at 100 messages and 500 KB", async () => {
  const s = await server();
  const c = client({ host: s.url, flushAt: 100, flushInterval: 3_600_000 });
  for (let i = 0; i < 250; i++) c.track({ userId: "u", event: "small" });
  await c.flush();
  const big = "x".repeat(60_000);
  for (let i = 0; i < 20; i++) c.track({ userId: "u", event: "big", properties: { blob: big } });
  await c.flush();
  let total = 0;
  for (const r of s.requests) {
    assert.ok(r.body.batch.length <= MAX_BATCH_MESSAGES && r.size <= MAX_BATCH_BYTES, `${r.body.batch.length} messages, ${r.size} bytes`);
    total += r.body.batch.length;
  }
  assert.equal(total, 270);
  assert.ok(s.requests.length >= 6);
  assert.equal(c.track({ userId: "u", event: "huge", properties: { blob: "y".repeat(MAX_BATCH_BYTES) } }), undefined);
  assert.match(c.errors.at(-1).message, /exceeds/);
});

test("invalid calls are reported and dropped, never thrown; invalid options throw", () => {
  const c = client({ host: "http://127.0.0.1:1" });
  const invalid = [
    [() => c.track({ userId: "u" }), /event/],
    [() => c.track({ event: "e" }), /userId or an anonymousId/],
    [() => c.track("signup", "abc"), /needs an object/],
    [() => c.track({ userId: "u", event: "e", properties: "abc" }), /properties must be an object/],
    [() => c.track({ userId: "u", event: "e", properties: ["a"] }), /properties must be an object/],
    [() => c.identify({ anonymousId: "a" }), /userId/],
    [() => c.page({}), /userId or an anonymousId/],
    [() => c.screen({ userId: "u", name: 3 }), /name/],
    [() => c.group({ userId: "u" }), /groupId/],
    [() => c.alias({ userId: "u" }), /previousId/],
    [() => c.track(), /needs an object/],
    [() => c.track({ userId: "u", event: "e", timestamp: "yesterday" }), /timestamp/],
    [() => c.track({ userId: "u", event: "e", properties: { n: 1n } }), /encoded/],
  ];
  for (const [call, reason] of invalid) {
    const before = c.errors.length;
    assert.equal(call(), undefined);
    assert.equal(c.errors.length, before + 1);
    assert.match(c.errors.at(-1).message, reason);
  }
  assert.equal(c.pending, 0);
  assert.throws(() => new Analytics({ host: "http://x" }), /writeKey/);
  assert.throws(() => new Analytics({ writeKey: "k", host: "localhost:3206" }), /http/);
  assert.throws(() => new Analytics({ writeKey: "k", flushAt: -1 }), /flushAt/);
});

test("a full queue drops new messages and reports them", async () => {
  const c = client({ host: "http://127.0.0.1:1", flushAt: 100, flushInterval: 3_600_000, maxQueueSize: 2, maxRetries: 0 });
  c.track({ userId: "u", event: "1" });
  c.track({ userId: "u", event: "2" });
  c.track({ userId: "u", event: "3" });
  assert.equal(c.pending, 2);
  assert.equal(c.errors.length, 1);
  assert.match(c.errors[0].message, /queue is full/);
  assert.equal(c.errors[0].messages[0].event, "3");
});

test("a host path prefix is kept", async () => {
  const s = await server();
  const c = client({ host: `${s.url}/behind/proxy/` });
  c.track({ userId: "u", event: "a" });
  await c.flush();
  assert.equal(s.requests[0].url, "/behind/proxy/analytics/batch");
});

test("messages queued during a flush are delivered, each once", async () => {
  const s = await server();
  const c = client({ host: s.url, flushAt: 7, flushInterval: 20 });
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 20; i++) c.track({ userId: "u", event: "c" });
    if (round % 5 === 0) await c.flush();
    await new Promise((r) => setImmediate(r));
  }
  await c.close();
  const ids = s.requests.flatMap((r) => r.ids);
  assert.equal(ids.length, 400);
  assert.equal(new Set(ids).size, 400);
});

test("Retry-After parsing and backoff bounds", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("1", now), 1000);
  assert.equal(parseRetryAfter(" 2.5 ", now), 2500);
  assert.equal(parseRetryAfter("86400", now), 300_000);
  assert.equal(parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Tue, 31 Dec 2024 00:00:00 GMT", now), 0);
  for (const bad of [null, "", "-3", "soon"]) assert.equal(parseRetryAfter(bad, now), undefined);
  for (let attempt = 0; attempt < 50; attempt++) {
    const want = Math.min(2000, 100 * 2 ** attempt);
    const seen = new Set();
    for (let i = 0; i < 20; i++) {
      const d = backoff(attempt, 100, 2000);
      assert.ok(d >= want / 2 && d <= want, `backoff(${attempt}) = ${d}`);
      seen.add(d);
    }
    assert.ok(seen.size > 1, "no jitter");
  }
});

test("the package loads as ESM and as CommonJS", () => {
  assert.equal(Analytics, Named);
  const require = createRequire(import.meta.url);
  const cjs = require("../dist/cjs/index.js");
  assert.equal(typeof cjs.Analytics, "function");
  assert.equal(cjs.default, cjs.Analytics);
  assert.equal(cjs.VERSION, VERSION);
});

// --- never break the host application; bounded shutdown ------------------------------------------

const execFileP = promisify(execFile);
const INDEX = new URL("../dist/esm/index.js", import.meta.url).href;

/** Run `code` (an ES module importing the SDK as `Analytics`) in a child Node process. */
async function child(code, { timeout = 20_000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "nsa-node-"));
  const file = join(dir, "app.mjs");
  writeFileSync(file, `import { Analytics } from ${JSON.stringify(INDEX)};\n${code}`);
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [file], { timeout });
    return { code: 0, stdout, stderr };
  } catch (error) {
    if (error.killed) throw new Error(`the child process did not end within ${timeout} ms`);
    return { code: error.code, signal: error.signal, stdout: error.stdout, stderr: error.stderr };
  }
}

const answer401 = (n, req, res) => {
  res.writeHead(401, { "Content-Type": "application/json" });
  res.end('{"status":"error","message":"Invalid write key"}');
  return true;
};

test("done-when: a script tracking against a server answering 401, awaiting nothing, exits 0", async () => {
  const s = await server(answer401);
  const run = await child(`
    const a = new Analytics({ writeKey: "wk_bad", host: ${JSON.stringify(s.url)} });
    a.track({ userId: "u", event: "signup" });
    a.flush();
  `);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(s.requests.length, 1);
  assert.match(run.stderr, /service answered 401: Invalid write key/); // the default onError
});

test("close() from a SIGTERM handler against a 401 server: the process ends with exit 0", async () => {
  const s = await server(answer401);
  const run = await child(`
    const a = new Analytics({ writeKey: "wk_bad", host: ${JSON.stringify(s.url)}, flushAt: 100,
                              onError: (e) => { throw new Error("a throwing onError: " + e.message); } });
    process.on("SIGTERM", () => { a.close(); });
    a.track({ userId: "u", event: "x" });
    a.page({ userId: "u", name: "Home" });
    setTimeout(() => process.kill(process.pid, "SIGTERM"), 50);
    setTimeout(() => {}, 300); // the app's own work
  `);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(s.requests.length, 1);
  assert.equal(s.requests[0].body.batch.length, 2);
});

test("an onError that throws neither reaches track() nor stops delivery", async () => {
  let calls = 0;
  const s = await server();
  const c = client({ host: s.url, onError: () => { calls++; throw new Error("boom"); } });
  assert.equal(c.track({ userId: "u" }), undefined);
  assert.equal(calls, 1);
  c.track({ userId: "u", event: "fine" });
  assert.equal((await c.flush()).ok, true);
  assert.equal(s.requests.length, 1);
});

test("close({ timeout }) with a 503 and Retry-After: 300 returns in time and reports what is unsent", async () => {
  const s = await server((n, req, res) => {
    res.writeHead(503, { "Retry-After": "300" });
    res.end();
    return true;
  });
  const c = client({ host: s.url });
  const ids = [c.track({ userId: "u", event: "a" }), c.track({ userId: "u", event: "b" })];
  const started = Date.now();
  const result = await c.close({ timeout: 500 });
  const took = Date.now() - started;
  // the deadline, not the 300 s wait (generous upper bound: CI machines are shared)
  assert.ok(took >= 450 && took < 5000, `close took ${took} ms`);
  assert.equal(result.timedOut, true);
  assert.equal(result.ok, false);
  assert.deepEqual(result.unsent.map((m) => m.messageId), ids);
  assert.equal(c.errors.length, 1);
  assert.match(c.errors[0].message, /close timed out: 2 message/);
  assert.equal(c.pending, 0);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.requests.length, 1, "no retry after close gave up");
});

test("flush({ timeout }) against a hanging server returns in time; the messages stay queued and get delivered", async () => {
  let hang = true;
  const s = await server((n) => hang);
  const c = client({ host: s.url, timeout: 400, minRetryDelay: 10, maxRetryDelay: 20 });
  const id = c.track({ userId: "u", event: "slow" });
  const started = Date.now();
  const result = await c.flush({ timeout: 200 });
  assert.ok(Date.now() - started < 5000);
  assert.equal(result.timedOut, true);
  assert.deepEqual(result.unsent.map((m) => m.messageId), [id]);
  assert.equal(c.errors.length, 0);
  assert.equal(c.pending, 1);
  hang = false;
  assert.equal((await c.flush({ timeout: 5000 })).ok, true);
  assert.ok(s.requests.length >= 2 && s.requests.every((r) => r.ids[0] === id));
  s.srv.closeAllConnections();
});

test("a message is never retried past maxMessageAge (capped at the service's dedupe window)", async () => {
  assert.equal(DEDUPE_WINDOW_MS, 24 * 3600 * 1000);
  const s = await server((n, req, res) => {
    res.writeHead(500);
    res.end();
    return true;
  });
  const c = client({ host: s.url, maxMessageAge: 300, timeout: 100, minRetryDelay: 50, maxRetryDelay: 50, maxRetries: 1000 });
  c.track({ userId: "u", event: "old" });
  const result = await c.flush({ timeout: 3000 });
  assert.equal(result.timedOut, false);
  assert.match(result.errors[0].message, /older than 300 ms dropped unsent/);
  const last = s.requests.at(-1).at - s.requests[0].at;
  // no attempt starts later than maxMessageAge - timeout (200 ms) after queueing; slack for a loaded machine
  assert.ok(last <= 600, `an attempt ${last} ms after the first`);
  assert.ok(s.requests.length < 20, `${s.requests.length} attempts`);
  assert.throws(() => new Analytics({ writeKey: "k", maxMessageAge: -1 }), /maxMessageAge/);
});

// --- the whole spec ---------------------------------------------------------------------------------

test("screen, group and alias carry Segment's field names", async () => {
  const s = await server();
  const c = client({ host: s.url });
  c.screen({ userId: "u", name: "Settings", properties: { tab: "billing" } });
  c.group({ userId: "u", groupId: "acme", traits: { plan: "team" } });
  c.alias({ userId: "u", previousId: "anon-1" });
  await c.flush();
  const [screen, group, alias] = s.requests[0].body.batch;
  assert.deepEqual([screen.type, screen.name, screen.properties], ["screen", "Settings", { tab: "billing" }]);
  assert.deepEqual([group.type, group.groupId, group.traits, group.userId], ["group", "acme", { plan: "team" }, "u"]);
  assert.deepEqual([alias.type, alias.userId, alias.previousId], ["alias", "u", "anon-1"]);
});

test("register() adds default properties; beforeSend changes or drops messages", async () => {
  const s = await server();
  const c = client({
    host: s.url,
    beforeSend: (m) => (m.event === "secret" ? null : { ...m, context: { ...m.context, app: "test" } }),
  });
  c.register({ env: "prod", plan: "free" });
  c.track({ userId: "u", event: "a", properties: { plan: "pro" } });
  c.track({ userId: "u", event: "secret" });
  c.unregister("env");
  c.page({ userId: "u" });
  c.identify({ userId: "u", traits: { name: "x" } });
  await c.flush();
  const [a, page, identify, ...rest] = s.requests[0].body.batch;
  assert.deepEqual(rest, []);
  assert.deepEqual(a.properties, { env: "prod", plan: "pro" });
  assert.equal(a.context.app, "test");
  assert.deepEqual(page.properties, { plan: "free" });
  assert.deepEqual(identify.traits, { name: "x" });
  assert.deepEqual(c.errors, []);
  const t = client({ host: s.url, beforeSend: () => { throw new Error("hook bug"); } });
  assert.equal(t.track({ userId: "u", event: "a" }), undefined);
  assert.match(t.errors[0].message, /beforeSend threw: hook bug/);
});

test("optOut() and the disabled option drop calls silently until optIn()", async () => {
  const s = await server();
  const c = client({ host: s.url, disabled: true });
  assert.equal(c.isOptedOut, true);
  assert.equal(c.track({ userId: "u", event: "no" }), undefined);
  c.optIn();
  const id = c.track({ userId: "u", event: "yes" });
  c.optOut();
  c.track({ userId: "u", event: "no" });
  await c.flush();
  assert.deepEqual(s.requests.flatMap((r) => r.ids), [id]);
  assert.deepEqual(c.errors, []);
});
