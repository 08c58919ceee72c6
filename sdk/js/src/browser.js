// Entry of the script-tag build (dist/analytics.min.js): exposes window.NselfAnalytics, the class.
//
//   <script src="analytics.min.js"></script>
//   <script>const analytics = new NselfAnalytics({ writeKey: "wk_...", host: "https://analytics.example.com" });</script>
//
// or, with no code: <script src="analytics.min.js" data-write-key="wk_..." data-host="https://..."></script>
// creates window.nselfAnalytics and records a page view (data-page="false" to skip it).
import { Analytics, VERSION, uuid } from "./analytics.js";

Analytics.Analytics = Analytics;
Analytics.VERSION = VERSION;
Analytics.uuid = uuid;
window.NselfAnalytics = Analytics;

const script = document.currentScript;
const writeKey = script && script.getAttribute("data-write-key");
if (writeKey && !window.nselfAnalytics) {
  window.nselfAnalytics = new Analytics({ writeKey, host: script.getAttribute("data-host") || undefined });
  if (script.getAttribute("data-page") !== "false") window.nselfAnalytics.page();
}
