// Entry of the script-tag build (served by the service at /analytics/sdk/analytics.js): exposes
// window.NselfAnalytics, the class.
//
//   <script src="https://analytics.example.com/analytics/sdk/analytics.js"></script>
//   <script>const analytics = new NselfAnalytics({ writeKey: "wk_...", host: "https://analytics.example.com" });</script>
//
// or, with no code: <script src=".../analytics/sdk/analytics.js" data-write-key="wk_..." data-host="https://...">
// creates window.nselfAnalytics and records a page view (data-page="false" to skip it).
//
// or the async snippet of the README: window.nselfAnalytics is first an array recording calls; once
// this script has loaded, it becomes the client and the recorded calls are replayed in order.
import { Analytics, VERSION, uuid } from "./analytics.js";

Analytics.Analytics = Analytics;
Analytics.VERSION = VERSION;
Analytics.uuid = uuid;
window.NselfAnalytics = Analytics;

const stub = window.nselfAnalytics;
if (Array.isArray(stub)) {
  // the async snippet: stub.load(writeKey, options) recorded the configuration
  const client = new Analytics({ ...(stub._options || {}), writeKey: stub._writeKey });
  window.nselfAnalytics = client;
  for (const call of stub) {
    const [method, ...args] = Array.isArray(call) ? call : [];
    if (typeof method === "string" && method[0] !== "_" && typeof client[method] === "function") {
      try {
        client[method](...args);
      } catch {
        // the SDK reports its own problems; nothing may stop the replay
      }
    }
  }
} else {
  const script = document.currentScript;
  const writeKey = script && script.getAttribute("data-write-key");
  if (writeKey && !window.nselfAnalytics) {
    let host = script.getAttribute("data-host") || undefined;
    // served by the service itself: its base URL is where the script came from
    const served = script.src && /^(https?:\/\/.+)\/analytics\/sdk\/analytics\.js(?:[?#].*)?$/.exec(script.src);
    if (!host && served) host = served[1];
    window.nselfAnalytics = new Analytics({ writeKey, host });
    if (script.getAttribute("data-page") !== "false") window.nselfAnalytics.page();
  }
}
