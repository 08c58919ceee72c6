/*
 * A small SVG chart module for the dashboard (no dependencies): a line chart of a series and a
 * horizontal bar chart. Every mark carries data-label and data-value so it can be read back.
 */
(function (w) {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';

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

  function niceMax(value) {
    if (value <= 0) return 1;
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var m = [1, 2, 2.5, 5, 10].find(function (f) { return f * step >= value; });
    return m * step;
  }

  function fmt(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1).replace(/\.0$/, '') + 'M';
    if (n >= 1e4) return (n / 1e3).toFixed(1).replace(/\.0$/, '') + 'k';
    return String(Math.round(n * 100) / 100);
  }

  /* points: [{label, value}]; options: {height, title, series: [{key, name, className}]} */
  function lineChart(container, points, options) {
    options = options || {};
    var series = options.series || [{ key: 'value', name: 'value', className: 'series-0' }];
    var width = Math.max(container.clientWidth || 600, 320), height = options.height || 220;
    var pad = { l: 44, r: 12, t: 12, b: 28 };
    var svg = el('svg', { viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
                          role: 'img', 'aria-label': options.title || 'chart', class: 'chart line-chart' });
    var max = niceMax(Math.max.apply(null, [0].concat(points.map(function (p) {
      return Math.max.apply(null, series.map(function (s) { return p[s.key] || 0; }));
    }))));
    var iw = width - pad.l - pad.r, ih = height - pad.t - pad.b;
    var x = function (i) { return pad.l + (points.length < 2 ? iw / 2 : (i * iw) / (points.length - 1)); };
    var y = function (v) { return pad.t + ih - (v / max) * ih; };
    for (var g = 0; g <= 4; g++) {
      var gy = pad.t + (ih * g) / 4;
      el('line', { x1: pad.l, x2: width - pad.r, y1: gy, y2: gy, class: 'gridline' }, svg);
      text(svg, pad.l - 6, gy + 4, fmt(max - (max * g) / 4), { 'text-anchor': 'end', class: 'axis' });
    }
    var every = Math.max(1, Math.ceil(points.length / 8));
    points.forEach(function (p, i) {
      if (i % every === 0) text(svg, x(i), height - 8, p.label, { 'text-anchor': 'middle', class: 'axis' });
    });
    series.forEach(function (s) {
      var d = points.map(function (p, i) { return (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(p[s.key] || 0).toFixed(1); });
      var cls = s.className + (s.dashed ? ' prev' : '');
      if (points.length) el('path', { d: d.join(' '), class: 'line ' + cls, 'data-series': s.key }, svg);
      if (s.dashed) return;  // the previous period: a line only, its figures are in the tables
      points.forEach(function (p, i) {
        var dot = el('circle', { cx: x(i), cy: y(p[s.key] || 0), r: 3, class: 'dot ' + cls,
                                 'data-label': p.label, 'data-value': p[s.key] || 0, 'data-series': s.key }, svg);
        el('title', {}, dot).textContent = p.label + ': ' + (p[s.key] || 0) + ' ' + s.name;
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

  /* rows: [{label, value, note}]; options: {title, format(value) -> text} */
  function barChart(container, rows, options) {
    options = options || {};
    var width = Math.max(container.clientWidth || 400, 280), bar = 26, gap = 8, labelW = options.labelWidth || 140;
    var height = Math.max(rows.length, 1) * (bar + gap) + gap;
    var svg = el('svg', { viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
                          role: 'img', 'aria-label': options.title || 'chart', class: 'chart bar-chart' });
    var max = Math.max.apply(null, [0].concat(rows.map(function (r) { return r.value; }))) || 1;
    var iw = width - labelW - 90;
    rows.forEach(function (r, i) {
      var top = gap + i * (bar + gap);
      text(svg, labelW - 8, top + bar / 2 + 4, r.label, { 'text-anchor': 'end', class: 'label' });
      el('rect', { x: labelW, y: top, width: iw, height: bar, class: 'track' }, svg);
      var rect = el('rect', { x: labelW, y: top, width: Math.max(2, (r.value / max) * iw), height: bar,
                              class: 'bar', 'data-label': r.label, 'data-value': r.value }, svg);
      el('title', {}, rect).textContent = r.label + ': ' + r.value;
      text(svg, labelW + iw + 8, top + bar / 2 + 4, options.format ? options.format(r) : fmt(r.value), { class: 'value' });
    });
    if (!rows.length) text(svg, width / 2, height / 2 + 4, 'No data', { 'text-anchor': 'middle', class: 'axis' });
    container.replaceChildren(svg);
    return svg;
  }

  w.NpCharts = { lineChart: lineChart, barChart: barChart, format: fmt };
})(window);
