/*
 * Cards that group related lists behind tabs (Pages: top/entry/exit..., Sources: referrers/UTM..., Locations:
 * map/countries/languages, Devices: device/browser/OS/screen). A tab whose list came back empty is hidden; a card
 * with no list holding data is hidden, and named in one line under the grid ("No data in this range: ...").
 * The Locations card's map is the offline world map of static/vendor/world-map.svg (Natural Earth, see its
 * LICENSE), shaded by the countries list. window.NpCards; used by dashboard-web.js.
 */
(function () {
  'use strict';
  var D = window.NpDash;
  var mapSvg = null;  // the world map's text, fetched once

  /* groups: [{id, title, tabs: [{id, title, columns, map}]}] -> the cards in ``grid`` (built once) */
  function build(grid, groups) {
    if (grid.children.length) return;
    groups.forEach(function (group) {
      var card = document.createElement('div'), head = document.createElement('div');
      var h = document.createElement('h2'), strip = document.createElement('div');
      card.className = 'card tabbed';
      card.id = group.id;
      head.className = 'card-head';
      h.textContent = group.title;
      strip.className = 'card-tabs';
      strip.setAttribute('role', 'tablist');
      head.append(h, strip);
      card.appendChild(head);
      group.tabs.forEach(function (tab, i) {
        var button = document.createElement('button'), panel = document.createElement('div');
        button.type = 'button';
        button.textContent = tab.title;
        button.setAttribute('role', 'tab');
        button.setAttribute('data-card-tab', tab.id);
        button.addEventListener('click', function () { select(card, tab.id, true); });
        strip.appendChild(button);
        panel.className = 'card-panel';
        panel.setAttribute('data-panel', tab.id);
        panel.hidden = i > 0;
        if (tab.map) {
          var box = document.createElement('div');
          box.id = tab.id;
          box.className = 'world-map';
          panel.appendChild(box);
        } else {
          var tableBox = document.createElement('div'), table = document.createElement('table');
          var exporter = document.createElement('button');
          tableBox.className = 'table-box';
          table.id = tab.id;
          table.className = 'list';
          table.setAttribute('data-title', tab.title);
          table.innerHTML = '<thead><tr></tr></thead><tbody></tbody>';
          tab.columns.forEach(function (c) {
            var th = document.createElement('th');
            th.textContent = c;
            table.querySelector('tr').appendChild(th);
          });
          exporter.type = 'button';
          exporter.className = 'export';
          exporter.setAttribute('data-export', tab.id);
          exporter.textContent = 'Export CSV';
          tableBox.appendChild(table);
          panel.append(tableBox, exporter);
        }
        card.appendChild(panel);
      });
      grid.appendChild(card);
    });
  }

  /* shows one tab of a card; ``chosen``: the reader clicked it (kept while it has data) */
  function select(card, id, chosen) {
    if (chosen) card.setAttribute('data-chosen', id);
    card.querySelectorAll('[data-card-tab]').forEach(function (b) {
      var on = b.getAttribute('data-card-tab') === id;
      b.classList.toggle('active', on);
      b.setAttribute('aria-selected', on ? 'true' : 'false');
    });
    card.querySelectorAll('[data-panel]').forEach(function (p) { p.hidden = p.getAttribute('data-panel') !== id; });
  }

  /* marks whether the list ``id`` has data (after its answer); settle() then shows what has any */
  function mark(id, rows) {
    var button = document.querySelector('[data-card-tab="' + id + '"]');
    if (button) button.setAttribute('data-rows', String(rows));
  }

  /* hides the tabs without data and the cards without any; lists the hidden cards in ``note`` */
  function settle(grid, note) {
    var empty = [];
    grid.querySelectorAll('.card.tabbed').forEach(function (card) {
      var shown = [];
      card.querySelectorAll('[data-card-tab]').forEach(function (b) {
        var has = +(b.getAttribute('data-rows') || 0) > 0;
        b.hidden = !has;
        if (has) shown.push(b.getAttribute('data-card-tab'));
      });
      card.hidden = !shown.length;
      card.querySelector('.card-tabs').classList.toggle('single', shown.length < 2);
      if (!shown.length) { empty.push(card.querySelector('h2').textContent); return; }
      var chosen = card.getAttribute('data-chosen');
      select(card, shown.indexOf(chosen) >= 0 ? chosen : shown[0], false);
    });
    note.textContent = empty.length ? 'No data in this range: ' + empty.join(', ') + '.' : '';
    note.hidden = !empty.length;
  }

  function loadMap() {
    if (mapSvg) return Promise.resolve(mapSvg);
    return fetch('static/vendor/world-map.svg', { credentials: 'omit' }).then(function (r) { return r.text(); })
      .then(function (text) { mapSvg = text; return text; });
  }

  /* shades the countries of ``rows`` ([{country, pageviews}]) on the map in ``box``; a click filters by country */
  function drawMap(box, rows) {
    return loadMap().then(function (text) {
      if (!box.querySelector('svg')) {
        box.innerHTML = text;
        var svg = box.querySelector('svg');
        svg.setAttribute('role', 'img');
        svg.setAttribute('aria-label', 'page views by country');
        svg.setAttribute('width', '100%');
      }
      var max = Math.max.apply(null, [1].concat(rows.map(function (r) { return r.pageviews; }))), by = {};
      rows.forEach(function (r) { if (r.country) by[String(r.country).toUpperCase()] = r; });
      box.querySelectorAll('path[data-cc]').forEach(function (path) {
        var row = by[path.getAttribute('data-cc')], title = path.querySelector('title');
        if (!title) { title = document.createElementNS('http://www.w3.org/2000/svg', 'title'); path.appendChild(title); }
        path.classList.toggle('has-data', !!row);
        path.style.setProperty('--heat', row ? (0.2 + 0.8 * row.pageviews / max).toFixed(3) : '0');
        path.setAttribute('data-value', row ? row.pageviews : 0);
        title.textContent = path.getAttribute('data-name') + (row ? ': ' + D.charts.format(row.pageviews) +
                                                              ' page views' : '');
        path.onclick = row ? function () { D.addFilter('country', row.country); } : null;
      });
    });
  }

  window.NpCards = { build: build, mark: mark, settle: settle, drawMap: drawMap, select: select };
})();
