"""Where the events' bytes go: per column, per index, per part of the heap (issue 27 item 2; not a timed test).

```sh
.venv/bin/python -m bench.storage --events 1000000          # load the bench's data set, print the split (~1-2 min)
.venv/bin/python -m bench.storage --events 1000000 --hold   # and keep the stores up for experiments (Ctrl-C ends)
```

It starts the bench's embedded stores (``bench/.data``, or ``--data-dir``), loads ``--events`` events of
bench/generate.py and bench/dataset.py over 90 days exactly as ``bench/run`` does (COPY, the de-duplication window's
ids, ANALYZE), optionally runs the events' maintenance that compacts closed days (``--compact``), and prints per
event: the heap (row header and line pointer, the values column by column from ``pg_column_size``, what is left:
alignment and free space), TOAST, each index and the de-duplication table. ``--json`` writes the figures as JSON.

``--raw-reads`` then times the reads that still read raw events over closed days (through the store functions
the handlers call) with the compact indexes and with the (source_account_id, event, ts) index of before 0118 on
every partition, interleaved for 3 rounds of 3 runs (medians): the A/B of the compaction on the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiopg

from nself_analytics.store.compaction import compact_closed_days

from .dataset import WEB_COLUMNS, with_web_fields
from .generate import generate_events, load_events
from .harness import DATA_DIR, Harness, progress
from .main import UNCOMPACT

__all__ = ["breakdown", "main"]

_PARTS = "SELECT c.oid FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid " \
         "WHERE i.inhparent = 'np_analytics_events'::regclass"


def breakdown(h: Harness) -> dict[str, Any]:
    """Bytes per event of the events' partitions: heap parts, columns, TOAST, indexes, de-duplication table."""
    rows = h.count_events()
    (main, table, toast_n), = h.sql(f"""
        SELECT coalesce(sum(pg_relation_size(oid)), 0), coalesce(sum(pg_table_size(oid)), 0),
               coalesce(sum((SELECT count(*) FROM pg_class t WHERE t.oid = c.reltoastrelid)), 0)
        FROM pg_class c WHERE oid IN ({_PARTS})""")
    columns = [r[0] for r in h.sql("""
        SELECT attname FROM pg_attribute WHERE attrelid = 'np_analytics_events'::regclass AND attnum > 0
        AND NOT attisdropped ORDER BY attnum""")]
    sums = h.sql("SELECT " + ", ".join(f"avg(coalesce(pg_column_size({c}), 0)), avg(({c} IS NULL)::int)"
                                       for c in columns) + " FROM np_analytics_events")[0]
    values = {c: {"bytes": round(float(sums[2 * i] or 0), 2), "null_fraction": round(float(sums[2 * i + 1] or 0), 3)}
              for i, c in enumerate(columns)}
    indexes = h.sql(f"""
        SELECT coalesce(regexp_replace(pi.relname, '^np_analytics_events_', ''),
                        regexp_replace(ci.relname, '^np_analytics_events_p[0-9]+_', '')), am.amname,
               sum(pg_relation_size(ci.oid))
        FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_am am ON am.oid = ci.relam
        LEFT JOIN pg_inherits ih ON ih.inhrelid = ci.oid LEFT JOIN pg_class pi ON pi.oid = ih.inhparent
        WHERE x.indrelid IN ({_PARTS}) GROUP BY 1, 2 ORDER BY 3 DESC""")
    (dedupe, dedupe_rows), = h.sql("SELECT pg_total_relation_size('np_analytics_message_ids'), "
                                   "(SELECT count(*) FROM np_analytics_message_ids)")
    extra = h.sql("""
        SELECT coalesce(sum(pg_total_relation_size(to_regclass(c))), 0)
        FROM unnest(%s::text[]) AS c WHERE to_regclass(c) IS NOT NULL""", (list(SIDE_TABLES),))[0][0]

    def per(v: float) -> float | None:
        return round(float(v) / rows, 1) if rows else None

    value_bytes = sum(v["bytes"] for v in values.values())
    index_total = sum(int(size) for _n, _am, size in indexes)
    header = 4 + 32  # line pointer + MAXALIGN(23-byte header + null bitmap of 9-72 columns)
    out = {
        "rows": rows, "bytes_per_event": per(int(table) + index_total + int(dedupe) + int(extra)),
        "heap_main_per_event": per(main), "toast_and_maps_per_event": per(int(table) - int(main)),
        "toast_tables": int(toast_n),
        "heap_split": {"line pointer + row header": header, "values": round(value_bytes, 1),
                       "alignment and free space": round((per(main) or 0) - header - value_bytes, 1)},
        "columns": values,
        "indexes": {f"{name} ({am})": per(size) for name, am, size in indexes},
        "message_ids_per_event": per(dedupe), "message_ids_rows": int(dedupe_rows),
        "side_tables_per_event": per(extra),
    }
    return out


# Tables that hold part of the events' data once closed days are compacted (counted in the events' figure).
SIDE_TABLES = ("np_analytics_event_dict",)


