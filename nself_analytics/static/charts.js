/*
 * A small SVG chart module for the dashboard (no dependencies): a line chart, vertical columns, a horizontal
 * bar chart, a sparkline and a day-by-hour heat map. Every mark carries data-label and data-value so it can be
 * read back. Axes have integer "nice" ticks (1, 2, 5 x 10^k); numbers are formatted in the browser's locale.
 */
(function (w) {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var plain = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  var compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, value, attrs) {
    var t = el('text', Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = value;
    return t;
  }

  /* a figure in the browser's locale: 12,345 (compact from 100,000: 123K) */
  function fmt(n) {
    if (n === null || n === undefined || isNaN(n)) return '-';
    return Math.abs(n) >= 1e5 ? compact.format(n) : plain.format(n);
  }

  /* integer ticks for [0, max]: a step of 1, 2 or 5 x 10^k, at most ``count`` steps */
  function niceScale(max, count) {
    count = count || 4;
    if (!(max > 0)) return { max: count, step: 1 };
    var raw = Math.max(1, max / count), power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * power; }).find(function (s) { return s >= raw; });
    step = Math.max(1, Math.round(step));
    return { max: Math.max(step, Math.ceil(max / step) * step), step: step };
  }

  function yAxis(svg, scale, pad, width, y) {
    for (var v = 0; v <= scale.max; v += scale.step) {
      el('line', { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: 'gridline' }, svg);
      text(svg, pad.l - 6, y(v) + 4, fmt(v), { 'text-anchor': 'end', class: 'axis tick' });
    }
  }

  /* x labels that fit: evenly spaced, none overlapping another (widths estimated from their length), the last
     always shown and anchored at its end, the first at its start, so no label is cut at the chart's edges */
  function xLabels(svg, labels, x, height, width) {
    var n = labels.length, charW = 6.6, gap = 10;
    var widest = Math.max.apply(null, [1].concat(labels.map(function (l) { return String(l).length; }))) * charW;
    var every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(width / (widest + gap)))));
    var placed = [];
    function box(i) {
      var w = String(labels[i]).length * charW, at = x(i);
      var anchor = i === n - 1 && n > 1 ? 'end' : at - w / 2 < 0 || (i === 0 && n > 1) ? 'start' : 'middle';
      var left = anchor === 'start' ? at : anchor === 'end' ? at - w : at - w / 2;
      return { i: i, anchor: anchor, left: left, right: left + w };
    }
    for (var i = 0; i < n - 1; i += every) {
      var b = box(i), prev = placed[placed.length - 1];
      if (!prev || b.left >= prev.right + gap) placed.push(b);
    }
    if (n) {
      var last = box(n - 1);
      while (placed.length && placed[placed.length - 1].right + gap > last.left) placed.pop();
      placed.push(last);
    }
    placed.forEach(function (b) {
      text(svg, x(b.i), height - 8, labels[b.i], { 'text-anchor': b.anchor, class: 'axis xlabel' });
    });
  }

  function maxOf(points, keys) {
    return Math.max.apply(null, [0].concat(points.map(function (p) {
      return Math.max.apply(null, keys.map(function (k) { return p[k] || 0; }));
    })));
  }

  /* points: [{label, ...}]; options: {height, title, series: [{key, name, className, dashed}]} */
  function lineChart(container, points, options) {
    options = options || {};
    var series = options.series || [{ key: 'value', name: 'value', className: 'series-0' }];
    var width = Math.max(container.clientWidth || 600, 280), height = options.height || 220;
    var scale = niceScale(maxOf(points, series.map(function (s) { return s.key; })));
    var pad = { l: 12 + 7 * fmt(scale.max).length, r: 14, t: 12, b: 28 };
    var svg = el('svg', { viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
                          role: 'img', 'aria-label': options.title || 'chart', class: 'chart line-chart' });
    var iw = width - pad.l - pad.r, ih = height - pad.t - pad.b;
    var x = function (i) { return pad.l + (points.length < 2 ? iw / 2 : (i * iw) / (points.length - 1)); };
    var y = function (v) { return pad.t + ih - (v / scale.max) * ih; };
    yAxis(svg, scale, pad, width, y);
    xLabels(svg, points.map(function (p) { return p.label; }), x, height, width);
    series.forEach(function (s) {
      var d = points.map(function (p, i) { return (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(p[s.key] || 0).toFixed(1); });
      var cls = s.className + (s.dashed ? ' prev' : '');
      if (points.length) el('path', { d: d.join(' '), class: 'line ' + cls, 'data-series': s.key }, svg);
      if (s.dashed) return;  // the previous period: a line only, its figures are in the tables
      points.forEach(function (p, i) {
        var dot = el('circle', { cx: x(i), cy: y(p[s.key] || 0), r: points.length > 60 ? 1.5 : 3, class: 'dot ' + cls,
                                 'data-label': p.label, 'data-value': p[s.key] || 0, 'data-series': s.key }, svg);
        el('title', {}, dot).textContent = p.label + ': ' + fmt(p[s.key] || 0) + ' ' + s.name;
      });
    });
    var parts = [svg];
    if (series.length > 1) {
      var legend = document.createElement('div');
      legend.className = 'legend-row';
      series.forEach(function (s) {
        var item = document.createElement('span');
        item.className = 'legend-item ' + s.className + (s.dashed ? ' prev' : '');
        item.textContent = s.name;
        legend.appendChild(item);
      });
      parts.push(legend);
    }
    container.replaceChildren.apply(container, parts);
    return svg;
  }

  /* vertical columns, one per point: [{label, value}] (the realtime per-minute chart) */
  function columnChart(container, points, options) {
    options = options || {};
    var width = Math.max(container.clientWidth || 600, 280), height = options.height || 180;
    var scale = niceScale(maxOf(points, ['value']));
    var pad = { l: 12 + 7 * fmt(scale.max).length, r: 14, t: 12, b: 28 };
    var svg = el('svg', { viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
                          role: 'img', 'aria-label': options.title || 'chart', class: 'chart column-chart' });
    var iw = width - pad.l - pad.r, ih = height - pad.t - pad.b, slot = iw / Math.max(points.length, 1);
    var y = function (v) { return pad.t + ih - (v / scale.max) * ih; };
    yAxis(svg, scale, pad, width, y);
    xLabels(svg, points.map(function (p) { return p.label; }),
            function (i) { return pad.l + slot * i + slot / 2; }, height, width);
    points.forEach(function (p, i) {
      var rect = el('rect', { x: pad.l + slot * i + 1, y: y(p.value), width: Math.max(1, slot - 2),
                              height: Math.max(0, y(0) - y(p.value)), class: 'column',
                              'data-label': p.label, 'data-value': p.value }, svg);
      el('title', {}, rect).textContent = p.label + ': ' + fmt(p.value) + ' ' + (options.unit || '');
    });
    container.replaceChildren(svg);
    return svg;
  }

  /* rows: [{label, value, note}]; options: {title, format(value) -> text} */
  function barChart(container, rows, options) {
    options = options || {};
    var width = Math.max(container.clientWidth || 400, 280), bar = 26, gap = 8;
    var labelW = options.labelWidth || Math.min(140, Math.round(width * 0.32));
    var height = Math.max(rows.length, 1) * (bar + gap) + gap;
    var svg = el('svg', { viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
                          role: 'img', 'aria-label': options.title || 'chart', class: 'chart bar-chart' });
    var max = Math.max.apply(null, [0].concat(rows.map(function (r) { return r.value; }))) || 1;
    var iw = width - labelW - 100, chars = Math.floor((labelW - 10) / 6.5);
    rows.forEach(function (r, i) {
      var top = gap + i * (bar + gap), label = String(r.label);
      var shown = label.length > chars ? label.slice(0, Math.max(1, chars - 1)) + '…' : label;
      el('title', {}, text(svg, labelW - 8, top + bar / 2 + 4, shown, { 'text-anchor': 'end', class: 'label' }))
        .textContent = label;
      el('rect', { x: labelW, y: top, width: iw, height: bar, class: 'track' }, svg);
      var rect = el('rect', { x: labelW, y: top, width: Math.max(2, (r.value / max) * iw), height: bar,
                              class: 'bar', 'data-label': r.label, 'data-value': r.value }, svg);
      el('title', {}, rect).textContent = r.label + ': ' + fmt(r.value);
      text(svg, labelW + iw + 8, top + bar / 2 + 4, options.format ? options.format(r) : fmt(r.value), { class: 'value' });
    });
    if (!rows.length) text(svg, width / 2, height / 2 + 4, 'No data', { 'text-anchor': 'middle', class: 'axis' });
    container.replaceChildren(svg);
    return svg;
  }

  /* a small line of values without axes (the top stats) */
  function sparkline(container, values, options) {
    options = options || {};
    var width = 100, height = 28, max = Math.max.apply(null, [1].concat(values));
    var svg = el('svg', { viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
                          preserveAspectRatio: 'none', class: 'sparkline', 'aria-hidden': 'true' });
    if (values.length > 1) {
      var pts = values.map(function (v, i) {
        return (i * width / (values.length - 1)).toFixed(1) + ',' + (height - 2 - (v / max) * (height - 4)).toFixed(1);
      });
      el('polygon', { points: '0,' + height + ' ' + pts.join(' ') + ' ' + width + ',' + height, class: 'spark-area' }, svg);
      el('polyline', { points: pts.join(' '), class: 'spark-line' }, svg);
    }
    svg.setAttribute('data-values', values.join(','));
    container.replaceChildren(svg);
    return svg;
  }

  /* rows: [{label, values: [24 numbers]}] -> a grid of day rows by hour columns, shaded by value */
  function heatmap(container, rows, options) {
    options = options || {};
    var max = Math.max.apply(null, [1].concat(rows.map(function (r) { return Math.max.apply(null, r.values); })));
    var grid = document.createElement('div');
    grid.className = 'heatmap';
    grid.setAttribute('role', 'table');
    grid.setAttribute('aria-label', options.title || 'heat map');
    var head = document.createElement('div');
    head.className = 'hm-row hm-head';
    head.appendChild(document.createElement('span'));
    for (var h = 0; h < 24; h += 6) {  // a label every 6 hours, each over its 6 columns
      var th = document.createElement('span');
      th.className = 'hm-hour';
      th.textContent = String(h).padStart(2, '0') + ':00';
      head.appendChild(th);
    }
    grid.appendChild(head);
    rows.forEach(function (r) {
      var row = document.createElement('div'), label = document.createElement('span');
      row.className = 'hm-row';
      label.className = 'hm-label';
      label.textContent = r.label;
      row.appendChild(label);
      r.values.forEach(function (v, hour) {
        var cell = document.createElement('span');
        cell.className = 'hm-cell';
        cell.style.setProperty('--heat', (v / max).toFixed(3));
        cell.setAttribute('data-value', v);
        cell.setAttribute('data-hour', hour);
        cell.title = r.label + ' ' + String(hour).padStart(2, '0') + ':00: ' + fmt(v) + ' ' + (options.unit || '');
        row.appendChild(cell);
      });
      grid.appendChild(row);
    });
    container.replaceChildren(grid);
    return grid;
  }

  w.NpCharts = { lineChart: lineChart, columnChart: columnChart, barChart: barChart, sparkline: sparkline,
                 heatmap: heatmap, niceScale: niceScale, format: fmt };
})(window);
