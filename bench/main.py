"""``bench/run``: ingest and query benchmarks of nself-analytics in one run on one machine.

Prints a markdown table on stdout and writes ``bench/results/<timestamp>.json``; progress goes to stderr.
Every ingest figure is also given as a ratio to a raw COPY of the same rows into the same PostgreSQL,
measured in the same run, so that numbers from a noisy shared machine stay comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiopg
import psycopg2
import structlog

from nself_analytics.store.compaction import compact_closed_days
from nself_analytics.store.events import EVENT_COLUMNS
from nself_analytics.store.partitions import ensure_partitions
from nself_analytics.store.rollups.aggregates import materialize

from .dataset import WEB_COLUMNS, stored_text, to_message, with_web_fields
from .generate import generate_events, load_events
from .harness import DATA_DIR, ROOT, SECRET, WRITE_KEY, CpuMeter, Harness, progress

RESULTS_DIR = ROOT / "bench" / "results"
MB = 1024 * 1024

# Targets for this machine (reported, never enforced by a test).
TARGET_BATCH_RATIO = 0.5
TARGET_TRACK_EPS = 5000
# issue 27 item 3: product queries per range in days; web endpoints at both ranges, and their 10M/1M ratio
TARGET_QUERY_SECONDS = {30: 0.5, 90: 1.0}
TARGET_BYTES_PER_EVENT = 150  # the events' partitions with their indexes and the de-duplication table
TARGET_ROLLUP_BYTES_PER_EVENT = 80  # all rollups together
TARGET_WEB_SECONDS = {30: 0.05, 90: 0.05}
TARGET_WEB_RATIO = 2.0
TARGET_DASHBOARD_SECONDS = 0.5
TARGET_LIGHT_SECONDS = 0.2  # trends and metrics
TARGET_DIRTY_HOUR_SECONDS = 0.5
TARGET_RSS_MB = 200


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ten-million", action="store_true", help="also load 10,000,000 events and query them")
    parser.add_argument("--thirty-million", action="store_true",
                        help="also load 30,000,000 events and query them (after --ten-million's size if given; "
                             "about 40-60 minutes on 2 cores)")
    parser.add_argument("--events", type=int, action="append", default=[], metavar="N",
                        help="also load N events and query them (repeatable; after the sizes above)")
    parser.add_argument("--batch-events", type=int, default=100_000, help="events sent through /batch")
    parser.add_argument("--track-events", type=int, default=20_000, help="events sent through /track")
    parser.add_argument("--connections", type=int, default=64,
                        help="connections of the load generator for /track (/batch uses a quarter of them)")
    parser.add_argument("--procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--latency-rate", type=float, default=1000, help="requests/s of the open-loop /track run")
    parser.add_argument("--latency-seconds", type=float, default=10, help="duration of the open-loop run")
    parser.add_argument("--query-events", type=int, default=1_000_000, help="events of the query dataset")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query (after one warm-up)")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-one-worker", action="store_true",
                        help="skip the second ingest run with ANALYTICS_WORKERS=1 (the default workers' baseline)")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--instances", type=int, default=1,
                        help="also run the ingest phases against this many instances on as many ports (sharing the "
                             "stores, the load spread over them), each with --instance-workers workers")
    parser.add_argument("--instance-workers", type=int, default=1, help="ANALYTICS_WORKERS of each of --instances")
    parser.add_argument("--profile", action="store_true",
                        help="only /batch and /track, one worker, under pyinstrument; the report goes to bench/results")
    parser.add_argument("--service-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the service (repeatable), e.g. ANALYTICS_BATCH_SIZE=2000")
    return parser.parse_args(argv)


# ingest ---------------------------------------------------------------------------------------------

def _ensure_days(database_url: str, days: set[date]) -> None:
    async def run() -> None:
        async with aiopg.connect(database_url) as conn:
            await ensure_partitions(conn, days)

    asyncio.run(run())


def copy_ceiling(h: Harness, text: str, events: int, attempts: int = 2) -> dict[str, Any]:
    """Best of ``attempts`` raw COPYs of ``text`` into np_analytics_events (one transaction, committed)."""
    columns = ", ".join(EVENT_COLUMNS)
    best = float("inf")
    for _ in range(attempts):
        h.sql("TRUNCATE np_analytics_events")
        conn = psycopg2.connect(h.database_url)
        try:
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.copy_expert(f"COPY np_analytics_events ({columns}) FROM STDIN", io.StringIO(text))
            conn.commit()
            best = min(best, time.perf_counter() - started)
        finally:
            conn.close()
    stored = h.count_events()
    h.sql("TRUNCATE np_analytics_events, np_analytics_aggregate_dirty")
    assert stored == events, f"COPY stored {stored} of {events} rows"
    return {"events": events, "seconds": round(best, 3), "events_per_second": round(events / best)}


def _write_bodies(name: str, bodies: list[bytes]) -> Path:
    path = DATA_DIR / f"bodies-{name}.jsonl"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return path


def _loadgen(h: Harness, name: str, config: dict[str, Any]) -> subprocess.Popen[str]:
    path = DATA_DIR / f"loadgen-{name}.json"
    path.write_text(json.dumps({"port": h.port, "ports": h.ports, "key": WRITE_KEY, **config}))
    return subprocess.Popen([sys.executable, "-m", "bench.loadgen", str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {proc.returncode}")
    return dict(json.loads(out))


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def ingest_phase(h: Harness, name: str, path: str, bodies: list[bytes], events: int,
                 connections: int, procs: int) -> dict[str, Any]:
    """Send ``bodies`` closed-loop; time from the first request until ``events`` more rows are committed."""
    assert h.sampler is not None
    base = h.count_events()
    config = {"path": path, "bodies": str(_write_bodies(name, bodies)), "mode": "closed",
              "connections": connections, "procs": procs}
    progress(f"{name}: {events:,} events in {len(bodies):,} requests to {path}, {connections} connections")
    cpu_start = h.cpu.snapshot()
    with h.sampler.phase(name):
        proc = _loadgen(h, name, config)
        try:
            last, last_change, done_at = base, time.monotonic(), None
            while True:
                count = h.count_events()
                now = time.time()
                if count >= base + events:
                    done_at = now
                    break
                if count != last:
                    last, last_change = count, time.monotonic()
                elif proc.poll() is not None and time.monotonic() - last_change > 60:
                    break  # the generator is done and nothing was committed for a minute: give up
                time.sleep(0.05)
            result = _finish(proc)
        finally:
            _kill(proc)
    cpu = h.cpu.usage(cpu_start, h.cpu.snapshot())
    committed = h.count_events() - base
    accept_seconds = result["t_last"] - result["t_first"]
    out: dict[str, Any] = {
        "events": events, "requests": len(bodies), "committed": committed, "statuses": result["statuses"],
        "retries_503": result["retries"], "accept_seconds": round(accept_seconds, 3),
        "accept_events_per_second": round(events / accept_seconds),
        "peak_rss_mb": round(h.sampler.peaks.get(name, 0) / MB, 1), "cpu_cores": cpu,
    }
    if done_at is None:
        out["error"] = f"only {committed} of {events} events committed"
    else:
        seconds = done_at - result["t_first"]
        out.update(e2e_seconds=round(seconds, 3), events_per_second=round(events / seconds))
    progress(f"{name}: {out.get('events_per_second', 'n/a')} events/s end to end, "
             f"{out['accept_events_per_second']} accepted/s, statuses {out['statuses']}")
    return out


def latency_phase(h: Harness, rows: list[tuple[Any, ...]], rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: ``rate`` /track requests per second for ``seconds``; accept latency percentiles."""
    assert h.sampler is not None
    bodies = [json.dumps(to_message(row, "track")).encode() for row in rows]
    config = {"path": "/analytics/track", "bodies": str(_write_bodies("latency", bodies)), "mode": "open",
              "connections": 32, "rate": rate, "duration": seconds, "procs": 1}
    progress(f"latency: open loop, {rate:g} /track requests/s for {seconds:g} s")
    base = h.count_events()
    cpu_start = h.cpu.snapshot()
    with h.sampler.phase("latency"):
        proc = _loadgen(h, "latency", config)
        try:
            result = _finish(proc)
        finally:
            _kill(proc)
    cpu = h.cpu.usage(cpu_start, h.cpu.snapshot())
    sent = result["requests"]
    deadline = time.monotonic() + 60
    while h.count_events() < base + sent and time.monotonic() < deadline:
        time.sleep(0.1)
    achieved = sent / (result["t_last"] - result["t_first"])
    out = {"rate": rate, "seconds": seconds, "requests": sent, "achieved_rate": round(achieved),
           "statuses": result["statuses"], **{f"{k}_ms": v for k, v in result["latency_ms"].items()},
           "peak_rss_mb": round(h.sampler.peaks.get("latency", 0) / MB, 1), "cpu_cores": cpu}
    progress(f"latency: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")
    return out


