/*
 * The web tab (every web stat of the API as a card or a panel, each figure beside the previous period;
 * goals; rows that filter the dashboard) and the realtime tab (refreshed every few seconds).
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, charts = D.charts, state = D.state;
  var REALTIME_MS = 5000;
  var timer = null;

  // id, title, endpoint, key of a row, column title, the filter a row sets (or none)
  var PANELS = [
    ['top-pages', 'Top pages', 'pages', 'path', 'Page', 'path'],
    ['entry-pages', 'Entry pages', 'entry-pages', 'path', 'Page', 'path'],
    ['exit-pages', 'Exit pages', 'exit-pages', 'path', 'Page', 'path'],
    ['referrers', 'Referrers', 'referrers', 'referrer', 'Source', 'referrer'],
    ['utm-sources', 'UTM sources', 'utm-sources', 'utm_source', 'Source', 'utm_source'],
    ['utm-mediums', 'UTM mediums', 'utm-mediums', 'utm_medium', 'Medium', 'utm_medium'],
    ['utm-campaigns', 'UTM campaigns', 'utm-campaigns', 'utm_campaign', 'Campaign', 'utm_campaign'],
    ['utm-terms', 'UTM terms', 'utm-terms', 'utm_term', 'Term', 'utm_term'],
    ['utm-contents', 'UTM contents', 'utm-contents', 'utm_content', 'Content', 'utm_content'],
    ['countries', 'Countries', 'countries', 'country', 'Country', 'country'],
    ['devices', 'Devices', 'devices', 'device', 'Device', 'device'],
    ['browsers', 'Browsers', 'browsers', 'browser', 'Browser', 'browser'],
    ['os', 'Operating systems', 'os', 'os', 'OS', 'os'],
    ['languages', 'Languages', 'languages', 'language', 'Language', null],
    ['screen-widths', 'Screen widths', 'screen-widths', 'width', 'Width (px)', null],
    ['hostnames', 'Hostnames', 'hostnames', 'hostname', 'Hostname', null],
    ['peak-hours', 'Peak hours (UTC)', 'peak-hours', 'hour', 'Hour', null],
    ['bounce-rates', 'Bounce rate by entry page', 'bounce-rates', 'path', 'Page', 'path']
  ];

  function buildPanels() {
    var grid = $('web-panels');
    if (grid.children.length) return;
    PANELS.forEach(function (p) {
      var card = document.createElement('div'), h = document.createElement('h2'), box = document.createElement('div');
      var table = document.createElement('table'), button = document.createElement('button');
      card.className = 'card';
      h.textContent = p[1];
      box.className = 'table-box';
      table.id = p[0];
      table.setAttribute('data-title', p[1]);
      var columns = p[2] === 'bounce-rates' ? [p[4], 'Sessions', 'Bounces', 'Rate'] :
        p[2] === 'entry-pages' || p[2] === 'exit-pages' ? [p[4], 'Sessions'] : [p[4], 'Views', 'Sessions'];
      table.innerHTML = '<thead><tr></tr></thead><tbody></tbody>';
      columns.forEach(function (c) {
        var th = document.createElement('th');
        th.textContent = c;
        table.querySelector('tr').appendChild(th);
      });
      button.type = 'button';
      button.className = 'export';
      button.setAttribute('data-export', p[0]);
      button.textContent = 'Export CSV';
      box.appendChild(table);
      card.append(h, box, button);
      grid.appendChild(card);
    });
  }

  var percent = D.percent, seconds = D.seconds;

  /* the change of a figure against the previous period, as text and a direction */
  function change(current, previous) {
    if (current === null || previous === null || current === undefined || previous === undefined) return ['', ''];
    if (!previous) return current ? ['new', 'up'] : ['', ''];
    var rate = (current - previous) / previous;
    if (Math.abs(rate) < 0.0005) return ['±0%', ''];
    return [(rate > 0 ? '+' : '−') + Math.abs(rate * 100).toFixed(rate > -0.1 && rate < 0.1 ? 1 : 0) + '%',
            rate > 0 ? 'up' : 'down'];
  }

  function kpi(name, text, current, previous) {
    $('kpi-' + name).textContent = text;
    var c = change(current, previous), em = $('chg-' + name);
    if (!em) return;
    em.textContent = c[0];
    em.className = 'change ' + c[1];
    em.title = previous === null || previous === undefined ? '' : 'previous period: ' + previous;
    em.setAttribute('data-previous', previous === null || previous === undefined ? '' : previous);
  }

  function rowsOf(panel, data) {
    var key = panel[3], filter = panel[5], max = Math.max.apply(null, [1].concat(data.map(function (r) {
      return r.pageviews || r.sessions || 0;
    })));
    D.fillTable($(panel[0]), data, function (r) {
      var label = r[key] === null || r[key] === undefined ? '' : String(r[key]);
      var first = { text: label, share: (r.pageviews || r.sessions || 0) / max };
      if (filter) first.filter = [filter, label];
      if (panel[2] === 'bounce-rates') return [first, r.sessions, r.bounces, percent(r.bounce_rate)];
      if (panel[2] === 'entry-pages' || panel[2] === 'exit-pages') return [first, r.sessions];
      return [first, r.pageviews, r.sessions];
    });
  }

  function screenLabel(rows) {
    return rows.map(function (r) { return Object.assign({}, r, { width: r.bucket || r.width || r.label }); });
  }

  function loadGoals() {
    if (!state.goals.length) { D.fillTable($('goals'), [], function () { return []; }); return Promise.resolve(); }
    var cur = D.webParams({ goal: state.goals }), prev = D.webParams({ goal: state.goals }, true);
    return Promise.all([D.api('api/goals', cur), D.api('api/goals', prev)]).then(function (r) {
      var before = {};
      r[1].data.forEach(function (g) { before[g.goal] = g; });
      D.fillTable($('goals'), r[0].data, function (g) {
        var remove = document.createElement('button'), c = change(g.visitors, (before[g.goal] || {}).visitors);
        remove.type = 'button';
        remove.className = 'remove-goal';
        remove.textContent = 'Remove';
        remove.addEventListener('click', function () {
          state.goals = state.goals.filter(function (x) { return x !== g.goal; });
          D.writeUrl();
          loadGoals().catch(D.failed);
        });
        return [g.goal, g.conversions, g.visitors, percent(g.conversion_rate), c[0], { node: remove }];
      });
    });
  }

  function loadWeb() {
    buildPanels();
    var p = D.webParams(), prev = D.webParams({}, true);
    D.message('Loading ' + state.site + '...');
    var main = Promise.all([
      D.api('api/pageviews', p), D.api('api/pageviews', prev), D.api('api/session-duration', p),
      D.api('api/session-duration', prev), D.api('api/timeseries', p), D.api('api/timeseries', prev),
      D.api('api/active', p)
    ]).then(function (r) {
      var t = r[0].data, tp = r[1].data, d = r[2].data, dp = r[3].data;
      kpi('visitors', charts.format(t.visitors), t.visitors, tp.visitors);
      kpi('pageviews', charts.format(t.pageviews), t.pageviews, tp.pageviews);
      kpi('sessions', charts.format(t.sessions), t.sessions, tp.sessions);
      kpi('per-session', d.sessions ? String(d.pageviews_per_session) : '-', d.pageviews_per_session,
          dp.pageviews_per_session);
      kpi('bounce', d.sessions ? percent(d.bounce_rate) : '-', d.bounce_rate, dp.bounce_rate);
      kpi('duration', d.sessions ? seconds(d.average_seconds) : '-', d.average_seconds, dp.average_seconds);
      kpi('median', d.sessions ? seconds(d.median_seconds) : '-', d.median_seconds, dp.median_seconds);
      $('kpi-active').textContent = charts.format(r[6].data.active);
      var before = r[5].data;
      charts.lineChart($('timeseries'), r[4].data.map(function (x, i) {
        return { label: x.date.slice(5), pageviews: x.pageviews, sessions: x.sessions,
                 previous: before[i] ? before[i].pageviews : 0 };
      }), { title: 'page views per day', series: [
        { key: 'pageviews', name: 'page views', className: 'series-0' },
        { key: 'sessions', name: 'sessions', className: 'series-1' },
        { key: 'previous', name: 'page views, previous period', className: 'series-0', dashed: true }] });
      D.message(t.pageviews ? '' : 'No page views of ' + state.site + ' in this range yet.');
    });
    var panels = PANELS.map(function (panel) {
      return D.api('api/' + panel[2], Object.assign({}, p, { limit: 10 })).then(function (body) {
        rowsOf(panel, panel[2] === 'screen-widths' ? screenLabel(body.data) : body.data);
      });
    });
    return Promise.all([main, loadGoals()].concat(panels));
  }

  function time(iso) { return iso.slice(11, 19); }

  function loadRealtime() {
    return D.api('api/realtime', { site: state.site, include_bots: state.bots ? 'true' : '', limit: 20 })
      .then(function (body) {
        $('rt-visitors').textContent = body.data.visitors;
        $('rt-pageviews').textContent = body.data.pageviews;
        D.fillTable($('rt-latest'), body.data.latest, function (r) {
          return [time(r.ts), r.path, r.referrer, r.country, r.device, r.browser];
        });
        $('rt-updated').textContent = '(updated ' + new Date().toISOString().slice(11, 19) + ' UTC)';
      });
  }

  function stopRealtime() { if (timer) { clearInterval(timer); timer = null; } }

  $('goal-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var goal = $('goal-input').value.trim();
    if (!/^(path:\/|event:.)/.test(goal)) { D.message('A goal is path:/some/page or event:name', true); return; }
    if (state.goals.indexOf(goal) < 0) state.goals.push(goal);
    $('goal-input').value = '';
    D.writeUrl();
    loadGoals().then(function () { D.message(''); }).catch(D.failed);
  });

  D.register('web', { show: loadWeb });
  D.register('realtime', {
    show: function () {
      stopRealtime();
      timer = setInterval(function () { loadRealtime().catch(D.failed); }, REALTIME_MS);
      return loadRealtime().then(function () { D.message(''); });
    },
    leave: stopRealtime
  });
})();
