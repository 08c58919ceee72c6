// Tests against the real running service, through the fault-injecting proxy of the Python test
// harness (tests/test_sdk_typescript.py runs them). Each case writes what it sent to
// $NSELF_ANALYTICS_OUT/<case>.json; the harness then checks Postgres: every message stored once.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Analytics, DEDUPE_WINDOW_MS } from "../dist/esm/index.js";

function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run the live tests through tests/test_sdk_typescript.py`);
  return value;
}

async function runLive(caseName, mode, tracks, everything) {
  const key = `${env("NSELF_ANALYTICS_RUN")}-ts-${caseName}`;
  const errors = [];
  const analytics = new Analytics({
    writeKey: env("NSELF_ANALYTICS_WRITE_KEY"),
    host: `${env("NSELF_ANALYTICS_PROXY")}/fault/${mode}/${key}`,
    flushAt: 3,
    flushInterval: 200,
    maxRetries: 5,
    onError: (e) => errors.push(e),
  });
  const manifest = { case: caseName, mode, key, event: `ts_sdk_${key}`, user_id: `user-${key}`, ids: { track: [] } };
  for (let i = 0; i < tracks; i++) {
    manifest.ids.track.push(analytics.track({ userId: manifest.user_id, event: manifest.event, properties: { n: i, case: caseName } }));
  }
  if (everything) {
    manifest.traits = { plan: "pro", sdk: "typescript", case: caseName };
    manifest.ids.identify = [analytics.identify({ userId: manifest.user_id, traits: manifest.traits })];
    manifest.ids.page = [analytics.page({ userId: manifest.user_id, name: "Pricing",
      properties: { url: "https://example.com/pricing", path: "/pricing" } })];
    manifest.ids.extra = [
      analytics.screen({ userId: manifest.user_id, name: "Settings", properties: { tab: "billing" } }),
      analytics.group({ userId: manifest.user_id, groupId: `team-${key}`, traits: { plan: "team" } }),
      analytics.alias({ userId: manifest.user_id, previousId: `anon-${key}` }),
    ];
  }
  const result = await analytics.close({ timeout: 20_000 });
  assert.deepEqual(errors, []);
  assert.deepEqual([result.ok, result.unsent], [true, []]);
  manifest.failed = errors.length;
  writeFileSync(join(env("NSELF_ANALYTICS_OUT"), `${caseName}.json`), JSON.stringify(manifest, null, 2));
}

test("live: delivery of track, identify and page", () => runLive("ok", "ok", 7, true));
test("live: a 503 with Retry-After is retried", () => runLive("503", "503", 4, false));
test("live: a dropped connection is retried", () => runLive("drop", "drop", 4, false));
test("live: a lost answer is retried and stored once", () => runLive("drop-after", "drop-after", 4, false));

test("live: the SDK keeps messages no longer than the service's dedupe window", async () => {
  const response = await fetch(`${env("NSELF_ANALYTICS_PROXY")}/analytics/openapi.json`);
  assert.equal(response.status, 200);
  const seconds = (await response.json()).info["x-dedupe-window-seconds"];
  assert.equal(typeof seconds, "number");
  assert.equal(DEDUPE_WINDOW_MS, seconds * 1000);
});
