/*
 * The dashboard: web analytics of one site and the product views (funnel, retention), read from
 * this instance's API with the secret token. The token lives in sessionStorage (this tab only),
 * never in the URL; without a site and a token nothing is shown.
 */
(function () {
  'use strict';
  var TOKEN_KEY = 'np_analytics_token', SITE_KEY = 'np_analytics_site';
  var $ = function (id) { return document.getElementById(id); };
  var charts = window.NpCharts;
  var state = { token: null, site: null, days: 30, bots: false };

  function storage(kind) { try { return window[kind]; } catch (e) { return null; } }
  function load(kind, key) { var s = storage(kind); return s ? s.getItem(key) : null; }
  function save(kind, key, value) {
    var s = storage(kind);
    if (!s) return;
    if (value) s.setItem(key, value); else s.removeItem(key);
  }

  function message(text, isError) {
    $('message').textContent = text || '';
    $('message').className = isError ? 'error' : '';
  }

  function ApiError(status, text) { this.status = status; this.message = text; }

  function api(path, params) {
    var query = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== null && params[k] !== '') query.set(k, params[k]);
    });
    return fetch(path + '?' + query.toString(), {
      headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json' },
      cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer'
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) throw new ApiError(response.status, body.message || response.statusText);
        return body;
      });
    });
  }

  function failed(error) {
    if (error && error.status === 401) {
      save('sessionStorage', TOKEN_KEY, null);
      state.token = null;
      $('token').value = '';
      show(false);
      message('The token was refused: ' + error.message, true);
    } else {
      message((error && error.message) || String(error), true);
    }
  }

  function show(on) {
    $('board').hidden = !on;
    $('logout').hidden = !on;
  }

  function rangeParams(extra) {
    var end = Math.floor(Date.now() / 1000) + 1;
    return Object.assign({ site: state.site, start: end - state.days * 86400, end: end,
                           include_bots: state.bots ? 'true' : '' }, extra || {});
  }

  function fillTable(table, rows, cells) {
    var body = table.querySelector('tbody');
    body.replaceChildren();
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      cells(row).forEach(function (value) {
        var td = document.createElement('td');
        td.textContent = value;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement('tr'), td = document.createElement('td');
      td.colSpan = table.querySelectorAll('thead th').length || 1;
      td.className = 'empty';
      td.textContent = 'No data';
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  function seconds(value) {
    value = Math.round(value || 0);
    if (value < 60) return value + 's';
    if (value < 3600) return Math.floor(value / 60) + 'm ' + (value % 60) + 's';
    return Math.floor(value / 3600) + 'h ' + Math.floor((value % 3600) / 60) + 'm';
  }

  function percent(rate) { return rate === null || rate === undefined ? '-' : (rate * 100).toFixed(1) + '%'; }

  function bars(id, rows, key) {
    charts.barChart($(id), rows.map(function (r) { return { label: String(r[key]), value: r.pageviews }; }),
                     { title: id });
  }

  function loadWeb() {
    var p = rangeParams();
    message('Loading ' + state.site + '...');
    return Promise.all([
      api('api/pageviews', p), api('api/timeseries', p), api('api/pages', p), api('api/referrers', p),
      api('api/devices', p), api('api/countries', p), api('api/languages', p), api('api/browsers', p),
      api('api/active', p), api('api/session-duration', p)
    ]).then(function (r) {
      var totals = r[0].data, duration = r[9].data;
      $('kpi-pageviews').textContent = charts.format(totals.pageviews);
      $('kpi-sessions').textContent = charts.format(totals.sessions);
      $('kpi-visitors').textContent = charts.format(totals.visitors);
      $('kpi-active').textContent = charts.format(r[8].data.active);
      $('kpi-bounce').textContent = duration.sessions ? percent(duration.bounce_rate) : '-';
      $('kpi-duration').textContent = duration.sessions ? seconds(duration.average_seconds) : '-';
      charts.lineChart($('timeseries'), r[1].data.map(function (d) {
        return { label: d.date.slice(5), pageviews: d.pageviews, sessions: d.sessions };
      }), { title: 'page views per day', series: [
        { key: 'pageviews', name: 'page views', className: 'series-0' },
        { key: 'sessions', name: 'sessions', className: 'series-1' }] });
      fillTable($('top-pages'), r[2].data, function (x) { return [x.path, x.pageviews, x.sessions]; });
      fillTable($('referrers'), r[3].data, function (x) { return [x.referrer, x.pageviews, x.sessions]; });
      bars('devices', r[4].data, 'device');
      fillTable($('countries'), r[5].data, function (x) { return [x.country, x.pageviews, x.sessions]; });
      bars('languages', r[6].data, 'language');
      bars('browsers', r[7].data, 'browser');
      message(totals.pageviews ? '' : 'No page views of ' + state.site + ' in this range yet.');
    });
  }

  function runFunnel(event) {
    if (event) event.preventDefault();
    var steps = $('funnel-steps').value.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
    return api('funnel', { steps: steps.join(','), start_date: $('funnel-start').value,
                           end_date: $('funnel-end').value, window: $('funnel-window').value }).then(function (body) {
      var rows = body.steps || body.data || [];
      charts.barChart($('funnel-chart'), rows.map(function (s) {
        return { label: s.event, value: s.users, rate: s.conversion_from_start };
      }), { title: 'funnel', format: function (r) { return charts.format(r.value) + ' · ' + percent(r.rate); } });
      fillTable($('funnel-table'), rows, function (s) {
        return [s.event, s.users, percent(s.conversion_from_start), percent(s.conversion_from_previous), s.drop_off,
                s.median_seconds_from_previous === null ? '-' : seconds(s.median_seconds_from_previous)];
      });
      message('');
    }).catch(failed);
  }

  function runRetention(event) {
    if (event) event.preventDefault();
    return api('retention', { start_date: $('retention-start').value, end_date: $('retention-end').value,
                              period: $('retention-period').value, start_event: $('retention-start-event').value,
                              return_event: $('retention-return-event').value }).then(function (body) {
      var rows = body.data || body.rows || [];
      var columns = rows.reduce(function (n, r) { return Math.max(n, r.retained.length); }, 0);
      var table = $('retention-table'), head = document.createElement('tr');
      ['Cohort', 'Users'].concat(Array.from({ length: columns }, function (_, k) {
        return body.period ? body.period + ' ' + k : String(k);
      })).forEach(function (label) {
        var th = document.createElement('th');
        th.textContent = label;
        head.appendChild(th);
      });
      table.querySelector('thead').replaceChildren(head);
      var tbody = table.querySelector('tbody');
      tbody.replaceChildren();
      rows.forEach(function (row) {
        var tr = document.createElement('tr');
        [row.cohort, row.size].forEach(function (v) {
          var td = document.createElement('td');
          td.textContent = v;
          tr.appendChild(td);
        });
        for (var k = 0; k < columns; k++) {
          var td = document.createElement('td'), value = row.retained[k];
          if (value !== undefined) {
            var rate = row.size ? value / row.size : 0;
            td.textContent = percent(rate);
            td.title = value + ' of ' + row.size;
            td.setAttribute('data-rate', rate.toFixed(4));
            td.style.backgroundColor = 'rgba(37, 99, 235, ' + (0.08 + 0.82 * rate).toFixed(3) + ')';
            td.style.color = rate > 0.5 ? '#fff' : '';
          }
          tr.appendChild(td);
        }
        tbody.appendChild(tr);
      });
      message(rows.length ? '' : 'No cohorts in this range.');
    }).catch(failed);
  }

  function refresh() {
    if (!state.site || !state.token) { show(false); return Promise.resolve(); }
    show(true);
    return loadWeb().catch(failed);
  }

  function isoDay(offsetDays) {
    return new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);
  }

  $('login').addEventListener('submit', function (event) {
    event.preventDefault();
    state.site = $('site').value.trim().toLowerCase();
    state.token = $('token').value.trim();
    state.days = +$('range').value;
    state.bots = $('bots').checked;
    save('localStorage', SITE_KEY, state.site);
    save('sessionStorage', TOKEN_KEY, state.token);
    refresh();
  });
  $('logout').addEventListener('click', function () {
    save('sessionStorage', TOKEN_KEY, null);
    state.token = null;
    $('token').value = '';
    show(false);
    message('Token forgotten.');
  });
  document.querySelectorAll('.tabs button').forEach(function (button) {
    button.addEventListener('click', function () {
      document.querySelectorAll('.tabs button').forEach(function (b) { b.classList.toggle('active', b === button); });
      $('tab-web').hidden = button.getAttribute('data-tab') !== 'web';
      $('tab-product').hidden = button.getAttribute('data-tab') !== 'product';
    });
  });
  $('funnel-form').addEventListener('submit', runFunnel);
  $('retention-form').addEventListener('submit', runRetention);
  ['funnel-start', 'retention-start'].forEach(function (id) { $(id).value = isoDay(-30); });
  ['funnel-end', 'retention-end'].forEach(function (id) { $(id).value = isoDay(0); });

  state.site = load('localStorage', SITE_KEY);
  state.token = load('sessionStorage', TOKEN_KEY);
  if (state.site) $('site').value = state.site;
  if (state.token) $('token').value = state.token;
  refresh();
})();
