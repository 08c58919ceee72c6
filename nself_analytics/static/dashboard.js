/*
 * The dashboard's core: state kept in the URL (site, range, tab, filters, goals, the open person), the
 * token kept in this browser's localStorage until "Forget token", API calls, tables with CSV export,
 * filter chips and tabs. A site-scoped read token in the URL fragment (#share=<token>) opens a read-only
 * shared view of the URL's site: nothing is stored, the login form and the product tabs are hidden.
 * The web tab (dashboard-web.js) and the product tabs (dashboard-product.js) register themselves here.
 */
(function () {
  'use strict';
  var TOKEN_KEY = 'np_analytics_token', SITE_KEY = 'np_analytics_site';
  var FILTERS = ['path', 'referrer', 'country', 'device', 'browser', 'os', 'utm_source', 'utm_medium', 'utm_campaign',
                 'utm_term', 'utm_content'];
  var $ = function (id) { return document.getElementById(id); };
  var url = new URL(window.location.href);
  var state = {
    token: null, shared: false, site: null, days: 30, bots: false, tab: 'web', filters: {},
    goals: url.searchParams.getAll('goal'), user: url.searchParams.get('user') || null
  };
  var views = {};

  function storage() { try { return window.localStorage; } catch (e) { return null; } }
  function load(key) { var s = storage(); return s ? s.getItem(key) : null; }
  function save(key, value) {
    var s = storage();
    if (!s) return;
    if (value) s.setItem(key, value); else s.removeItem(key);
  }

  function message(text, isError) {
    $('message').textContent = text || '';
    $('message').className = isError ? 'error' : '';
  }

  function ApiError(status, text) { this.status = status; this.message = text; }

  function query(params) {
    var q = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (Array.isArray(v)) v.forEach(function (item) { q.append(k, item); });
      else if (v !== undefined && v !== null && v !== '') q.set(k, v);
    });
    return q.toString();
  }

  function api(path, params) {
    return fetch(path + '?' + query(params), {
      headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json' },
      cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer'
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) throw new ApiError(response.status, body.message || response.statusText);
        return body;
      });
    });
  }

  /* a JSON call that changes something (POST, PATCH, DELETE) with the token; rejects with the API's message */
  function send(method, path, body) {
    return fetch(path, {
      method: method, body: body ? JSON.stringify(body) : undefined, cache: 'no-store', credentials: 'omit',
      headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json', 'Content-Type': 'application/json' }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new ApiError(response.status, data.message || response.statusText);
        return data;
      });
    });
  }

  function failed(error) {
    if (error && error.status === 401 && !state.shared) {
      save(TOKEN_KEY, null);
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
    $('logout').hidden = !on || state.shared;
    if (window.NpStart) window.NpStart.welcome(!on);
  }

  /* the URL: everything that makes a view, so it can be bookmarked (never the token) */
  function writeUrl() {
    var next = new URL(window.location.href);
    var keep = { site: state.site, range: state.days === 30 ? '' : state.days, bots: state.bots ? '1' : '',
                 tab: state.tab === 'web' ? '' : state.tab, user: state.user || '' };
    FILTERS.forEach(function (f) { keep[f] = state.filters[f] || ''; });
    ['site', 'range', 'bots', 'tab', 'user', 'goal'].concat(FILTERS).forEach(function (k) { next.searchParams.delete(k); });
    Object.keys(keep).forEach(function (k) { if (keep[k]) next.searchParams.set(k, keep[k]); });
    state.goals.forEach(function (g) { next.searchParams.append('goal', g); });
    window.history.replaceState(null, '', next.pathname + next.search + next.hash);
  }

  function readUrl() {
    var p = url.searchParams;
    state.site = (p.get('site') || '').toLowerCase() || null;
    if (p.get('range')) state.days = +p.get('range') || 30;
    state.bots = p.get('bots') === '1';
    state.tab = p.get('tab') || 'web';
    if (/^#alerts\/\d+$/.test(window.location.hash)) state.tab = 'alerts';  // a notification's link
    FILTERS.forEach(function (f) { if (p.get(f)) state.filters[f] = p.get(f); });
    var fragment = new URLSearchParams(window.location.hash.slice(1));
    if (fragment.get('share')) { state.token = fragment.get('share'); state.shared = true; }
  }

  /* One window for every tab and form: the last state.days whole days of ZONE (the browser's time zone), today
     included: the product queries' and the web reads' start_date/end_date with tz, the funnel and retention dates. */
  var ZONE = browserZone();

  function browserZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (e) { return 'UTC'; }
  }

  /* the web range's days, and the previous range of the same length */
  function range(previous) {
    var shift = previous ? state.days : 0;
    return { start_date: isoDay(-(state.days - 1) - shift), end_date: isoDay(-shift) };
  }

  function webParams(extra, previous) {
    var r = range(previous), p = { site: state.site, start_date: r.start_date, end_date: r.end_date, tz: ZONE,
                                   include_bots: state.bots ? 'true' : '' };
    FILTERS.forEach(function (f) { if (state.filters[f]) p[f] = state.filters[f]; });
    return Object.assign(p, extra || {});
  }

  var oneDecimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var percentFormat = new Intl.NumberFormat(undefined, { style: 'percent', minimumFractionDigits: 1,
                                                         maximumFractionDigits: 1 });

  function percent(rate) { return rate === null || rate === undefined ? '-' : percentFormat.format(rate); }

  /* a figure to one decimal in the browser's locale (views per session: 2.7) */
  function decimal(value) { return value === null || value === undefined ? '-' : oneDecimal.format(value); }

  function seconds(value) {
    value = Math.round(value || 0);
    if (value < 60) return value + 's';
    if (value < 3600) return Math.floor(value / 60) + 'm ' + (value % 60) + 's';
    return Math.floor(value / 3600) + 'h ' + Math.floor((value % 3600) / 60) + 'm';
  }

  /* the day (YYYY-MM-DD) offsetDays from today, in ZONE's calendar */
  function isoDay(offsetDays) {
    var parts = {};
    new Intl.DateTimeFormat('en-US', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' })
      .formatToParts(new Date()).forEach(function (part) { parts[part.type] = part.value; });
    return new Date(Date.UTC(+parts.year, +parts.month - 1, +parts.day + offsetDays)).toISOString().slice(0, 10);
  }

  function productDates() { return { start_date: isoDay(-(state.days - 1)), end_date: isoDay(0), tz: ZONE }; }

  /* states the window in the header and sets the funnel's and retention's dates to it */
  function showWindow() {
    var dates = productDates();
    $('window').textContent = (dates.start_date === dates.end_date ? dates.end_date
      : dates.start_date + ' to ' + dates.end_date) + ' (' + ZONE + ')';
    ['funnel', 'retention'].forEach(function (form) {
      if (!$(form + '-start')) return;
      $(form + '-start').value = dates.start_date;
      $(form + '-end').value = dates.end_date;
    });
  }

  /* tables: cells are text, a number, or {text, filter: [param, value]} (the row filters the dashboard), or
     {text, user: id} (opens the person), or {text, number: true} (a figure shown as text), or {text, title} (a
     name: ellipsized on one line, whole in its title), or {node}; numbers are shown in the browser's locale;
     every table can be exported as CSV (numbers and figures are its numeric cells, with their raw value:
     static/csv.js); a column of figures is right-aligned, a column of text left-aligned */
  var FIGURE = /^[−+\-]?[\d.,\s]+(%|s|m \d+s|h \d+m)?$/;

  function fillTable(table, rows, cells) {
    var body = table.querySelector('tbody');
    body.replaceChildren();
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      cells(row).forEach(function (cell) {
        var td = document.createElement('td');
        if (cell && typeof cell === 'object' && cell.node) td.appendChild(cell.node);
        else if (cell && typeof cell === 'object') {
          td.textContent = cell.text;
          if (cell.title !== undefined) {
            td.classList.add('name');
            td.title = cell.title;
          }
          if (cell.filter) {
            tr.className = 'clickable';
            tr.title = 'Filter by ' + cell.filter[0] + ' = ' + cell.filter[1];
            tr.setAttribute('data-filter', cell.filter[0]);
            tr.addEventListener('click', function () { addFilter(cell.filter[0], cell.filter[1]); });
          }
          if (cell.user) {
            td.replaceChildren(userLink(cell.user));
            td.classList.add('name');
            td.title = cell.user;
          }
          if (cell.share !== undefined) td.style.setProperty('--share', (cell.share * 100).toFixed(1) + '%');
          if (cell.share !== undefined) td.classList.add('bar-cell');
          if (cell.number) td.setAttribute('data-number', '');
        } else if (typeof cell === 'number') {
          td.textContent = window.NpCharts.format(cell);
          td.setAttribute('data-number', '');
          td.setAttribute('data-raw', String(cell));
        } else td.textContent = cell === null || cell === undefined ? '' : String(cell);
        if (td.hasAttribute('data-number') || (typeof cell === 'string' && FIGURE.test(cell))) td.classList.add('num');
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    var first = body.querySelector('tr');
    table.querySelectorAll('thead th').forEach(function (th, i) {
      var td = first && first.children[i];
      th.classList.toggle('num', !!(td && td.classList.contains('num')));
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

  function userLink(id) {
    var a = document.createElement('a');
    a.href = '#';
    a.className = 'user-link';
    a.textContent = id;
    a.setAttribute('data-user', id);
    a.addEventListener('click', function (event) { event.preventDefault(); openUser(id); });
    return a;
  }

  function openUser(id) {
    state.user = id;
    selectTab('people');
  }

  /* the table as shown, as CSV: formula-looking cells escaped, numeric cells written as numbers (csv.js) */
  function tableCsv(table) {
    var lines = [];
    table.querySelectorAll('tr').forEach(function (tr) {
      if (tr.querySelector('td.empty')) return;
      var cells = Array.prototype.map.call(tr.children, function (c) {
        return [c.hasAttribute('data-raw') ? c.getAttribute('data-raw') : c.textContent.trim(),
                c.hasAttribute('data-number')];
      });
      if (cells.some(function (c) { return c[0] !== ''; })) lines.push(cells);
    });
    return window.NpCsv.rows(lines);
  }

  function exportTable(id) {
    var table = $(id);
    var blob = new Blob([tableCsv(table)], { type: 'text/csv;charset=utf-8' });
    var a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = (state.site || 'analytics') + '-' + id + '.csv';
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }

  /* filters: chips, kept in the URL; a change reloads the web tab */
  function addFilter(name, value) {
    state.filters[name] = value;
    changed();
  }

  function drawChips() {
    var box = $('filters');
    box.replaceChildren();
    FILTERS.forEach(function (name) {
      if (!state.filters[name]) return;
      var chip = document.createElement('span'), remove = document.createElement('button');
      chip.className = 'chip';
      chip.setAttribute('data-filter', name);
      chip.textContent = name + ': ' + state.filters[name];
      remove.type = 'button';
      remove.textContent = '×';
      remove.setAttribute('aria-label', 'remove filter ' + name);
      remove.addEventListener('click', function () { delete state.filters[name]; changed(); });
      chip.appendChild(remove);
      box.appendChild(chip);
    });
  }

  function changed() {
    writeUrl();
    drawChips();
    return refresh();
  }

  function selectTab(tab) {
    if (state.shared && (tab === 'product' || tab === 'people' || tab === 'alerts')) tab = 'web';
    state.tab = tab;
    /* the shared view's range picker (the login form, and its picker, are hidden there) */
  $('shared-range').addEventListener('change', function () {
    state.days = +$('shared-range').value;
    $('range').value = String(state.days);
    changed();
  });
  document.querySelectorAll('.tabs button').forEach(function (b) {
      b.classList.toggle('active', b.getAttribute('data-tab') === tab);
    });
    ['web', 'realtime', 'product', 'people', 'alerts'].forEach(function (name) { $('tab-' + name).hidden = name !== tab; });
    $('filters').hidden = tab !== 'web';
    writeUrl();
    Object.keys(views).forEach(function (name) { if (views[name].leave && name !== tab) views[name].leave(); });
    return views[tab] ? views[tab].show().catch(failed) : Promise.resolve();
  }

  function refresh() {
    if (!state.site || !state.token) { show(false); return Promise.resolve(); }
    show(true);
    showWindow();
    return selectTab(state.tab);
  }

  function loadSites() {
    if (state.shared || !state.token) return Promise.resolve();
    return api('sites', { limit: 100 }).then(function (body) {
      var list = $('site-list');
      list.replaceChildren();
      body.data.forEach(function (row) {
        var option = document.createElement('option');
        option.value = row.site;
        option.label = row.pageviews + ' page views';
        list.appendChild(option);
      });
    }).catch(function () { /* the picker is a convenience; typing a site still works */ });
  }

  $('login').addEventListener('submit', function (event) {
    event.preventDefault();
    state.site = $('site').value.trim().toLowerCase();
    state.token = $('token').value.trim();
    state.days = +$('range').value;
    state.bots = $('bots').checked;
    save(SITE_KEY, state.site);
    save(TOKEN_KEY, state.token);
    writeUrl();
    loadSites();
    refresh();
  });
  $('logout').addEventListener('click', function () {
    save(TOKEN_KEY, null);
    state.token = null;
    $('token').value = '';
    show(false);
    message('Token forgotten.');
  });
  /* the shared view's range picker (the login form, and its picker, are hidden there) */
  $('shared-range').addEventListener('change', function () {
    state.days = +$('shared-range').value;
    $('range').value = String(state.days);
    changed();
  });
  document.querySelectorAll('.tabs button').forEach(function (button) {
    button.addEventListener('click', function () { selectTab(button.getAttribute('data-tab')); });
  });
  document.addEventListener('click', function (event) {
    var target = event.target.closest ? event.target.closest('button.export') : null;
    if (target) exportTable(target.getAttribute('data-export'));
  });

  window.NpDash = {
    $: $, state: state, api: api, send: send, failed: failed, message: message, fillTable: fillTable, userLink: userLink,
    webParams: webParams, productDates: productDates, isoDay: isoDay, zone: ZONE, writeUrl: writeUrl, changed: changed,
    register: function (name, view) { views[name] = view; }, charts: window.NpCharts, tableCsv: tableCsv,
    percent: percent, seconds: seconds, decimal: decimal, addFilter: addFilter
  };

  document.addEventListener('DOMContentLoaded', function () {
    readUrl();
    if (state.shared) {
      $('login').hidden = true;
      $('shared').hidden = false;
      $('shared-site').textContent = state.site || '(no site in the URL)';
      document.querySelectorAll('[data-private]').forEach(function (el) { el.hidden = true; });
      document.body.classList.add('shared');
    } else {
      state.site = state.site || load(SITE_KEY);
      state.token = load(TOKEN_KEY);
    }
    if (state.site) $('site').value = state.site;
    if (state.token && !state.shared) $('token').value = state.token;
    $('range').value = String(state.days);
    $('shared-range').replaceChildren.apply($('shared-range'), Array.prototype.map.call($('range').options,
      function (o) { return o.cloneNode(true); }));
    $('shared-range').value = String(state.days);
    $('bots').checked = state.bots;
    drawChips();
    loadSites();
    refresh();
  });
})();
