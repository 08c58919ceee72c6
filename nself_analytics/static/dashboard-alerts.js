/*
 * The alerts tab: the account's alerts with their state, a form that creates or edits one, and an alert's
 * check history as a chart of the checked values with its bounds. Talks to /alerts with the token.
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, state = D.state;
  var editing = null;  // the id of the alert in the form, or null for a new one

  function send(method, path, body) {
    return fetch(path, {
      method: method, body: body ? JSON.stringify(body) : undefined, cache: 'no-store', credentials: 'omit',
      headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json', 'Content-Type': 'application/json' }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.message || response.statusText);
        return data;
      });
    });
  }

  function value(id) { return $(id).value.trim(); }
  function number(id) { var v = value(id); return v === '' ? undefined : Number(v); }

  function describe(a) {
    var s = a.series;
    return s.kind + ': ' + (s.event || s.site || ('funnel ' + s.funnel_id)) + (s.stat ? ' ' + s.stat : '') +
      (s.metric ? ' ' + s.metric : '') + (s.measure && s.kind === 'trend' ? ' ' + s.measure : '');
  }

  function bounds(a) {
    var c = a.condition;
    if (c.threshold !== undefined) return (a.series.kind === 'traffic_spike' ? '>= ' : '< ') + c.threshold;
    return [c.lower !== undefined ? 'lower ' + c.lower : '', c.upper !== undefined ? 'upper ' + c.upper : '']
      .filter(Boolean).join(', ') + (c.type !== 'absolute_value' ? ' (' + c.type + ', ' + (c.mode || 'absolute') + ')' : '');
  }

  function body() {
    var kind = value('alert-kind'), target = value('alert-target'), series = { kind: kind };
    if (kind === 'trend') { series.event = target; series.measure = value('alert-measure') || 'count'; }
    else if (kind === 'metric') { series.metric = 'event_count'; series.event = target; }
    else if (kind === 'funnel') series.funnel_id = Number(target);
    else series.site = target;
    if (kind === 'web') {
      series.stat = value('alert-measure') || 'visitors';
      if (series.stat === 'goal_conversions') series.goal = value('alert-goal');
    }
    var traffic = kind === 'traffic_spike' || kind === 'traffic_drop';
    var condition = traffic ? { threshold: number('alert-threshold') } :
      { type: value('alert-condition'), lower: number('alert-lower'), upper: number('alert-upper') };
    if (!traffic && value('alert-condition') !== 'absolute_value') condition.mode = value('alert-mode');
    var emails = value('alert-emails').split(',').map(function (e) { return e.trim(); }).filter(Boolean);
    var channels = { webhook: $('alert-webhook').checked, emails: emails };
    if (value('alert-telegram')) channels.telegram_chat = value('alert-telegram');
    if (value('alert-discord')) channels.discord_channel = value('alert-discord');
    return { name: value('alert-name'), series: series, condition: condition,
             interval: traffic ? '15m' : value('alert-interval'), timezone: value('alert-tz') || 'UTC',
             skip_weekends: $('alert-weekends').checked, notify_on_resolve: $('alert-resolve').checked,
             channels: channels };
  }

  function fill(a) {
    editing = a ? a.id : null;
    var s = a ? a.series : { kind: 'trend' }, c = a ? a.condition : {}, ch = a ? a.channels : {};
    $('alert-name').value = a ? a.name : '';
    $('alert-kind').value = s.kind;
    $('alert-target').value = s.event || s.site || s.funnel_id || '';
    $('alert-measure').value = s.stat || (s.kind === 'trend' ? s.measure : '') || '';
    $('alert-goal').value = s.goal || '';
    $('alert-condition').value = c.type || 'absolute_value';
    $('alert-mode').value = c.mode || 'absolute';
    $('alert-lower').value = c.lower !== undefined ? c.lower : '';
    $('alert-upper').value = c.upper !== undefined ? c.upper : '';
    $('alert-threshold').value = c.threshold || '';
    $('alert-interval').value = a ? a.interval : 'daily';
    $('alert-tz').value = a ? a.timezone : (Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
    $('alert-weekends').checked = !!(a && a.skip_weekends);
    $('alert-resolve').checked = !!(a && a.notify_on_resolve);
    $('alert-webhook').checked = !!ch.webhook;
    $('alert-telegram').value = ch.telegram_chat || '';
    $('alert-discord').value = ch.discord_channel || '';
    $('alert-emails').value = (ch.emails || []).join(', ');
    $('alert-save').textContent = a ? 'Save alert ' + a.id : 'Create alert';
  }

  function history(a) {
    $('alert-history').hidden = false;
    $('alert-history-title').textContent = a.name + ' (' + describe(a) + ', ' + bounds(a) + ')';
    return send('GET', 'alerts/' + a.id + '/checks?limit=200').then(function (data) {
      var rows = data.checks.slice().reverse(), c = a.condition;
      var points = rows.map(function (r) {
        return { label: r.period_start.slice(5, 16).replace('T', ' '), value: r.value, lower: c.lower,
                 upper: c.upper !== undefined ? c.upper : c.threshold };
      });
      var chart = $('alert-chart');
      chart.replaceChildren();
      D.charts.lineChart(chart, points, { title: 'checked values', series: [
        { key: 'value', name: 'value', className: 'series-0' },
        { key: 'lower', name: 'lower', className: 'series-1', dashed: true },
        { key: 'upper', name: 'upper', className: 'series-1', dashed: true }] });
      D.fillTable($('alert-checks'), data.checks, function (r) {
        return [r.period_start.slice(0, 16).replace('T', ' '), r.state, r.value === null ? '' : r.value,
                r.notified || '', r.error || ''];
      });
    });
  }

  function show() {
    return send('GET', 'alerts').then(function (data) {
      var tbody = $('alerts-table').querySelector('tbody');
      tbody.replaceChildren();
      data.alerts.forEach(function (a) {
        var tr = document.createElement('tr');
        [a.name, describe(a), bounds(a), a.interval + ' ' + a.timezone, a.enabled ? a.state : 'disabled',
         a.last_value === null ? '' : String(a.last_value)].forEach(function (text) {
          var td = document.createElement('td'); td.textContent = text; tr.appendChild(td);
        });
        var actions = document.createElement('td');
        [['History', function () { history(a).catch(D.failed); }], ['Edit', function () { fill(a); }],
         ['Delete', function () { send('DELETE', 'alerts/' + a.id).then(show).catch(D.failed); }]]
          .forEach(function (pair) {
            var b = document.createElement('button'); b.type = 'button'; b.textContent = pair[0];
            b.addEventListener('click', pair[1]); actions.appendChild(b);
          });
        tr.appendChild(actions);
        tr.className = 'state-' + a.state;
        tbody.appendChild(tr);
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    fill(null);
    $('alert-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var request = editing ? send('PATCH', 'alerts/' + editing, body()) : send('POST', 'alerts', body());
      request.then(function () { fill(null); D.message('Alert saved'); return show(); })
        .catch(function (error) { D.message(error.message, true); });
    });
    $('alert-new').addEventListener('click', function () { fill(null); });
  });

  D.register('alerts', { show: show });
}());
