"""Every figure of one or more ``bench/run`` results side by side per data-set size, with the growth (issue 27 item 4).

```sh
.venv/bin/python -m bench.sizes bench/results/<start>.json [more.json ...]   # a markdown table on stdout
```

Sizes come from every file given (a ``.partial.json`` of a run still going counts too; a size measured twice keeps
the later file's figures). Columns: each size, then the growth of each size over the one before it (its ratio).
Rows: storage per event (all, table, each index, the de-duplication window, the rollups), load, aggregation and
compaction times, then every query's median.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "rows_by_size"]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def rows_by_size(results: list[dict[str, Any]]) -> tuple[list[str], dict[str, dict[str, float | None]]]:
    """(sizes in order of events, {figure name: {size: value}})."""
    sizes: dict[str, int] = {}
    table: dict[str, dict[str, float | None]] = {}

    def put(name: str, size: str, value: Any) -> None:
        table.setdefault(name, {})[size] = _num(value)

    for result in results:
        for size, data in result.get("queries", {}).items():
            d = data["dataset"]
            s = d["storage"]
            sizes[size] = int(d["events"])
            put("events: bytes/event in all", size, s["bytes_per_event"])
            put("events: table (heap, TOAST)", size, s["table_bytes_per_event"])
            put("events: indexes", size, s["index_bytes_per_event"])
            for index, value in s["indexes"].items():
                put(f"events: index {index}", size, value)
            put("events: de-duplication window", size, s.get("message_ids_bytes_per_event"))
            rollups = s.get("rollups") or {}
            put("rollups: bytes/event in all", size, sum(v or 0 for v in rollups.values()) if rollups else None)
            for table_name, value in rollups.items():
                put(f"rollups: {table_name}", size, value)
            put("load (s)", size, d["load_seconds"])
            put("aggregator: 90 days dirty (s)", size, d["backfill_aggregate_seconds"])
            put("aggregator: one dirty hour (s)", size, d["incremental_aggregate_seconds"])
            put("compaction of the closed days (s)", size, d.get("compact_seconds"))
            for query, q in data["results"].items():
                put(f"{query} (s)", size, q.get("median_seconds") if q.get("status") == "ok" else None)
    ordered = sorted(sizes, key=sizes.__getitem__)
    return ordered, table


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def render(sizes: list[str], table: dict[str, dict[str, float | None]]) -> str:
    growth = [f"{b}/{a}" for a, b in itertools.pairwise(sizes)]
    lines = ["| figure | " + " | ".join(sizes + growth) + " |", "|---" * (1 + len(sizes) + len(growth)) + "|"]
    for name, values in table.items():
        cells = [_fmt(values.get(size)) for size in sizes]
        for a, b in itertools.pairwise(sizes):
            va, vb = values.get(a), values.get(b)
            cells.append(f"{vb / va:.2f}x" if va and vb is not None else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        sys.stderr.write("usage: python -m bench.sizes RESULT.json [RESULT.json ...]\n")
        return 2
    results = [json.loads(p.read_text()) for p in paths]
    sizes, table = rows_by_size(results)
    sys.stdout.write(render(sizes, table) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
