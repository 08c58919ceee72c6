/** What the browser SDK knows about the page it runs in; every function is safe without a DOM. */

const UTM = { utm_source: "source", utm_medium: "medium", utm_campaign: "name", utm_term: "term", utm_content: "content" };

const win = () => (typeof window !== "undefined" ? window : undefined);
const doc = () => (typeof document !== "undefined" ? document : undefined);
const nav = () => (typeof navigator !== "undefined" ? navigator : undefined);

/** url, path, search, referrer and title of the current page ({} outside a browser). */
export function pageInfo() {
  const w = win();
  const d = doc();
  if (!w || !w.location) return {};
  const { href, pathname, search } = w.location;
  return { url: href, path: pathname, search, referrer: d ? d.referrer : "", title: d ? d.title : "" };
}

/** Segment's context.campaign from the page's utm_* parameters, or undefined. */
export function campaign() {
  const w = win();
  if (!w || !w.location || typeof URLSearchParams !== "function") return undefined;
  let params;
  try {
    params = new URLSearchParams(w.location.search);
  } catch {
    return undefined;
  }
  const out = {};
  for (const [param, field] of Object.entries(UTM)) {
    const value = params.get(param);
    if (value) out[field] = value.slice(0, 200);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The context every message carries. */
export function baseContext(library) {
  const ctx = { library };
  const w = win();
  const n = nav();
  if (w) ctx.page = pageInfo();
  if (n) {
    ctx.userAgent = n.userAgent;
    ctx.locale = n.language;
  }
  if (w && w.screen) ctx.screen = { width: w.screen.width, height: w.screen.height };
  try {
    ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    // no Intl
  }
  const utm = campaign();
  if (utm) ctx.campaign = utm;
  return ctx;
}

/** Whether the browser asks not to be tracked: Do Not Track and/or Global Privacy Control. */
export function privacySignals() {
  const w = win();
  const n = nav();
  const dnt = [n && n.doNotTrack, w && w.doNotTrack, n && n.msDoNotTrack].some((v) => v === "1" || v === "yes");
  const gpc = Boolean(n && n.globalPrivacyControl === true);
  return { dnt, gpc };
}
