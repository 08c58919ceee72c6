"""The upgrade benchmark of issue 23: a 1.1.1 database of N events (default 10M) upgraded by this checkout's
migrations (0100, 0101) and its backfill, while a concurrent single-row writer (lock_timeout 1 s) inserts an event
every 10 ms. Prints the time of each step, the writer's longest insert (the longest lock wait a writer saw) and
failures, and the database's size before, at its peak and after. Its own embedded PostgreSQL under
bench/.data-upgrade (or DATABASE_URL's server: a database named np_analytics_upgrade_bench is dropped and made).

    .venv/bin/python -m bench.upgrade [--events 10000000] [--days 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiopg
import psycopg2
from yoyo import get_backend, read_migrations

from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.store.backfills import run_batch

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / ".data-upgrade"
RELEASE_1_1_1 = ROOT / "tests" / "fixtures" / "migrations_1_1_1"


def q(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    c = psycopg2.connect(url)
    c.autocommit = True
    with c.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
    c.close()
    return rows


def run(base: str, N: int, DAYS: int) -> None:
    q(base, "DROP DATABASE IF EXISTS np_analytics_upgrade_bench WITH (FORCE)")
    q(base, "CREATE DATABASE np_analytics_upgrade_bench")
    db = urlunsplit(urlsplit(base)._replace(path="/np_analytics_upgrade_bench"))
    def migrate(directory, only=None):
        backend = get_backend(db, migration_table="np_analytics_yoyo_migration")
        with backend.lock():
            pending = backend.to_apply(read_migrations(str(directory)))
            if only:
                pending = pending.filter(lambda m: m.id == only)
            backend.apply_migrations(pending)
        backend.connection.close()


    migrate(RELEASE_1_1_1)
    for d in range(DAYS - 1, -4, -1):
        q(db, f"""DO $$ DECLARE s date := current_date - {d}; BEGIN
          EXECUTE format('CREATE TABLE np_analytics_events_p%s PARTITION OF np_analytics_events '
                         'FOR VALUES FROM (%L) TO (%L)',
                         to_char(s, 'YYYYMMDD'), s::timestamptz, (s + 1)::timestamptz); END $$""")
    t = time.monotonic()
    step = 200_000
    for lo in range(0, N, step):
        q(db, f"""
        INSERT INTO np_analytics_events (ts, message_id, event, user_id, anonymous_id, session_id, site, path, referrer,
                                         device, browser, os, country, properties)
        SELECT now() - ((n / 6) * 7919 % ({DAYS - 1} * 1440)) * interval '1 minute' + (n % 6) * interval '25 seconds',
               gen_random_uuid(),
               CASE WHEN n % 2 = 0 THEN '$pageview' ELSE 'e' || n % 20 END,
               CASE WHEN (n / 6) % 3 = 0 THEN 'u' || (n / 6) % 5000 END, 'a' || (n / 6) % 20000, 's' || n / 6,
               CASE WHEN n % 2 = 0 THEN 'shop.example' END, '/p' || n % 50, 'https://google.com', 'desktop', 'Chrome',
               'Linux', 'DE',
               jsonb_build_object('utm_source', 'news', 'utm_term', 't' || n % 7, 'plan', 'p' || n % 3)
        FROM generate_series({lo}, {min(lo + step, N) - 1}) AS n""")
    q(db, "VACUUM ANALYZE np_analytics_events")
    size0 = q(db, "SELECT pg_database_size('np_analytics_upgrade_bench')")[0][0]
    print(f"loaded {N} events in {time.monotonic() - t:.1f} s; database {size0 / 2**20:.0f} MiB", flush=True)

    stop = threading.Event()
    worst = [0.0]
    failures = [0]
    inserted = [0]
    peak = [size0]


    def writer():
        c = psycopg2.connect(db)
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("SET lock_timeout = '1s'")
            while not stop.is_set():
                began = time.monotonic()
                try:
                    cur.execute("INSERT INTO np_analytics_events (ts, message_id, event, user_id) "
                                "VALUES (now(), %s, 'w', 'writer')", (str(uuid.uuid4()),))
                    inserted[0] += 1
                except psycopg2.Error as exc:
                    failures[0] += 1
                    print("writer failed:", str(exc).strip()[:200], flush=True)
                worst[0] = max(worst[0], time.monotonic() - began)
                time.sleep(0.01)
        c.close()


    def sizer():
        while not stop.is_set():
            peak[0] = max(peak[0], q(db, "SELECT pg_database_size('np_analytics_upgrade_bench')")[0][0])
            time.sleep(0.5)


    threads = [threading.Thread(target=writer), threading.Thread(target=sizer)]
    for th in threads:
        th.start()
    began = time.monotonic()
    for mid in ("0100_schema_1_2", "0101_events_indexes"):
        t = time.monotonic()
        migrate(ROOT / "migrations", only=mid)
        print(f"{mid}: {time.monotonic() - t:.1f} s (writer's longest insert so far {worst[0] * 1000:.0f} ms)",
              flush=True)
    build = time.monotonic() - began


    async def backfill():
        batches = []
        async with aiopg.connect(db) as conn:
            while True:
                t = time.monotonic()
                state = await run_batch(conn, 90)
                if state is None:
                    break
                batches.append(time.monotonic() - t)
        return batches


    t = time.monotonic()
    batches = asyncio.run(backfill())
    fill = time.monotonic() - t
    stop.set()
    for th in threads:
        th.join()
    print(f"build (0100 + 0101): {build:.1f} s; backfill: {fill:.1f} s in {len(batches)} batches "
          f"(longest {max(batches):.1f} s)")
    print(f"writer: {inserted[0]} inserts, {failures[0]} failed (lock_timeout 1 s), longest {worst[0] * 1000:.0f} ms")
    after = q(db, "SELECT pg_database_size('np_analytics_upgrade_bench')")[0][0]
    print(f"database: {size0 / 2**20:.0f} MiB before, peak {peak[0] / 2**20:.0f} MiB, after {after / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        run(os.environ["DATABASE_URL"], args.events, args.days)
        return
    server = EmbeddedPostgres(DATA_DIR)
    try:
        run(server.start(), args.events, args.days)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
