"""The dashboard's CSV export (static/csv.js) run in node: OWASP's rule against formula injection (a cell that
begins with =, +, -, @, a tab or a carriage return is prefixed with '), numeric cells written as numbers."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import nself_analytics

CSV_JS = Path(nself_analytics.__file__).parent / "static" / "csv.js"


def node_csv(rows: list[list[tuple[Any, bool]]]) -> str:
    """NpCsv.rows(rows) computed by node on the shipped module."""
    node = shutil.which("node")
    assert node, "Node.js is not installed (CI installs it)"
    script = ("const csv = require(process.argv[1]);"
              "process.stdout.write(csv.rows(JSON.parse(require('fs').readFileSync(0, 'utf8'))));")
    done = subprocess.run([node, "-e", script, str(CSV_JS)], input=json.dumps(rows).encode(), capture_output=True,
                          timeout=60, check=True)
    return done.stdout.decode()  # bytes: text mode would turn the CRLF line ends and a CR cell into LF


def test_plain_cells_and_numbers_are_written_as_they_are() -> None:
    text = node_csv([[("Page", False), ("Views", False)], [("/pricing", False), ("12", True)],
                     [("a, \"b\"", False), ("-5", True)], [("1.5", False), ("-0.25", True)]])
    assert text == 'Page,Views\r\n/pricing,12\r\n"a, ""b""",-5\r\n1.5,-0.25\r\n'


def test_formula_cells_are_text_in_a_spreadsheet() -> None:
    """Hostile: every value OWASP lists as a formula start, the ones the old rule let through (- followed by a
    digit or a dot) first; in a numeric column only a real number is written bare."""
    hostile = ["-1+1+cmd|' /C calc'!A0", "-2+3", "-.5+HYPERLINK(\"http://x.test\")", "=1", "@x", "\t=1", "+1",
               "\r=1", "-"]
    text = node_csv([[(value, False), (value, True)] for value in hostile] + [[("-5", False), ("-5", True)]])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[:-1] == [["'" + value, "'" + value] for value in hostile]
    assert rows[-1] == ["'-5", "-5"]  # -5 as text is escaped; in a numeric column it stays a number
    assert text.endswith('\r\n"\'-5",-5\r\n')  # bare: a spreadsheet reads the number
