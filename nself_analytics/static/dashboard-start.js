/*
 * The first run. Before a token is given, the welcome card says where the secret token is (secrets.env in the
 * data folder, printed once in the install/start log). A site without any page view in the last 12 months gets
 * the setup card instead of empty panels: the beacon snippet with this service's host and the site, the SDK
 * snippet with the write key's placeholder, and a live wait for the first hit (polls /api/realtime every few
 * seconds; when it comes, the web tab reloads). window.NpStart; dashboard-web.js calls webLoaded().
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, state = D.state;
  var POLL_MS = 3000, YEAR = 365 * 86400;
  var timer = null;

  function base() { return new URL('.', window.location.href).href.replace(/\/$/, ''); }

  function snippets() {
    var host = base();
    $('setup-site').textContent = state.site;
    $('snippet-beacon').textContent = '<script async src="' + host + '/a.js" data-site="' + state.site + '"></script>';
    $('snippet-sdk').textContent = '<script src="' + host + '/sdk/analytics.js" data-write-key="YOUR_WRITE_KEY"></script>\n' +
      '<script>\n  // then, anywhere on the page:\n  analytics.track("signup", { plan: "pro" });\n</script>';
    $('snippet-curl').textContent = 'curl -X POST ' + host + '/track \\\n  -H "Authorization: Bearer YOUR_WRITE_KEY" ' +
      '-H "Content-Type: application/json" \\\n  -d \'{"event": "signup", "user_id": "u1"}\'';
  }

  function stop() { if (timer) { clearInterval(timer); timer = null; } }

  function poll() {
    if ($('board').hidden || $('setup').hidden || state.tab !== 'web') { stop(); return; }
    D.api('api/realtime', { site: state.site, include_bots: 'true', limit: 1 }).then(function (body) {
      if (!body.data.pageviews) return;
      stop();
      var first = body.data.latest[0];
      $('setup-status').textContent = 'Received!';
      leave();
      return D.changed().then(function () {
        D.message('First page view received' + (first ? ': ' + first.path : '') + '. Your dashboard is live.');
      });
    }).catch(function () { /* a failed poll is tried again at the next tick */ });
  }

  function enter() {
    snippets();
    $('setup').hidden = false;
    $('tab-web').classList.add('first-run');
    $('setup-status').textContent = 'Waiting for the first page view of ' + state.site + '…';
    stop();
    timer = setInterval(poll, POLL_MS);
  }

  function leave() {
    $('setup').hidden = true;
    $('tab-web').classList.remove('first-run');
  }

  /* after the web tab's figures: no page view in the range and no filter -> is the site new? */
  function webLoaded(pageviews, filtered) {
    if (pageviews || filtered) { stop(); leave(); return Promise.resolve(); }
    var end = Math.floor(Date.now() / 1000) + 60;
    return D.api('api/pageviews', { site: state.site, start: end - YEAR, end: end, include_bots: 'true' })
      .then(function (body) {
        if (body.data.pageviews) { stop(); leave(); D.message('No page views of ' + state.site + ' in this range.'); }
        else enter();
      }).catch(D.failed);
  }

  /* the welcome card is up while no token is given (never in a shared view) */
  function welcome(on) { $('welcome').hidden = !on || state.shared; }

  document.addEventListener('click', function (event) {
    var target = event.target.closest ? event.target.closest('button[data-copy]') : null;
    if (!target || !navigator.clipboard) return;
    navigator.clipboard.writeText($(target.getAttribute('data-copy')).textContent).then(function () {
      target.textContent = 'Copied';
    }).catch(function () { /* the text stays selectable */ });
  });

  window.NpStart = { webLoaded: webLoaded, welcome: welcome, stop: stop };
})();