def run_ingest(h: Harness, args: argparse.Namespace, latency: bool = True) -> dict[str, Any]:
    now = datetime.now(UTC)
    h.reset()
    _ensure_days(h.database_url, {(now - timedelta(days=d)).date() for d in range(-1, 3)})

    progress(f"ingest: generating {args.batch_events:,} + {args.track_events:,} events")
    users = max(100, args.batch_events // 30)
    batch_rows = list(with_web_fields(generate_events(args.batch_events, users, 1, seed=11, now=now), seed=11))
    batch_messages = [to_message(row) for row in batch_rows]
    events = len(batch_messages)

    progress(f"copy ceiling: raw COPY of the same {events:,} rows")
    ceiling = copy_ceiling(h, stored_text(batch_messages, now), events)
    progress(f"copy ceiling: {ceiling['events_per_second']:,} events/s")

    bodies = [json.dumps({"batch": batch_messages[i:i + 100]}).encode() for i in range(0, events, 100)]
    batch = ingest_phase(h, "batch", "/analytics/batch", bodies, events, max(1, args.connections // 4), args.procs)

    track_rows = list(with_web_fields(generate_events(args.track_events, users, 1, seed=12, now=now), seed=12))
    bodies = [json.dumps(to_message(row, "track")).encode() for row in track_rows]
    track = ingest_phase(h, "track", "/analytics/track", bodies, len(bodies), args.connections, args.procs)

    for result in (batch, track):
        if "events_per_second" in result:
            result["ratio_to_copy"] = round(result["events_per_second"] / ceiling["events_per_second"], 3)
    out = {"copy": ceiling, "batch": batch, "track": track}
    if latency:
        count = int(args.latency_rate * args.latency_seconds)
        latency_rows = list(with_web_fields(generate_events(count, users, 1, seed=13, now=now), seed=13))
        out["latency"] = latency_phase(h, latency_rows, args.latency_rate, args.latency_seconds)
    return out


# queries --------------------------------------------------------------------------------------------

def load_dataset(h: Harness, events: int, now: datetime) -> dict[str, Any]:
    """Generate and COPY ``events`` events over 90 days (streamed, in chunks of 100,000 rows)."""
    users = 30_000 if events <= 2_000_000 else 60_000
    h.reset()
    progress(f"dataset: generating and loading {events:,} events of {users:,} users over 90 days")
    started = time.monotonic()
    step = max(100_000, events // 20)

    def counted(rows: Any) -> Any:
        for index, row in enumerate(rows, 1):
            if index % step == 0:
                elapsed = time.monotonic() - started
                progress(f"dataset: {index:,}/{events:,} rows generated and loaded ({elapsed:.0f} s, "
                         f"{index / elapsed:,.0f} rows/s)")
            yield row

    rows = counted(with_web_fields(generate_events(events, users, 90, seed=1, now=now), seed=1))
    loaded = load_events(h.database_url, rows, columns=WEB_COLUMNS)
    load_seconds = time.monotonic() - started
    progress(f"dataset: {loaded:,} rows loaded in {load_seconds:.0f} s; aggregating")
    started = time.monotonic()
    backfill_aggregates(h)
    aggregate_seconds = time.monotonic() - started
    started = time.monotonic()
    compacted = compact_days(h)
    compact_seconds = time.monotonic() - started
    progress(f"dataset: {compacted} closed days compacted in {compact_seconds:.0f} s")
    # statistics of the loaded and backfilled tables, so the query plans do not come from default estimates
    # (a live service's autovacuum analyzes them as they grow; here they were filled in one go)
    started = time.monotonic()
    h.sql("ANALYZE")
    progress(f"dataset: ANALYZE in {time.monotonic() - started:.0f} s")
    incremental = time_incremental_aggregation(h, now)
    storage = measure_storage(h)
    storage["rollups"] = measure_rollups(h)
    progress(f"dataset: aggregates of 90 days in {aggregate_seconds:.0f} s (one dirty hour: {incremental} s); "
             f"{storage['bytes_per_event']} bytes/event")
    return {"events": loaded, "users": users, "load_seconds": round(load_seconds, 1),
            "backfill_aggregate_seconds": round(aggregate_seconds, 1),
            "compacted_days": compacted, "compact_seconds": round(compact_seconds, 1),
            "incremental_aggregate_seconds": incremental, "storage": storage}


def backfill_aggregates(h: Harness, deadline_seconds: float = 4 * 3600) -> None:
    """The service's aggregator (``materialize()``) over every hour the loader marked dirty, until none is left.
    The bench's service runs its own aggregator meanwhile: hours it has claimed are skipped by this claim (SKIP
    LOCKED), so this also waits until the dirty table is empty (at 30M the service took the backlog's first claim
    while the loader was still marking, and the bench's loop found nothing to claim)."""

    async def run() -> None:
        deadline = time.monotonic() + deadline_seconds
        async with aiopg.connect(h.database_url, timeout=3600) as conn:
            while time.monotonic() < deadline:
                if await materialize(conn, 90):
                    continue
                async with conn.cursor() as cur:
                    await cur.execute("SELECT count(*) FROM np_analytics_aggregate_dirty")
                    (left,) = await cur.fetchone()
                if not left:
                    return
                await asyncio.sleep(1)
        raise RuntimeError("dirty hours left after the backfill's deadline")

    asyncio.run(run())


# Every partition's index's fillfactor back to the default: partitions outlive a run (TRUNCATE keeps them), and a
# closed day's marker of being compacted (fillfactor 100) must not survive the rows it was set for.
UNCOMPACT = """
DO $$ DECLARE i record; BEGIN
    FOR i IN SELECT ci.oid::regclass AS name FROM pg_inherits ih JOIN pg_index x ON x.indrelid = ih.inhrelid
             JOIN pg_class ci ON ci.oid = x.indexrelid
             WHERE ih.inhparent = 'np_analytics_events'::regclass AND ci.reloptions IS NOT NULL LOOP
        EXECUTE format('ALTER INDEX %s RESET (fillfactor)', i.name);
    END LOOP;
END $$"""


def compact_days(h: Harness) -> int:
    """What the leader's hourly maintenance does to the closed days (store/compaction.py), all of them at once."""
    h.sql(UNCOMPACT)

    async def run() -> int:
        async with aiopg.connect(h.database_url, timeout=3600) as conn:
            return await compact_closed_days(conn, limit=None)

    return asyncio.run(run())


def time_incremental_aggregation(h: Harness, now: datetime) -> float:
    """Seconds of one run of the service's aggregator with one dirty hour (the steady state of a live service)."""
    h.sql("INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour) "
          "VALUES ('primary', date_trunc('hour', %s::timestamptz - interval '1 hour')) ON CONFLICT DO NOTHING", (now,))

    async def run() -> float:
        async with aiopg.connect(h.database_url, timeout=600) as conn:
            started = time.perf_counter()
            await materialize(conn, 90)
            return time.perf_counter() - started

    return round(asyncio.run(run()), 3)


def measure_storage(h: Harness) -> dict[str, Any]:
    """Bytes per event of the events partitions, with their indexes and TOAST."""
    (heap, index, total), = h.sql("""
        SELECT coalesce(sum(pg_table_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0),
               coalesce(sum(pg_total_relation_size(c.oid)), 0)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'np_analytics_events'::regclass""")
    # a partition's index by the parent's index it is attached to (its own name depends on how it was created), a
    # local one (the open days' time-ordered index) by its name without the partition's
    indexes = h.sql("""
        SELECT coalesce(regexp_replace(pi.relname, '^np_analytics_events_', ''),
                        regexp_replace(ci.relname, '^np_analytics_events_p[0-9]+_', '')), sum(pg_relation_size(ci.oid))
        FROM pg_inherits i JOIN pg_index x ON x.indrelid = i.inhrelid JOIN pg_class ci ON ci.oid = x.indexrelid
        LEFT JOIN pg_inherits ih ON ih.inhrelid = ci.oid LEFT JOIN pg_class pi ON pi.oid = ih.inhparent
        WHERE i.inhparent = 'np_analytics_events'::regclass GROUP BY 1 ORDER BY 2 DESC""")
    # the de-duplication window's message ids (migration 0080): written by the drain with every stored event
    (dedupe, dedupe_rows), = h.sql("SELECT pg_total_relation_size('np_analytics_message_ids'), "
                                   "(SELECT count(*) FROM np_analytics_message_ids)")
    rows = h.count_events()
    per = (lambda v: round(int(v) / rows, 1)) if rows else (lambda v: None)
    return {"rows": rows, "total_bytes": int(total) + int(dedupe), "bytes_per_event": per(int(total) + int(dedupe)),
            "table_bytes_per_event": per(heap), "index_bytes_per_event": per(index),
            "indexes": {name: per(size) for name, size in indexes},
            "message_ids_bytes_per_event": per(dedupe), "message_ids_rows": int(dedupe_rows)}


ROLLUPS = ("np_analytics_event_times", "np_analytics_activity", "np_analytics_aggregates", "np_analytics_web_sessions",
           "np_analytics_web_daily", "np_analytics_web_day_stats", "np_analytics_web_day_sessions", "np_analytics_seen",
           "np_analytics_web_session_events")


def measure_rollups(h: Harness) -> dict[str, float | None]:
    """Bytes per event (the events' rows) of each table the aggregator keeps, indexes and TOAST included."""
    rows = h.count_events()
    sizes = h.sql("SELECT c, pg_total_relation_size(c::regclass) FROM unnest(%s::text[]) AS c", (list(ROLLUPS),))
    return {name: round(int(size) / rows, 1) if rows else None for name, size in sizes}


# The web endpoints (all of /api/* but active, which reads the last 5 minutes whatever the range).
WEB_ENDPOINTS = ("pageviews", "pages", "referrers", "timeseries", "devices", "languages", "browsers", "os",
                 "countries", "hostnames", "entry-pages", "exit-pages", "bounce-rates", "peak-hours", "screen-widths",
                 "session-duration")
# What the dashboard requests on one load of a site's web tab (static/dashboard-web.js, loadWeb), all at once:
# the cards and the chart for the range and for the previous period, every panel, and the sites picker.
DASHBOARD = ("pageviews", "session-duration", "timeseries", "active", "pages", "entry-pages", "exit-pages",
             "referrers", "utm-sources", "utm-mediums", "utm-campaigns", "utm-terms", "utm-contents", "countries",
             "devices", "browsers", "os", "languages", "screen-widths", "hostnames", "peak-hours/week", "bounce-rates")
DASHBOARD_PREVIOUS = ("pageviews", "session-duration", "timeseries")
BROWSER_CONNECTIONS = 6  # a browser's parallel requests to one host


def query_specs(now: datetime) -> dict[str, str]:
    """Name -> path of each timed query; the 30- and 90-day ranges end ``now`` (as the dashboard asks)."""
    specs: dict[str, str] = {}
    end = int(now.timestamp()) + 1
    for days in (30, 90):
        first = (now - timedelta(days=days)).date().isoformat()
        dates = f"start_date={first}&end_date={now.date().isoformat()}"
        unix = f"site=example.com&start={end - days * 86_400}&end={end}"
        specs.update({
            f"funnel 4 steps {days}d":
                f"/analytics/funnel?steps=signup,activate,add_to_cart,purchase&{dates}&window=7d",
            f"retention {days}d": f"/analytics/retention?{dates}&period=week&periods={12 if days == 90 else 4}",
            f"sessions {days}d": f"/analytics/sessions?{dates}",
            f"metrics {days}d": f"/analytics/metrics?{dates}&group_by=day",
            f"trends {days}d": f"/analytics/trends?events=page_view,purchase&{dates}&interval=day",
            **{f"web {name} {days}d": f"/analytics/api/{name}?{unix}" for name in WEB_ENDPOINTS},
        })
    return specs


def dashboard_path(now: datetime, days: int) -> list[str]:
    end, span = int(now.timestamp()) + 1, days * 86_400
    return ([f"/analytics/api/{name}?site=example.com&start={end - span}&end={end}" for name in DASHBOARD]
            + [f"/analytics/api/{name}?site=example.com&start={end - 2 * span}&end={end - span}"
               for name in DASHBOARD_PREVIOUS]
            + [f"/analytics/sites?start_date={(now - timedelta(days=days - 1)).date()}&end_date={now.date()}"])


def _get(url: str) -> tuple[int, float, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {SECRET}"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            body = response.read()
            return response.status, time.perf_counter() - started, body
    except urllib.error.HTTPError as exc:
        return exc.code, time.perf_counter() - started, exc.read()


def _dashboard_load(base_url: str, paths: list[str]) -> tuple[float, list[int]]:
    """Seconds until every call of one dashboard load answered (BROWSER_CONNECTIONS at a time), and the statuses."""
    started = time.perf_counter()
    with ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool:
        answers = list(pool.map(lambda path: _get(base_url + path), paths))
    return time.perf_counter() - started, [status for status, _s, _b in answers]


def run_queries(h: Harness, now: datetime, runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, path in query_specs(now).items():
        status, _seconds, body = _get(h.base_url + path)  # warm-up (and existence check)
        if status == 404:
            results[name] = {"status": "missing", "path": path}
            progress(f"query {name}: missing (404)")
            continue
        if status != 200:
            results[name] = {"status": f"error {status}", "path": path, "body": body[:300].decode(errors="replace")}
            progress(f"query {name}: error {status}: {body[:200]!r}")
            continue
        times = []
        for _ in range(runs):
            status, seconds, body = _get(h.base_url + path)
            times.append(seconds)
        results[name] = {"status": "ok", "path": path, "median_seconds": round(statistics.median(times), 4),
                         "runs": [round(t, 4) for t in times], "response_bytes": len(body)}
        progress(f"query {name}: median {results[name]['median_seconds']} s of {runs}")
    for days in (30, 90):
        paths = dashboard_path(now, days)
        _dashboard_load(h.base_url, paths)  # warm-up
        loads = [_dashboard_load(h.base_url, paths) for _ in range(runs)]
        statuses = sorted({status for _t, answer in loads for status in answer})
        name = f"dashboard load {days}d"
        results[name] = {"status": "ok" if statuses == [200] else f"statuses {statuses}",
                         "path": f"{len(paths)} calls, {BROWSER_CONNECTIONS} at a time",
                         "median_seconds": round(statistics.median(t for t, _a in loads), 4),
                         "runs": [round(t, 4) for t, _a in loads]}
        progress(f"query {name}: median {results[name]['median_seconds']} s of {runs}")
    return results


# report ---------------------------------------------------------------------------------------------

def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else "met" if ok else "MISSED"


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value, whether it is met and by how much it is missed."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float, higher_is_better: bool, unit: str, note: str = "",
            judged: bool = True) -> None:
        # not judged: measured at another size than the target names, so neither met nor missed
        ok = None if value is None or not judged else (value >= limit if higher_is_better else value < limit)
        miss = None
        if ok is False and value is not None:
            miss = f"{(limit - value) / limit:.0%} below" if higher_is_better else f"{value / limit:.1f}x the limit"
        out.append({"target": name, "value": value, "limit": limit, "unit": unit, "met": ok, "miss": miss,
                    "note": note})

    ingest = result.get("ingest", {})
    if ingest:
        add("/batch end to end ≥ 50% of COPY", ingest["batch"].get("ratio_to_copy"), TARGET_BATCH_RATIO, True,
            "ratio")
        add("/track ≥ 5,000 events/s", ingest["track"].get("events_per_second"), TARGET_TRACK_EPS, True, "events/s")
        peak = max(ingest[p].get("peak_rss_mb", 0) for p in ("batch", "track", "latency") if p in ingest)
        add("service RSS < 200 MB under load", peak, TARGET_RSS_MB, False, "MB")
    sizes = result.get("queries", {})
    if sizes:
        size = "10M" if "10M" in sizes else next(iter(sizes))  # the targets are stated at 10M
        note = "" if size == "10M" else f"measured at {size} only; the target is at 10M (run with --ten-million)"
        results = sizes[size]["results"]

        def judge(name: str, queries: list[str], limit: float) -> None:
            # the slowest of ``queries``; a query that did not answer is named instead of a time
            bad = [q for q in queries if results.get(q, {}).get("status") != "ok"]
            worst = max(queries, key=lambda q: results.get(q, {}).get("median_seconds", 0)) if queries else None
            value = None if bad or worst is None else results[worst]["median_seconds"]
            detail = f"not answered: {', '.join(bad)}" if bad else f"slowest: {worst}" if len(queries) > 1 else ""
            add(name, value, limit, False, "s", "; ".join(x for x in (detail, note) if x), judged=size == "10M")

        for days, limit in TARGET_WEB_SECONDS.items():
            judge(f"every web endpoint < {limit * 1000:g} ms, {days} days", [
                q for q in results if q.startswith("web ") and q.endswith(f" {days}d")], limit)
        if "1M" in sizes and size == "10M":  # the web endpoints' growth from 1M to 10M
            small = sizes["1M"]["results"]
            ratios = {q: results[q]["median_seconds"] / small[q]["median_seconds"] for q in results
                      if q.startswith("web ") and results[q].get("status") == "ok"
                      and small.get(q, {}).get("status") == "ok" and small[q]["median_seconds"] > 0}
            if ratios:
                worst = max(ratios, key=lambda q: ratios[q])
                add(f"every web endpoint 10M/1M ≤ {TARGET_WEB_RATIO:g}", round(ratios[worst], 2),
                    TARGET_WEB_RATIO + 1e-9, False, "x", f"largest: {worst}")
        judge(f"dashboard first load < {TARGET_DASHBOARD_SECONDS:g} s (30 days)", ["dashboard load 30d"],
              TARGET_DASHBOARD_SECONDS)
        for days, limit in TARGET_QUERY_SECONDS.items():
            for query in ("funnel 4 steps", "sessions", "retention"):
                judge(f"{query} {days}d < {limit:g} s", [f"{query} {days}d"], limit)
        for query in ("trends 30d", "metrics 30d"):
            judge(f"{query} < 200 ms", [query], TARGET_LIGHT_SECONDS)
        dataset = sizes[size]["dataset"]
        add(f"aggregator, one dirty hour < {TARGET_DIRTY_HOUR_SECONDS:g} s", dataset["incremental_aggregate_seconds"],
            TARGET_DIRTY_HOUR_SECONDS, False, "s", f"at {size}", judged=size == "10M")
        per_event = dataset["storage"]["bytes_per_event"]
        add(f"≤ {TARGET_BYTES_PER_EVENT} bytes per event", per_event, TARGET_BYTES_PER_EVENT + 1e-9, False, "bytes",
            f"at {size}")
        rollups = dataset["storage"].get("rollups") or {}
        if rollups:
            total = round(sum(v or 0 for v in rollups.values()), 1)
            add(f"rollups ≤ {TARGET_ROLLUP_BYTES_PER_EVENT} bytes per event", total,
                TARGET_ROLLUP_BYTES_PER_EVENT + 1e-9, False, "bytes", f"at {size}")
    return out


def table(result: dict[str, Any]) -> str:
    lines = ["| Measure | Value | vs COPY | Notes |", "|---|---|---|---|"]
    ingest = result.get("ingest")
    if ingest:
        c = ingest["copy"]
        lines.append(f"| Raw COPY ceiling | {c['events_per_second']:,} events/s | 1.00 | {c['events']:,} rows, "
                     f"best of 2 |")
        for name, label in (("batch", "/batch end to end (100 events/request)"),
                            ("track", "/track end to end (1 event/request)")):
            r = ingest[name]
            eps = f"{r['events_per_second']:,} events/s" if "events_per_second" in r else r.get("error", "n/a")
            lines.append(f"| {label} | {eps} | {r.get('ratio_to_copy', 'n/a')} | accepted at "
                         f"{r['accept_events_per_second']:,}/s; {r['retries_503']} 503s retried; "
                         f"peak RSS {r['peak_rss_mb']} MB |")
        one = result.get("ingest_one_worker")
        for name, label in (("batch", "/batch"), ("track", "/track")):
            if one and "events_per_second" in one[name] and "events_per_second" in ingest[name]:
                r = one[name]
                lines.append(f"| {label} with ANALYTICS_WORKERS=1 | {r['events_per_second']:,} events/s | "
                             f"{r.get('ratio_to_copy', 'n/a')} | {result.get('workers')} workers do "
                             f"{ingest[name]['events_per_second'] / r['events_per_second']:.2f}x; COPY of that run "
                             f"{one['copy']['events_per_second']:,}/s |")
        many = result.get("ingest_instances")
        for name, label in (("batch", "/batch"), ("track", "/track")):
            if many and "events_per_second" in many[name]:
                r = many[name]
                lines.append(f"| {label} with {many['instances']} instances x {many['workers_each']} worker(s) | "
                             f"{r['events_per_second']:,} events/s | {r.get('ratio_to_copy', 'n/a')} | COPY of that "
                             f"run {many['copy']['events_per_second']:,}/s |")
        lat = ingest.get("latency")
        if lat:
            lines.append(f"| /track accept latency at {lat['rate']:g} req/s, open loop | p50 {lat['p50_ms']} ms, "
                     f"p99 {lat['p99_ms']} ms | | achieved {lat['achieved_rate']} req/s; max {lat['max_ms']} ms; "
                     f"statuses {lat['statuses']} |")
        peak = max(ingest[p].get("peak_rss_mb", 0) for p in ("batch", "track", "latency") if p in ingest)
        lines.append(f"| Service peak RSS under load | {peak} MB | | sampled every 100 ms |")
        for run_name, run in (("", ingest), (" (1 worker)", one), (" (instances)", many)):
            for phase in ("batch", "track", "latency"):
                r = (run or {}).get(phase, {})
                cpu = r.get("cpu_cores")
                if cpu:
                    shares = ", ".join(f"{role} {cpu[role]}" for role in CpuMeter.ROLES)
                    # events per second of CPU of the service and its stores: what the shared box's figure is
                    # worth per core, whatever else ran beside it
                    stack = cpu["service"] + cpu["postgres"] + cpu["redis"]
                    rate = r.get("events_per_second") or r.get("achieved_rate")
                    per_core = f"; {rate / stack:,.0f} events per core-second of service + stores" if rate and stack \
                        else ""
                    lines.append(f"| CPU by role, {phase}{run_name} | {cpu['machine']} of {cpu['cores']} cores | | "
                                 f"{shares}{per_core} |")
    for size, data in result.get("queries", {}).items():
        d = data["dataset"]
        s = d["storage"]
        per_index = ", ".join(f"{k} {v}" for k, v in s["indexes"].items())
        dedupe = (f" + message ids of the de-duplication window {s['message_ids_bytes_per_event']} "
                  f"({s['message_ids_rows']:,} ids)") if "message_ids_rows" in s else ""
        lines.append(f"| Storage at {size} | {s['bytes_per_event']} bytes/event | | table {s['table_bytes_per_event']}"
                     f" + indexes {s['index_bytes_per_event']} ({per_index}){dedupe}; "
                     f"loaded in {d['load_seconds']} s |")
        if s.get("rollups"):
            rollups = ", ".join(f"{k} {v}" for k, v in s["rollups"].items())
            lines.append(f"| Rollups at {size} | {sum(v or 0 for v in s['rollups'].values()):.1f} bytes/event | | "
                         f"not in the storage above: {rollups} |")
        lines.append(f"| Aggregator: all 90 days dirty at {size} | {d['backfill_aggregate_seconds']} s | | "
                     "the service's `materialize()` until nothing is dirty (as after an import or an outage) |")
        lines.append(f"| Aggregator: one dirty hour at {size} | {d['incremental_aggregate_seconds']} s | | "
                     "one `materialize()` run (each ANALYTICS_AGGREGATE_INTERVAL; recomputes the hour and the day rows "
                     "of its sessions) |")
        first = next(iter(result["queries"].values()))["results"]
        for name, q in data["results"].items():
            value = f"{q['median_seconds']} s" if q["status"] == "ok" else q["status"]
            base = first.get(name, {})
            ratio = (f"; {q['median_seconds'] / base['median_seconds']:.2f}x the first size"
                     if data["results"] is not first and q["status"] == "ok" == base.get("status")
                     and base["median_seconds"] else "")
            lines.append(f"| {name} at {size} (median of {len(q.get('runs', [])) or '-'}) | {value} | | "
                         f"`{q['path'].split('?')[0]}`{ratio} |")
    lines += ["", "| Target | Measured | Result |", "|---|---|---|"]
    for t in result["targets"]:
        detail = f" ({t['miss']})" if t["miss"] else ""
        note = f"; {t['note']}" if t["note"] else ""
        lines.append(f"| {t['target']} | {t['value']} {t['unit']} | {_met(t['met'])}{detail}{note} |")
    return "\n".join(lines)


def query_sizes(args: argparse.Namespace) -> list[int]:
    """The query data sets' sizes in the order they are loaded (each replaces the last): smallest first."""
    sizes = [args.query_events] + ([10_000_000] if args.ten_million else []) + \
        ([30_000_000] if args.thirty_million else []) + list(args.events)
    if any(n < 1 for n in sizes):
        raise SystemExit("bench/run: sizes of query data sets must be positive")
    return list(dict.fromkeys(sizes))


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    # log lines of the embedded stores and the aggregator go to stderr: stdout is the table
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    started = datetime.now(UTC)
    result: dict[str, Any] = {
        "started": started.isoformat(), "commit": _git_commit(), "cpus": os.cpu_count(),
        "args": vars(args),
    }
    h = Harness()
    try:
        h.start_stores()
        h.reset()  # before the service starts: its aggregator would otherwise work on a previous run's data
        env = dict(item.split("=", 1) for item in args.service_env)
        if args.profile:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            report = RESULTS_DIR / f"profile-{started:%Y%m%dT%H%M%SZ}.txt"
            h.start_service(profile=report, **{**env, "ANALYTICS_WORKERS": "1"})
            result["ingest"] = run_ingest(h, args, latency=False)
            h.stop_service()
            progress(f"profile: {report.relative_to(ROOT)}")
            args.skip_ingest = args.skip_queries = True
        else:
            h.start_service(**env)
        if not args.skip_ingest:
            result["workers"] = env.get("ANALYTICS_WORKERS") or os.cpu_count()
            result["ingest"] = run_ingest(h, args)
            if not args.skip_one_worker:  # the same phases with one process: what the default workers add
                h.stop_service()
                h.reset()
                h.start_service(**{**env, "ANALYTICS_WORKERS": "1"})
                result["ingest_one_worker"] = run_ingest(h, args, latency=False)
            if args.instances > 1:  # the same phases against several instances sharing the stores
                h.stop_service()
                h.reset()
                h.start_service(instances=args.instances,
                                **{**env, "ANALYTICS_WORKERS": str(args.instance_workers)})
                result["ingest_instances"] = {"instances": args.instances, "workers_each": args.instance_workers,
                                              **run_ingest(h, args, latency=False)}
        if not args.skip_queries:
            result["queries"] = {}
            sizes = query_sizes(args)
            for events in sizes:
                label = f"{events // 1_000_000}M" if events % 1_000_000 == 0 else f"{events:,}"
                now = datetime.now(UTC)
                dataset = load_dataset(h, events, now)
                result["queries"][label] = {"dataset": dataset, "results": run_queries(h, now, args.runs)}
                if events != sizes[-1]:  # a long run's sizes so far (the whole result replaces it at the end)
                    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                    partial = RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}.partial.json"
                    partial.write_text(json.dumps(result, indent=2, default=str) + "\n")
                    progress(f"{label} done: {partial.relative_to(ROOT)}")
    finally:
        h.close()
    result["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    result["targets"] = targets(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    sys.stdout.write(table(result) + f"\n\nJSON: {path.relative_to(ROOT)} ({result['seconds']} s)\n")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # the service and the stores are stopped already (main's finally)
        progress("interrupted")
        raise SystemExit(130) from None
