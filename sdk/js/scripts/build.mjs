// Builds the script-tag (IIFE) bundle exposing window.NselfAnalytics from src/: the service serves
// it at /analytics/sdk/analytics.js from nself_analytics/static/sdk/analytics.js (committed, so the
// service needs no Node.js), and dist/analytics.min.js is the same file for the npm package.
// `node scripts/build.mjs --check` fails when the committed file differs from a fresh build.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const served = new URL("../../../nself_analytics/static/sdk/analytics.js", import.meta.url);
const dist = new URL("../dist/analytics.min.js", import.meta.url);
const result = await build({
  entryPoints: [new URL("../src/browser.js", import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2018", "chrome64", "firefox67", "safari12"],
  legalComments: "none",
  banner: { js: "/* @nself/analytics-js - MIT */" },
  write: false,
});
const code = result.outputFiles[0].text;

if (process.argv.includes("--check")) {
  let committed = "";
  try {
    committed = readFileSync(served, "utf8");
  } catch {
    // missing counts as stale
  }
  if (committed !== code) {
    console.error("nself_analytics/static/sdk/analytics.js is stale: run `npm run build` in sdk/js and commit it");
    process.exit(1);
  }
  console.log(`nself_analytics/static/sdk/analytics.js is up to date (${code.length} bytes)`);
} else {
  for (const out of [served, dist]) {
    mkdirSync(new URL("./", out), { recursive: true });
    writeFileSync(out, code);
  }
  console.log(`wrote nself_analytics/static/sdk/analytics.js and dist/analytics.min.js (${code.length} bytes)`);
}
