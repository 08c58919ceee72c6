/*
 * The product tab (trends first, with pickers fed by /events and /events/{name}/properties; funnels with a
 * breakdown; retention; the event list) and the people tab (search, trait filter, one person's page).
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, charts = D.charts, state = D.state;
  var events = null;  // names from /events, most frequent first
  var people = { offset: 0, limit: 25 }, person = { offset: 0, limit: 20 };

  var percent = D.percent, seconds = D.seconds;
  var dayFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit',
                                                        timeZone: 'UTC' });
  var stampFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric',
                                                         hour: '2-digit', minute: '2-digit', timeZone: 'UTC' });

  /* an ISO time (microseconds and all) as the reader's locale writes it, in UTC */
  function when(iso, format) {
    if (!iso) return '-';
    var date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + 'Z');
    return isNaN(date) ? iso : (format || stampFormat).format(date);
  }

  /* a property or trait value as text: nested objects flattened to "key: value", lists joined; never raw JSON */
  function valueText(v) {
    if (v === null || v === undefined) return '-';
    if (Array.isArray(v)) return v.map(valueText).join(', ');
    if (typeof v === 'object') return Object.keys(v).map(function (k) { return k + ': ' + valueText(v[k]); }).join(' · ');
    if (typeof v === 'number') return charts.format(v);
    return String(v);
  }

  /* an event's properties as "key value" pairs (a definition list) */
  function propertyList(props) {
    var dl = document.createElement('dl');
    dl.className = 'props';
    Object.keys(props || {}).forEach(function (k) {
      var dt = document.createElement('dt'), dd = document.createElement('dd');
      dt.textContent = k;
      dt.title = k;
      dd.textContent = valueText(props[k]);
      dd.title = dd.textContent;
      dl.append(dt, dd);
    });
    return dl;
  }

  function options(select, values, keep) {
    var current = select.value;
    select.replaceChildren();
    (keep || []).concat(values).forEach(function (v) {
      var option = document.createElement('option');
      option.value = typeof v === 'string' ? v : v[0];
      option.textContent = typeof v === 'string' ? v : v[1];
      select.appendChild(option);
    });
    if (Array.prototype.some.call(select.options, function (o) { return o.value === current; })) select.value = current;
  }

  function loadEvents() {
    return D.api('events', Object.assign(D.productDates(), { limit: 200 })).then(function (body) {
      events = body.data;
      var names = events.map(function (e) { return e.event; });
      options($('trends-event-1'), names);
      options($('trends-event-2'), names, [['', '(none)']]);
      var list = $('event-list');
      list.replaceChildren();
      names.forEach(function (n) { var o = document.createElement('option'); o.value = n; list.appendChild(o); });
      D.fillTable($('events-table'), events, function (e) {
        return [{ text: e.event, title: e.event }, e.count, when(e.first_seen, dayFormat), when(e.last_seen, dayFormat)];
      });
      return loadProperties();
    });
  }

  /* the property pickers (measure property, breakdowns) follow the first event's properties */
  function loadProperties() {
    var first = $('trends-event-1').value;
    var funnelFirst = $('funnel-steps').value.split(',')[0].trim() || first;
    var fetches = [first, funnelFirst].map(function (name) {
      if (!name) return Promise.resolve([]);
      return D.api('events/' + encodeURIComponent(name) + '/properties', Object.assign(D.productDates(), { values: 0 }))
        .then(function (body) { return body.data; });
    });
    return Promise.all(fetches).then(function (r) {
      options($('trends-breakdown'), r[0].map(function (k) { return k.key; }), [['', '(none)']]);
      options($('trends-property'), r[0].filter(function (k) { return k.types.indexOf('number') >= 0; })
        .map(function (k) { return k.key; }));
      options($('funnel-breakdown'), r[1].map(function (k) { return k.key; }), [['', '(none)']]);
    });
  }

  function seriesName(s) {
    var name = s.event;
    if (s.other) name += ' · other';
    else if ($('trends-breakdown').value) name += ' · ' + (s.breakdown_value === null ? '(none)' : s.breakdown_value);
    return name;
  }

  function runTrends(event) {
    if (event) event.preventDefault();
    var names = [$('trends-event-1').value, $('trends-event-2').value].filter(Boolean);
    if (!names.length) { D.message('No events in this range yet.'); return Promise.resolve(); }
    var measure = $('trends-measure').value;
    if (measure === 'sum' || measure === 'avg') {
      if (!$('trends-property').value) { D.message('Pick a numeric property to ' + measure, true); return Promise.resolve(); }
      measure += ':' + $('trends-property').value;
    }
    var params = Object.assign(D.productDates(), {
      events: names.join(','), interval: $('trends-interval').value, measure: measure,
      breakdown: $('trends-breakdown').value, compare: $('trends-compare').checked ? 'previous' : ''
    });
    if (params.interval === 'hour' && state.days > 31) params.start_date = D.isoDay(-6);
    return D.api('trends', params).then(function (body) {
      var series = body.series.slice(0, 10), before = body.previous ? body.previous.series : [];
      var points = body.buckets.map(function (b, i) {
        var point = { label: body.interval === 'hour' ? b.slice(5, 13).replace('T', ' ') : b.slice(5) };
        series.forEach(function (s, k) {
          point['s' + k] = s.data[i] || 0;
          if (before[k]) point['p' + k] = before[k].data[i] || 0;
        });
        return point;
      });
      var lines = [];
      series.forEach(function (s, k) {
        lines.push({ key: 's' + k, name: seriesName(s), className: 'series-' + k });
        if (body.previous) lines.push({ key: 'p' + k, name: seriesName(s) + ' (previous)', className: 'series-' + k,
                                        dashed: true });
      });
      charts.lineChart($('trends-chart'), points, { title: 'trends', series: lines, height: 260 });
      D.fillTable($('trends-table'), body.series, function (s) {
        var prev = before.filter(function (p) {
          return p.event === s.event && p.breakdown_value === s.breakdown_value && p.other === s.other;
        })[0];
        var total = s.total === null ? '-' : charts.format(s.total);
        var previous = prev && prev.total !== null ? charts.format(prev.total) : '-';
        var c = prev && prev.total ? ((s.total - prev.total) / prev.total * 100).toFixed(1) + '%' : '';
        return [seriesName(s), { text: total, number: s.total !== null },
                body.previous ? { text: previous, number: !!prev && prev.total !== null } : '',
                body.previous ? c : ''];
      });
      D.message('');
    });
  }

  function funnelBreakdown(body) {
    var table = $('funnel-breakdown-table'), exporter = document.querySelector('[data-export=funnel-breakdown-table]');
    var on = !!body.breakdown;
    table.hidden = !on;
    exporter.hidden = !on;
    if (!on) return;
    var head = document.createElement('tr');
    [body.breakdown].concat(body.steps.map(function (s) { return s.event; }), ['Conversion']).forEach(function (t) {
      var th = document.createElement('th');
      th.textContent = t;
      head.appendChild(th);
    });
    table.querySelector('thead').replaceChildren(head);
    D.fillTable(table, body.breakdown_values, function (g) {
      var last = g.steps[g.steps.length - 1];
      return [g.value === null ? '(none)' : g.value].concat(g.steps.map(function (s) { return s.users; }),
        [percent(last.conversion_from_start)]);
    });
  }

  function runFunnel(event) {
    if (event) event.preventDefault();
    var steps = $('funnel-steps').value.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
    $('funnel-result').hidden = false;
    return D.api('funnel', { steps: steps.join(','), start_date: $('funnel-start').value, tz: D.zone,
                             end_date: $('funnel-end').value, window: $('funnel-window').value,
                             breakdown: $('funnel-breakdown').value }).then(function (body) {
      var rows = body.steps || [];
      charts.barChart($('funnel-chart'), rows.map(function (s) {
        return { label: s.event, value: s.users, rate: s.conversion_from_start };
      }), { title: 'funnel', format: function (r) { return charts.format(r.value) + ' · ' + percent(r.rate); } });
      D.fillTable($('funnel-table'), rows, function (s) {
        return [s.event, s.users, percent(s.conversion_from_start), percent(s.conversion_from_previous), s.drop_off,
                s.median_seconds_from_previous === null ? '-' : seconds(s.median_seconds_from_previous)];
      });
      funnelBreakdown(body);
      D.message('');
    }).catch(D.failed);
  }

  function runRetention(event) {
    if (event) event.preventDefault();
    return D.api('retention', { start_date: $('retention-start').value, end_date: $('retention-end').value,
                                tz: D.zone,
                                period: $('retention-period').value, start_event: $('retention-start-event').value,
                                return_event: $('retention-return-event').value }).then(function (body) {
      var rows = body.data || [];
      $('retention-result').hidden = !rows.length;
      var columns = rows.reduce(function (n, r) { return Math.max(n, r.retained.length); }, 0);
      var table = $('retention-table'), head = document.createElement('tr');
      ['Cohort', 'Users'].concat(Array.from({ length: columns }, function (_, k) {
        return body.period + ' ' + k;
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
      D.message(rows.length ? '' : 'No cohorts in this range.');
    }).catch(D.failed);
  }

  function showProduct() {
    var first = events === null;
    return loadEvents().then(function () { return first || $('trends-chart').children.length === 0 ? runTrends() : null; });
  }

  /* people */
  function traitFilter() {
    var text = $('people-trait').value.trim(), params = {};
    if (!text) return params;
    var at = text.indexOf('=');
    if (at > 0) params['trait.' + text.slice(0, at).trim()] = text.slice(at + 1).trim();
    return params;
  }

  function loadPeople() {
    var params = Object.assign({ search: $('people-search').value.trim(), limit: people.limit,
                                 offset: people.offset }, traitFilter());
    return D.api('users', params).then(function (body) {
      D.fillTable($('people-table'), body.data, function (u) {
        var traits = Object.keys(u.traits).slice(0, 4).map(function (k) { return k + ': ' + valueText(u.traits[k]); })
          .join(' · ');
        return [{ text: u.user_id, user: u.user_id }, { text: traits, title: traits }, when(u.first_seen, dayFormat),
                when(u.last_seen, dayFormat)];
      });
      $('people-prev').disabled = people.offset === 0;
      $('people-next').disabled = !body.has_more;
      D.message('');
    });
  }

  function loadPerson() {
    return D.api('users/' + encodeURIComponent(state.user), { limit: person.limit, offset: person.offset })
      .then(function (p) {
        $('person-id').textContent = p.id;
        $('person-first').textContent = when(p.first_seen);
        $('person-last').textContent = when(p.last_seen);
        $('person-count').textContent = p.event_count;
        var linked = $('person-linked');
        linked.replaceChildren();
        p.linked_ids.forEach(function (id, i) {
          if (i) linked.appendChild(document.createTextNode(', '));
          linked.appendChild(D.userLink(id));
        });
        if (!p.linked_ids.length) linked.textContent = '-';
        D.fillTable($('person-traits'), Object.keys(p.traits), function (k) {
          var v = p.traits[k];
          return [k, { text: valueText(v), title: valueText(v) }];
        });
        D.fillTable($('person-counts'), p.event_counts, function (c) { return [c.event, c.count]; });
        var lastDay = null;
        D.fillTable($('person-events'), p.events, function (e) {
          var day = when(e.ts, dayFormat), time = document.createElement('span');
          time.className = 'when';
          time.innerHTML = day === lastDay ? '' : '<b></b>';
          if (day !== lastDay) time.firstChild.textContent = day;
          time.appendChild(document.createTextNode(when(e.ts, timeFormat)));
          lastDay = day;
          return [{ node: time }, { text: e.event, title: e.event }, { text: e.distinct_id, user: e.distinct_id },
                  { text: e.path || '', title: e.path || '' }, { node: propertyList(e.properties) }];
        });
        $('person-newer').disabled = person.offset === 0;
        $('person-older').disabled = !p.more_events;
        D.message('');
      });
  }

  function showPeople() {
    $('person').hidden = !state.user;
    $('people-list').hidden = !!state.user;
    return state.user ? loadPerson() : loadPeople();
  }

  $('trends-form').addEventListener('submit', function (e) { runTrends(e).catch(D.failed); });
  $('trends-event-1').addEventListener('change', function () { loadProperties().catch(D.failed); });
  $('trends-measure').addEventListener('change', function () {
    $('trends-property-label').hidden = ['sum', 'avg'].indexOf($('trends-measure').value) < 0;
  });
  $('funnel-steps').addEventListener('change', function () { loadProperties().catch(D.failed); });
  $('funnel-form').addEventListener('submit', runFunnel);
  $('retention-form').addEventListener('submit', runRetention);
  /* the funnel's and retention's dates follow the range picker (dashboard.js showWindow) */
  ['funnel', 'retention'].forEach(function (form) {
    var dates = D.productDates();
    $(form + '-start').value = dates.start_date;
    $(form + '-end').value = dates.end_date;
  });
  $('people-form').addEventListener('submit', function (e) {
    e.preventDefault();
    people.offset = 0;
    loadPeople().catch(D.failed);
  });
  $('people-prev').addEventListener('click', function () {
    people.offset = Math.max(0, people.offset - people.limit);
    loadPeople().catch(D.failed);
  });
  $('people-next').addEventListener('click', function () { people.offset += people.limit; loadPeople().catch(D.failed); });
  $('person-close').addEventListener('click', function () {
    state.user = null;
    D.writeUrl();
    showPeople().catch(D.failed);
  });
  $('person-newer').addEventListener('click', function () {
    person.offset = Math.max(0, person.offset - person.limit);
    loadPerson().catch(D.failed);
  });
  $('person-older').addEventListener('click', function () { person.offset += person.limit; loadPerson().catch(D.failed); });

  D.register('product', { show: showProduct });
  D.register('people', { show: function () { person.offset = 0; return showPeople(); } });
})();