async def _raw_reads(database_url: str, now: datetime, runs: int) -> dict[str, list[float]]:
    """Seconds of ``runs`` runs (after a warm-up) of each read of raw events over closed days."""
    from nself_analytics.store import explorer, funnels, people
    from nself_analytics.store.export import export_lines

    day = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)
    steps = ["signup", "activate", "add_to_cart", "purchase"]
    reads: dict[str, Callable[[aiopg.Connection], Awaitable[object]]] = {
        "event names 30d": lambda c: explorer.event_names(c, account="primary", start=now - timedelta(days=30),
                                                          end=now, limit=50),
        "property survey 30d": lambda c: explorer.event_properties(
            c, account="primary", event="click", start=now - timedelta(days=30), end=now, limit=20, values=5),
        "property survey 90d, rare name": lambda c: explorer.event_properties(
            c, account="primary", event="purchase", start=now - timedelta(days=90), end=now, limit=20, values=5),
        "funnel 4 steps with breakdown 30d": lambda c: funnels.run_funnel(
            c, account="primary", steps=steps, start=now - timedelta(days=30), end=now, window_seconds=7 * 86400,
            breakdown="plan"),
        "funnel 4 steps with breakdown 90d": lambda c: funnels.run_funnel(
            c, account="primary", steps=steps, start=now - timedelta(days=90), end=now, window_seconds=7 * 86400,
            breakdown="plan"),
        "person page": lambda c: people.person(c, account="primary", distinct_id="user-1-17", limit=50, offset=0),
        "export of one closed day": lambda c: _drain(export_lines(c, account="primary", start=day,
                                                                  end=day + timedelta(days=1))),
    }
    out: dict[str, list[float]] = {}
    async with aiopg.connect(database_url, timeout=600) as conn:
        for name, read in reads.items():
            await read(conn)
            for _ in range(runs):
                started = time.perf_counter()
                await read(conn)
                out.setdefault(name, []).append(time.perf_counter() - started)
    return out


async def _drain(lines: AsyncIterator[object]) -> int:
    return sum([1 async for _ in lines])


AB_INDEX = "ab_event_ts"


def raw_reads_ab(h: Harness, now: datetime, rounds: int = 3, runs: int = 3) -> dict[str, dict[str, float]]:
    """The raw reads with the compact indexes (A) and with the time-ordered index of before 0118 on every partition
    (B), interleaved round by round on the same data (the shared box's load moves between rounds): B's indexes are
    built once and hidden from the planner during A (``indisvalid``, a throwaway bench database only)."""
    parts = [r[0] for r in h.sql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                 "WHERE i.inhparent = 'np_analytics_events'::regclass")]
    for part in parts:
        h.sql(f'CREATE INDEX IF NOT EXISTS "{part}_{AB_INDEX}" ON "{part}" (source_account_id, event, ts)')
    h.sql("ANALYZE np_analytics_events")
    variants = {"compact": False, "with (account, event, ts) on every day": True}
    times: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    try:
        for _ in range(rounds):
            for variant, visible in variants.items():
                h.sql("UPDATE pg_index SET indisvalid = %s WHERE indexrelid IN (SELECT oid FROM pg_class "
                      "WHERE relname LIKE %s)", (visible, f"%\\_{AB_INDEX}"))
                for name, seconds in asyncio.run(_raw_reads(h.database_url, now, runs)).items():
                    times[variant].setdefault(name, []).extend(seconds)
    finally:
        for part in parts:
            h.sql(f'DROP INDEX IF EXISTS "{part}_{AB_INDEX}"')
    return {v: {name: round(statistics.median(s), 4) for name, s in reads.items()} for v, reads in times.items()}


def render(b: dict[str, Any]) -> str:
    lines = [f"events: {b['rows']:,}; {b['bytes_per_event']} bytes/event in all",
             f"heap {b['heap_main_per_event']} + TOAST/maps {b['toast_and_maps_per_event']}: "
             + ", ".join(f"{k} {v}" for k, v in b["heap_split"].items()),
             "values: " + ", ".join(f"{c} {v['bytes']}" + (f" ({1 - v['null_fraction']:.0%} set)"
                                                            if 0 < v["null_fraction"] < 1 else "")
                                    for c, v in b["columns"].items() if v["bytes"]),
             "indexes: " + ", ".join(f"{k} {v}" for k, v in b["indexes"].items()),
             f"de-duplication table {b['message_ids_per_event']} ({b['message_ids_rows']:,} ids); "
             f"side tables {b['side_tables_per_event']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--compact", action="store_true", help="compact the closed days, then measure again")
    parser.add_argument("--raw-reads", action="store_true",
                        help="time the reads of raw events, compact and with the time-ordered index (an A/B)")
    parser.add_argument("--hold", action="store_true", help="keep the stores running after the figures")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    h = Harness(args.data_dir)
    try:
        h.start_stores()
        h.reset()
        users = 30_000 if args.events <= 2_000_000 else 60_000
        started = time.monotonic()
        now = datetime.now(UTC)
        rows = with_web_fields(generate_events(args.events, users, 90, seed=1, now=now), seed=1)
        load_events(h.database_url, rows, columns=WEB_COLUMNS)
        progress(f"loaded {args.events:,} events in {time.monotonic() - started:.0f} s")
        result: dict[str, Any] = {"loaded": breakdown(h)}
        sys.stdout.write(render(result["loaded"]) + "\n")
        if args.compact:
            started = time.monotonic()

            h.sql(UNCOMPACT)

            async def compact() -> int:
                async with aiopg.connect(h.database_url, timeout=3600) as conn:
                    return await compact_closed_days(conn, limit=None)

            days = asyncio.run(compact())
            h.sql("ANALYZE np_analytics_events")
            progress(f"compacted {days} closed days in {time.monotonic() - started:.0f} s")
            result["compacted"] = breakdown(h)
            sys.stdout.write("\nafter compaction:\n" + render(result["compacted"]) + "\n")
        if args.raw_reads:
            result["raw_reads"] = raw_reads_ab(h, now)
            for name in result["raw_reads"]["compact"]:
                sys.stdout.write(f"{name}: " + " / ".join(f"{v[name]} s {k}" for k, v in result["raw_reads"].items())
                                 + "\n")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        if args.hold:
            progress(f"holding the stores: {h.database_url} (Ctrl-C or SIGTERM ends)")
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        h.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
