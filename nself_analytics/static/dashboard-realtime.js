/*
 * The realtime tab: visitors and page views of the last 5 minutes, page views per minute of the last 30 minutes
 * (a column chart: each minute one /api/pageviews read when the tab opens, then the last two minutes again at
 * every refresh), and the latest page views; refreshed every few seconds while the tab is open.
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, charts = D.charts, state = D.state;
  var REALTIME_MS = 5000, MINUTES = 30;
  var timer = null, minutes = {};  // minute start (Unix seconds) -> page views
  var clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  var clockSeconds = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

  function minuteParams(start) {
    return { site: state.site, start: start, end: start + 60, include_bots: state.bots ? 'true' : '' };
  }

  /* reads the page views of the minutes starting at ``starts`` into ``minutes`` */
  function readMinutes(starts) {
    return Promise.all(starts.map(function (start) {
      return D.api('api/pageviews', minuteParams(start)).then(function (body) { minutes[start] = body.data.pageviews; });
    }));
  }

  function drawMinutes(now) {
    var points = [];
    for (var k = MINUTES - 1; k >= 0; k--) {
      var start = now - k * 60;
      points.push({ label: k === 0 ? 'now' : clock.format(new Date(start * 1000)), value: minutes[start] || 0 });
    }
    charts.columnChart($('rt-chart'), points, { title: 'page views per minute, last 30 minutes', unit: 'page views' });
  }

  function loadRealtime(first) {
    var now = Math.floor(Date.now() / 60000) * 60, wanted = [];
    for (var k = first ? MINUTES - 1 : 1; k >= 0; k--) wanted.push(now - k * 60);
    var latest = D.api('api/realtime', { site: state.site, include_bots: state.bots ? 'true' : '', limit: 20 })
      .then(function (body) {
        $('rt-visitors').textContent = charts.format(body.data.visitors);
        $('rt-pageviews').textContent = charts.format(body.data.pageviews);
        D.fillTable($('rt-latest'), body.data.latest, function (r) {
          return [clockSeconds.format(new Date(r.ts)), { text: r.path, title: r.path },
                  { text: r.referrer || '', title: r.referrer || '' }, r.country || '', r.device || '', r.browser || ''];
        });
        $('rt-latest-box').hidden = !body.data.latest.length;
        $('rt-quiet').hidden = !!body.data.latest.length;
        $('rt-updated').textContent = '(updated ' + clockSeconds.format(new Date()) + ')';
      });
    return Promise.all([latest, readMinutes(wanted).then(function () { drawMinutes(now); })]);
  }

  function stopRealtime() { if (timer) { clearInterval(timer); timer = null; } }

  D.register('realtime', {
    show: function () {
      stopRealtime();
      minutes = {};
      timer = setInterval(function () { loadRealtime(false).catch(D.failed); }, REALTIME_MS);
      return loadRealtime(true).then(function () { D.message(''); });
    },
    leave: stopRealtime
  });
})();
