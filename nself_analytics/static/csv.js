/*
 * CSV of the dashboard's tables (RFC 4180 quoting) with OWASP's rule against formula injection: a cell that
 * begins with =, +, -, @, a tab or a carriage return is prefixed with ' so a spreadsheet shows it as text
 * (-1+1+cmd|' /C calc'!A0 and -2+3 included), except a cell of a numeric column written as a number (-5).
 * Loaded by the dashboard before dashboard.js (window.NpCsv); node can require it (tests/test_dashboard_csv.py).
 */
(function (root) {
  'use strict';
  var NUMBER = /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
  var RISKY = /^[=+\-@\t\r]/;

  /* one cell: ``numeric`` when the cell is of a numeric column (the dashboard marks them data-number) */
  function cell(text, numeric) {
    text = String(text === null || text === undefined ? '' : text);
    if (numeric && NUMBER.test(text)) return text;
    var escaped = RISKY.test(text);
    if (escaped) text = "'" + text;
    return escaped || /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  /* rows of [text, numeric] pairs -> the CSV text (CRLF line ends) */
  function rows(list) {
    return list.map(function (row) {
      return row.map(function (c) { return cell(c[0], c[1]); }).join(',');
    }).join('\r\n') + '\r\n';
  }

  root.NpCsv = { cell: cell, rows: rows };
  if (typeof module === 'object' && module.exports) module.exports = root.NpCsv;
})(typeof window !== 'undefined' ? window : globalThis);
