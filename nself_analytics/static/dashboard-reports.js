/*
 * The report subscriptions of the alerts tab: the account's scheduled reports with their recipients and when
 * each was last sent, a form that creates or edits one, and "Send now" (POST /reports/{id}/send: the last
 * complete period's report, queued for the leader's sender). Talks to /reports with the token; shown by
 * dashboard-alerts.js through D.reports.
 */
(function () {
  'use strict';
  var D = window.NpDash, $ = D.$, send = D.send;
  var editing = null;  // the id of the report in the form, or null for a new one

  function value(id) { return $(id).value.trim(); }
  function list(id) { return value(id).split(',').map(function (e) { return e.trim(); }).filter(Boolean); }

  function recipients(r) {
    var ch = r.channels, out = (ch.emails || []).slice();
    if (ch.telegram_chat) out.push('Telegram ' + ch.telegram_chat);
    if (ch.discord_channel) out.push('Discord ' + ch.discord_channel);
    return out.join(', ');
  }

  function body() {
    var channels = { emails: list('report-emails') };
    if (value('report-telegram')) channels.telegram_chat = value('report-telegram');
    if (value('report-discord')) channels.discord_channel = value('report-discord');
    return { name: value('report-name'), period: value('report-period'), hour: Number(value('report-hour')),
             timezone: value('report-tz') || 'UTC', site: value('report-site') || null, goals: list('report-goals'),
             funnel_id: value('report-funnel') ? Number(value('report-funnel')) : null,
             enabled: $('report-enabled').checked, channels: channels };
  }

  function fill(r) {
    editing = r ? r.id : null;
    var ch = r ? r.channels : {};
    $('report-name').value = r ? r.name : '';
    $('report-period').value = r ? r.period : 'weekly';
    $('report-hour').value = r ? r.hour : 8;
    $('report-tz').value = r ? r.timezone : (Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
    $('report-site').value = r ? (r.site || '') : (D.state.site || '');
    $('report-goals').value = r ? r.goals.join(', ') : '';
    $('report-funnel').value = r && r.funnel_id ? r.funnel_id : '';
    $('report-emails').value = (ch.emails || []).join(', ');
    $('report-telegram').value = ch.telegram_chat || '';
    $('report-discord').value = ch.discord_channel || '';
    $('report-enabled').checked = r ? r.enabled : true;
    $('report-save').textContent = r ? 'Save report ' + r.id : 'Create report';
  }

  function sendNow(r) {
    return send('POST', 'reports/' + r.id + '/send').then(function (data) {
      D.message('Report "' + r.name + '" queued: ' + data.queued + ' message' + (data.queued === 1 ? '' : 's') +
                ', sent within a minute');
    });
  }

  function show() {
    return send('GET', 'reports').then(function (data) {
      D.fillTable($('reports-table'), data.reports, function (r) {
        var actions = document.createElement('span');
        [['Send now', function () { sendNow(r).catch(D.failed); }], ['Edit', function () { fill(r); }],
         ['Delete', function () { send('DELETE', 'reports/' + r.id).then(show).catch(D.failed); }]]
          .forEach(function (pair) {
            var b = document.createElement('button'); b.type = 'button'; b.textContent = pair[0];
            b.addEventListener('click', pair[1]); actions.appendChild(b);
          });
        var when = r.period + ' at ' + String(r.hour).padStart(2, '0') + ':00 ' + r.timezone;
        return [r.name, r.enabled ? when : when + ' (disabled)', r.site || 'product only', recipients(r),
                r.last_sent_at ? r.last_sent_at.slice(0, 16).replace('T', ' ') : 'not yet', { node: actions }];
      });
      var rows = $('reports-table').querySelectorAll('tbody tr');
      data.reports.forEach(function (r, i) { rows[i].setAttribute('data-report', r.id); });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    fill(null);
    $('report-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var request = editing ? send('PATCH', 'reports/' + editing, body()) : send('POST', 'reports', body());
      request.then(function () { fill(null); D.message('Report saved'); return show(); })
        .catch(function (error) { D.message(error.message, true); });
    });
    $('report-new').addEventListener('click', function () { fill(null); });
  });

  D.reports = { show: show };
}());
