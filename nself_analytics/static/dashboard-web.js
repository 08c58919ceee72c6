/*
 * The web tab: top stats (each beside the previous period, with a sparkline where a daily series exists), one
 * main chart of the chosen stat, goals, the lists grouped in tabbed cards (dashboard-cards.js), and peak hours
 * as a weekday-by-hour heat map (/api/peak-hours/week). A click on a row (or a country of the map) filters the whole dashboard. A site
 * without page views gets the first-run card instead (dashboard-start.js).
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, charts = D.charts, state = D.state, cards = window.NpCards;
  // weekday names of the heat map's rows, Monday first (ISO 1..7; 2024-01-01 was a Monday)
  var weekday = new Intl.DateTimeFormat(undefined, { weekday: 'short', timeZone: 'UTC' });
  var WEEKDAYS = [0, 1, 2, 3, 4, 5, 6].map(function (k) { return weekday.format(new Date(Date.UTC(2024, 0, 1 + k))); });
  var metric = 'pageviews';  // the main chart's stat: pageviews or sessions
  var lastSeries = null;     // [current days, previous days] of the last load, for a metric switch

  // a list: id, title, endpoint, key of a row, first column, columns ('views' | 'sessions' | 'bounce'), filter
  function list(id, title, endpoint, key, column, kind, filter) {
    var columns = kind === 'bounce' ? [column, 'Sessions', 'Bounces', 'Rate'] :
      kind === 'sessions' ? [column, 'Sessions'] : [column, 'Views', 'Sessions'];
    return { id: id, title: title, endpoint: endpoint, key: key, columns: columns, kind: kind, filter: filter };
  }

  var GROUPS = [
    { id: 'card-pages', title: 'Pages', tabs: [
      list('top-pages', 'Top pages', 'pages', 'path', 'Page', 'views', 'path'),
      list('entry-pages', 'Entry pages', 'entry-pages', 'path', 'Page', 'sessions', 'path'),
      list('exit-pages', 'Exit pages', 'exit-pages', 'path', 'Page', 'sessions', 'path'),
      list('bounce-rates', 'Bounce rate', 'bounce-rates', 'path', 'Entry page', 'bounce', 'path'),
      list('hostnames', 'Hostnames', 'hostnames', 'hostname', 'Hostname', 'views', null)] },
    { id: 'card-sources', title: 'Sources', tabs: [
      list('referrers', 'Referrers', 'referrers', 'referrer', 'Source', 'views', 'referrer'),
      list('utm-sources', 'UTM source', 'utm-sources', 'utm_source', 'Source', 'views', 'utm_source'),
      list('utm-mediums', 'Medium', 'utm-mediums', 'utm_medium', 'Medium', 'views', 'utm_medium'),
      list('utm-campaigns', 'Campaign', 'utm-campaigns', 'utm_campaign', 'Campaign', 'views', 'utm_campaign'),
      list('utm-terms', 'Term', 'utm-terms', 'utm_term', 'Term', 'views', 'utm_term'),
      list('utm-contents', 'Content', 'utm-contents', 'utm_content', 'Content', 'views', 'utm_content')] },
    { id: 'card-locations', title: 'Locations', tabs: [
      { id: 'world-map', title: 'Map', map: true },
      list('countries', 'Countries', 'countries', 'country', 'Country', 'views', 'country'),
      list('languages', 'Languages', 'languages', 'language', 'Language', 'views', null)] },
    { id: 'card-devices', title: 'Devices', tabs: [
      list('devices', 'Device', 'devices', 'device', 'Device', 'views', 'device'),
      list('browsers', 'Browser', 'browsers', 'browser', 'Browser', 'views', 'browser'),
      list('os', 'OS', 'os', 'os', 'OS', 'views', 'os'),
      list('screen-widths', 'Screen', 'screen-widths', 'width', 'Width (px)', 'views', null)] }
  ];
  var LISTS = [].concat.apply([], GROUPS.map(function (g) { return g.tabs.filter(function (t) { return !t.map; }); }));

  var percent = D.percent, seconds = D.seconds;
  var regions = window.Intl && Intl.DisplayNames ? new Intl.DisplayNames(undefined, { type: 'region' }) : null;

  /* the change of a figure against the previous period, as text and a direction */
  function change(current, previous) {
    if (current === null || previous === null || current === undefined || previous === undefined) return ['', ''];
    if (!previous) return current ? ['new', 'up'] : ['', ''];
    var rate = (current - previous) / previous;
    if (Math.abs(rate) < 0.0005) return ['±0%', ''];
    return [(rate > 0 ? '+' : '−') + Math.abs(rate * 100).toFixed(rate > -0.1 && rate < 0.1 ? 1 : 0) + '%',
            rate > 0 ? 'up' : 'down'];
  }

  function kpi(name, text, current, previous, lowerIsBetter) {
    $('kpi-' + name).textContent = text;
    var c = change(current, previous), em = $('chg-' + name);
    if (!em) return;
    em.textContent = c[0];
    em.className = 'change ' + (lowerIsBetter && c[1] ? (c[1] === 'up' ? 'down' : 'up') : c[1]);
    em.title = previous === null || previous === undefined ? '' : 'previous period: ' + previous;
    em.setAttribute('data-previous', previous === null || previous === undefined ? '' : previous);
  }

  function label(panel, r) {
    var value = r[panel.key];
    if (value === null || value === undefined || value === '') return panel.key === 'referrer' ? 'Direct / None' : '';
    return String(value);
  }

  function rowsOf(panel, data) {
    var max = Math.max.apply(null, [1].concat(data.map(function (r) { return r.pageviews || r.sessions || 0; })));
    D.fillTable($(panel.id), data, function (r) {
      var text = label(panel, r), shown = panel.key === 'country' && regions && text ? regionName(text) : text;
      var first = { text: shown, share: (r.pageviews || r.sessions || 0) / max, title: text === shown ? text : shown +
                    ' (' + text + ')' };
      if (panel.filter && r[panel.key] !== null && r[panel.key] !== undefined) first.filter = [panel.filter, text];
      if (panel.kind === 'bounce') return [first, r.sessions, r.bounces, percent(r.bounce_rate)];
      if (panel.kind === 'sessions') return [first, r.sessions];
      return [first, r.pageviews, r.sessions];
    });
    // a single hostname (the site's own) says nothing: that tab only shows for several
    cards.mark(panel.id, panel.endpoint === 'hostnames' && data.length < 2 ? 0 : data.length);
  }

  function regionName(code) {
    try { return regions.of(code.toUpperCase()) || code; } catch (e) { return code; }
  }

  function screenLabel(rows) {
    return rows.map(function (r) { return Object.assign({}, r, { width: r.bucket || r.width || r.label }); });
  }

  function loadGoals() {
    $('goals-box').hidden = !state.goals.length;
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
        return [{ text: g.goal, title: g.goal }, g.conversions, g.visitors, percent(g.conversion_rate), c[0],
                { node: remove }];
      });
    });
  }

  /* the main chart: the chosen stat per day, the previous period dashed */
  function drawMain() {
    if (!lastSeries) return;
    var days = lastSeries[0], before = lastSeries[1], name = metric === 'sessions' ? 'sessions' : 'page views';
    var dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
    $('main-title').textContent = (metric === 'sessions' ? 'Sessions' : 'Page views') + ' per day';
    charts.lineChart($('timeseries'), days.map(function (x, i) {
      var point = { label: dayFormat.format(new Date(x.date + 'T00:00:00Z')), previous: before[i] ? before[i][metric] : 0 };
      point[metric] = x[metric];
      return point;
    }), { title: name + ' per day', series: [
      { key: metric, name: name, className: 'series-0' },
      { key: 'previous', name: name + ', previous period', className: 'series-0', dashed: true }] });
    document.querySelectorAll('.kpi[data-metric]').forEach(function (k) {
      k.classList.toggle('selected', k.getAttribute('data-metric') === metric);
    });
  }

  function sparks(days) {
    charts.sparkline($('spark-pageviews'), days.map(function (d) { return d.pageviews; }));
    charts.sparkline($('spark-sessions'), days.map(function (d) { return d.sessions; }));
    charts.sparkline($('spark-per-session'), days.map(function (d) {
      return d.sessions ? d.pageviews / d.sessions : 0;
    }));
  }

  /* peak hours: page views per weekday and hour of the day over the range, in the read's zone (one read) */
  function loadHeat() {
    return D.api('api/peak-hours/week', D.webParams()).then(function (body) {
      var rows = WEEKDAYS.map(function (name) { return { label: name, values: new Array(24).fill(0) }; });
      var total = 0;
      body.data.forEach(function (c) { rows[c.weekday - 1].values[c.hour] = c.pageviews; total += c.pageviews; });
      $('card-peak').hidden = !total;
      $('heat-title').textContent = 'Peak hours by weekday (' + body.meta.tz + ')';
      charts.heatmap($('peak-hours'), rows, { title: 'page views by weekday and hour', unit: 'page views' });
    });
  }

  function loadWeb() {
    cards.build($('web-panels'), GROUPS);
    var p = D.webParams(), prev = D.webParams({}, true);
    D.message('Loading ' + state.site + '...');
    var main = Promise.all([
      D.api('api/pageviews', p), D.api('api/pageviews', prev), D.api('api/session-duration', p),
      D.api('api/session-duration', prev), D.api('api/timeseries', p), D.api('api/timeseries', prev),
      D.api('api/active', p)
    ]).then(function (r) {
      var t = r[0].data, tp = r[1].data, d = r[2].data, dp = r[3].data, f = charts.format;
      var perSession = function (x) { return Math.round(x * 10) / 10; };
      kpi('visitors', f(t.visitors), t.visitors, tp.visitors);
      kpi('pageviews', f(t.pageviews), t.pageviews, tp.pageviews);
      kpi('sessions', f(t.sessions), t.sessions, tp.sessions);
      kpi('per-session', d.sessions ? D.decimal(d.pageviews_per_session) : '-', perSession(d.pageviews_per_session),
          dp.sessions ? perSession(dp.pageviews_per_session) : null);
      kpi('bounce', d.sessions ? percent(d.bounce_rate) : '-', d.bounce_rate, dp.sessions ? dp.bounce_rate : null, true);
      kpi('duration', d.sessions ? seconds(d.average_seconds) : '-', d.average_seconds,
          dp.sessions ? dp.average_seconds : null);
      kpi('median', d.sessions ? seconds(d.median_seconds) : '-', d.median_seconds, dp.sessions ? dp.median_seconds : null);
      $('kpi-active').textContent = f(r[6].data.active);
      lastSeries = [r[4].data, r[5].data];
      drawMain();
      sparks(r[4].data);
      var filtered = Object.keys(state.filters).some(function (k) { return state.filters[k]; });
      if (window.NpStart) window.NpStart.webLoaded(t.pageviews, filtered);
      D.message(t.pageviews || !filtered ? '' : 'No page views match these filters in this range.');
    });
    var lists = LISTS.map(function (panel) {
      return D.api('api/' + panel.endpoint, Object.assign({}, p, { limit: 10 })).then(function (body) {
        rowsOf(panel, panel.endpoint === 'screen-widths' ? screenLabel(body.data) : body.data);
        if (panel.endpoint === 'countries') {
          cards.mark('world-map', body.data.length);
          return cards.drawMap($('world-map'), body.data);
        }
      });
    });
    var settled = Promise.all(lists).then(function () { cards.settle($('web-panels'), $('empty-note')); });
    return Promise.all([main, loadGoals(), loadHeat(), settled]);
  }

  $('goal-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var goal = $('goal-input').value.trim();
    if (!/^(path:\/|event:.)/.test(goal)) { D.message('A goal is path:/some/page or event:name', true); return; }
    if (state.goals.indexOf(goal) < 0) state.goals.push(goal);
    $('goal-input').value = '';
    D.writeUrl();
    loadGoals().then(function () { D.message(''); }).catch(D.failed);
  });
  document.querySelectorAll('.kpi[data-metric]').forEach(function (k) {
    k.addEventListener('click', function () { metric = k.getAttribute('data-metric'); drawMain(); });
  });

  D.register('web', { show: loadWeb });
})();
