/*
 * The realtime tab: visitors and page views of the last 5 minutes, page views per minute of the last 30 minutes
 * (a column chart of /api/realtime/minutes), and the latest page views; refreshed every few seconds while the tab
 * is open.
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, charts = D.charts, state = D.state;
  var REALTIME_MS = 5000;
  var timer = null;
  var clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  var clockSeconds = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

  /* page views per minute of the last 30 minutes, the current one last (one read: /api/realtime/minutes) */
  function loadMinutes() {
    var params = { site: state.site, include_bots: state.bots ? 'true' : '' };
    return D.api('api/realtime/minutes', params).then(function (body) {
      var last = body.data.length - 1;
      var points = body.data.map(function (m, k) {
        return { label: k === last ? 'now' : clock.format(new Date(m.start * 1000)), value: m.pageviews };
      });
      charts.columnChart($('rt-chart'), points, { title: 'page views per minute, last ' + body.data.length + ' minutes',
                                                  unit: 'page views' });
    });
  }

  function loadRealtime() {
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
    return Promise.all([latest, loadMinutes()]);
  }

  function stopRealtime() { if (timer) { clearInterval(timer); timer = null; } }

  D.register('realtime', {
    show: function () {
      stopRealtime();
      timer = setInterval(function () { loadRealtime().catch(D.failed); }, REALTIME_MS);
      return loadRealtime().then(function () { D.message(''); });
    },
    leave: stopRealtime
  });
})();
