// Builds dist/analytics.min.js, the script-tag (IIFE) build exposing window.NselfAnalytics, from src/.
// `node scripts/build.mjs --check` fails when the committed file differs from a fresh build.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { build } from "esbuild";

const out = new URL("../dist/analytics.min.js", import.meta.url);
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
    committed = readFileSync(out, "utf8");
  } catch {
    // missing counts as stale
  }
  if (committed !== code) {
    console.error("dist/analytics.min.js is stale: run `npm run build` in sdk/js and commit it");
    process.exit(1);
  }
  console.log(`dist/analytics.min.js is up to date (${code.length} bytes)`);
} else {
  mkdirSync(new URL("../dist/", import.meta.url), { recursive: true });
  writeFileSync(out, code);
  console.log(`wrote dist/analytics.min.js (${code.length} bytes)`);
}
