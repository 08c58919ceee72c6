/*
 * The alerts tab: the account's alerts with their state, a form that creates or edits one, and an alert's
 * check history as a chart of the checked values with its bounds (each point coloured by the state the check
 * left: data-state) and the notifications sent, failed or pending. Talks to /alerts with the token. The
 * tab's report subscriptions are dashboard-reports.js's (D.reports). A notification's link,
 * dashboard#alerts/<id>, opens that alert's history.
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, send = D.send;
  var editing = null;  // the id of the alert in the form, or null for a new one

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
      .filter(Boolean).join(', ') +
      (c.type && c.type !== 'absolute_value' ? ' (' + c.type + ', ' + (c.mode || 'absolute') + ')' : '');
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
    $('alert-interval').value = (a && a.interval) || 'daily';  // the API leaves out fields at their default
    $('alert-tz').value = a ? a.timezone || 'UTC' : (Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
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
    $('alert-history-title').textContent = a.name + ' (' + describe(a) + ', ' + bounds(a) + '): ' +
      (a.enabled ? a.state.replace('_', ' ') : 'disabled');
    return send('GET', 'alerts/' + a.id + '/checks?limit=200').then(function (data) {
      var rows = data.checks.slice().reverse(), c = a.condition;
      var upper = c.upper !== undefined ? c.upper : c.threshold, series = [
        { key: 'value', name: 'value', className: 'series-0' }];
      if (c.lower !== undefined) series.push({ key: 'lower', name: 'lower bound', className: 'series-1', dashed: true });
      if (upper !== undefined) series.push({ key: 'upper', name: c.threshold ? 'threshold' : 'upper bound',
                                             className: 'series-1', dashed: true });
      var points = rows.map(function (r) {
        return { label: r.period_start.slice(5, 16).replace('T', ' '), value: r.value, lower: c.lower, upper: upper };
      });
      var chart = $('alert-chart');
      chart.replaceChildren();
      var svg = D.charts.lineChart(chart, points, { title: 'checked values', series: series });
      svg.querySelectorAll('circle[data-series=value]').forEach(function (dot, i) {
        dot.setAttribute('data-state', rows[i].state);
        dot.classList.add('state-' + rows[i].state);
        dot.querySelector('title').textContent += ' (' + rows[i].state.replace('_', ' ') + ')';
      });
      D.fillTable($('alert-checks'), data.checks, function (r) {
        return [r.period_start.slice(0, 16).replace('T', ' '), r.state, r.value === null ? '' : r.value,
                r.notified || '', r.error || ''];
      });
      $('alert-deliveries').hidden = !data.notifications.length;
      D.fillTable($('alert-sent'), data.notifications, function (n) {
        return [n.created_at.slice(0, 16).replace('T', ' '), n.channel, n.target, n.status, n.attempts,
                n.last_error || ''];
      });
    });
  }

  function show() {
    return Promise.all([listAlerts(), D.reports.show()]);
  }

  function listAlerts() {
    return send('GET', 'alerts').then(function (data) {
      var tbody = $('alerts-table').querySelector('tbody');
      tbody.replaceChildren();
      data.alerts.forEach(function (a) {
        var tr = document.createElement('tr');
        [a.name, describe(a), bounds(a), (a.interval || 'daily') + ' ' + (a.timezone || 'UTC'),
         a.enabled ? a.state : 'disabled',
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
        tr.setAttribute('data-alert', a.id);
        tbody.appendChild(tr);
      });
      var linked = /^#alerts\/(\d+)$/.exec(window.location.hash);
      var alert = linked && data.alerts.filter(function (a) { return a.id === +linked[1]; })[0];
      if (alert) return history(alert);
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
