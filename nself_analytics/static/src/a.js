/*
 * nself-analytics page-view beacon: no configuration, no cookies.
 *   <script async src="https://HOST/analytics/a.js"></script>
 * Optional: data-site="example.com" on the tag counts several hostnames as one site.
 * The visitor's anonymous id lives in localStorage under nsa_anonymous_id, the key the browser SDK
 * (sdk/js) uses too: a site with both is one visitor, and the SDK's identify links that id to the user.
 *
 * This is the readable source; /analytics/a.js serves ../a.js, its minified copy:
 *   npx terser src/a.js --compress --mangle --comments false -o a.js   (run in nself_analytics/static)
 */
(function (w, d) {
  var script = d.currentScript;
  if (!script || !script.src || w.__npa) return;
  w.__npa = 1;
  var loc = w.location, nav = w.navigator, hist = w.history;
  // The hit endpoint sits next to this file: https://HOST/analytics/a.js -> https://HOST/analytics/hit
  var endpoint = script.src.replace(/[?#].*$/, '').replace(/[^/]*$/, 'hit');
  var site = script.getAttribute('data-site') || loc.hostname;
  var KEY = 'np_sid', ANON = 'nsa_anonymous_id', IDLE_MS = 30 * 60 * 1000, memory, anon, last, first = true;

  // 64 random bits (about 13 characters): unique enough per site, and every stored hit carries it
  function random() {
    var c = w.crypto, a = new Uint32Array(2);
    if (c && c.getRandomValues) c.getRandomValues(a);
    else a[0] = Math.random() * 4294967296, a[1] = Math.random() * 4294967296;
    return a[0].toString(36) + a[1].toString(36);
  }

  // One id per tab session, renewed after 30 minutes without a page view (as analytics tools do).
  function session() {
    var now = Date.now(), saved;
    try { saved = (w.sessionStorage.getItem(KEY) || '').split('.'); } catch (e) { saved = memory || []; }
    var id = saved[0] && now - (+saved[1] || 0) < IDLE_MS ? saved[0] : random();
    memory = [id, now];
    try { w.sessionStorage.setItem(KEY, id + '.' + now); } catch (e) { /* storage disabled: keep it in memory */ }
    return id;
  }

  // The visitor's anonymous id, shared with the browser SDK (same key, same plain-string value); kept in
  // memory when storage is unavailable.
  function anonymousId() {
    try { anon = w.localStorage.getItem(ANON) || anon; } catch (e) { /* storage disabled */ }
    if (!anon) {
      anon = w.crypto && w.crypto.randomUUID ? w.crypto.randomUUID() : random() + random();
      try { w.localStorage.setItem(ANON, anon); } catch (e) { /* keep it in memory */ }
    }
    return anon;
  }

  function send(body) {
    try { if (nav.sendBeacon && nav.sendBeacon(endpoint, body)) return; } catch (e) { /* fall back to fetch */ }
    if (w.fetch) w.fetch(endpoint, { method: 'POST', body: body, keepalive: true, credentials: 'omit' })['catch'](function () {});
  }

  function page() {
    var path = loc.pathname;
    if (path === last) return; // replaceState of the same page, or a hash change
    last = path;
    var data = {
      site: site, hostname: loc.hostname, path: path, referrer: first ? d.referrer || null : null,
      language: nav.language || null, screen_width: w.screen ? w.screen.width : null, session_id: session(),
      anonymous_id: anonymousId()
    };
    if (nav.webdriver) data.webdriver = true;
    first = false;
    var query = new URLSearchParams(loc.search);
    ['source', 'medium', 'campaign', 'term', 'content'].forEach(function (k) {
      var v = query.get('utm_' + k);
      if (v) data['utm_' + k] = v;
    });
    send(JSON.stringify(data));
  }

  // Single-page apps: a navigation is a pushState/replaceState or a back/forward (popstate).
  ['pushState', 'replaceState'].forEach(function (name) {
    var original = hist[name];
    if (original) hist[name] = function () { var r = original.apply(this, arguments); page(); return r; };
  });
  w.addEventListener('popstate', page);

  if (d.visibilityState === 'prerender') {
    d.addEventListener('visibilitychange', function wait() {
      if (d.visibilityState !== 'prerender') { d.removeEventListener('visibilitychange', wait); page(); }
    });
  } else page();
})(window, document);
