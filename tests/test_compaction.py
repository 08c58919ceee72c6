"""Closed days of the events in their compact form (migration 0118, store/compaction.py): an open day's partition
has the time-ordered index, a closed one only the narrow name index and full B-trees, and every read answers the
same before and after, by the indexes the compaction leaves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2

from nself_analytics.store import compaction, explorer, people
from nself_analytics.store.compaction import compact_closed_days, ensure_open_indexes
from nself_analytics.store.export import export_lines
from nself_analytics.store.partitions import ensure_partitions, open_index_name, partition_name

from .store_writes import write_events

INDEXES = """
SELECT ci.relname, x.indisvalid, coalesce(ci.reloptions, '{}') @> ARRAY['fillfactor=100'],
       (SELECT p.relname FROM pg_inherits ih JOIN pg_class p ON p.oid = ih.inhparent WHERE ih.inhrelid = ci.oid)
FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid WHERE x.indrelid = %s::regclass ORDER BY 1
"""

FILENODES = "SELECT ci.relname, ci.relfilenode FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid " \
            "WHERE x.indrelid = %s::regclass ORDER BY 1"


async def _rows(conn: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall()) if cur.description else []


def _events(start: datetime, count: int) -> list[dict[str, Any]]:
    return [{"ts": start + timedelta(minutes=7 * i), "message_id": uuid.uuid4(), "event": f"step{i % 3}",
             "user_id": f"u{i % 4}" if i % 5 else None, "anonymous_id": f"a{i % 6}",
             "site": "example.com" if i % 2 else None, "path": "/p" if i % 2 else None,
             "properties": {"plan": ["free", "pro"][i % 2], "n": i}} for i in range(count)]


async def _answers(conn: Any, start: datetime, end: datetime) -> list[Any]:
    """Reads of raw events over both days: names, a property survey, a person's page, the export."""
    names = await explorer.event_names(conn, account="primary", start=start, end=end, limit=50)
    survey = await explorer.event_properties(conn, account="primary", event="step1", start=start, end=end,
                                             limit=20, values=5)
    person = await people.person(conn, account="primary", distinct_id="u1", limit=100, offset=0)
    lines = [line async for line in export_lines(conn, account="primary", start=start, end=end)]
    counted = await _rows(conn, "SELECT event, count(*), min(ts), max(ts) FROM np_analytics_events "
                                "WHERE source_account_id = 'primary' AND event = ANY(%s) AND ts >= %s AND ts < %s "
                                "GROUP BY event ORDER BY event", ["step0", "step2"], start, end)
    return [names, survey, person, lines, counted]


async def _plan(conn: Any, day: datetime) -> str:
    await _rows(conn, "SET enable_seqscan = off")
    try:
        rows = await _rows(conn, "EXPLAIN SELECT count(*) FROM np_analytics_events WHERE source_account_id = "
                                 "'primary' AND event = 'step1' AND ts >= %s AND ts < %s",
                           day, day + timedelta(hours=6))
    finally:
        await _rows(conn, "RESET enable_seqscan")
    return "\n".join(r[0] for r in rows)


async def test_closed_days_are_compacted_and_read_the_same(pool_conn: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(compaction, "REBUILD_MIN_PAGES", 0)  # rebuild even this test's small indexes
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    old = today - timedelta(days=5)
    await ensure_partitions(pool_conn, [old.date(), today.date()])
    old_part, today_part = partition_name(old.date()), partition_name(today.date())
    rows = _events(old, 150) + _events(max(today, now - timedelta(hours=3)), 20)
    rows = [r for r in rows if r["ts"] < now]
    assert await write_events(pool_conn, rows) == len(rows)
    start, end = old, now + timedelta(seconds=1)
    before = await _answers(pool_conn, start, end)
    assert before[3] and before[4] and before[2] is not None  # the reads see the events of both days

    # created open, today's partition has the time-ordered index; the old day, created closed, does not
    assert open_index_name(today_part) in {r[0] for r in await _rows(pool_conn, INDEXES, today_part)}
    assert open_index_name(old_part) not in {r[0] for r in await _rows(pool_conn, INDEXES, old_part)}

    # partitions outlive the fixtures' TRUNCATE: a test earlier in this worker may have compacted this day already,
    # and its marker (fillfactor 100) would make this compaction skip the rebuild
    for name, *_ in await _rows(pool_conn, INDEXES, old_part):
        await _rows(pool_conn, f'ALTER INDEX "{name}" RESET (fillfactor)')
    rebuilt_before = await _rows(pool_conn, FILENODES, old_part)
    assert await compact_closed_days(pool_conn, limit=None) >= 1
    indexes = await _rows(pool_conn, INDEXES, old_part)
    assert {parent for *_, parent in indexes} == {"np_analytics_events_event_idx", "np_analytics_events_distinct_idx",
                                                  "np_analytics_events_site_ts_idx"}
    assert all(valid and full for _name, valid, full, _parent in indexes)
    # rebuilt: REINDEX CONCURRENTLY swaps in a new relation under the same name
    assert rebuilt_before != await _rows(pool_conn, FILENODES, old_part)
    assert await compact_closed_days(pool_conn, limit=None) == 0  # once
    assert "event_idx" in await _plan(pool_conn, old)
    assert await _answers(pool_conn, start, end) == before

    # three days on, today is closed too: its open index goes, and the reads still answer the same
    assert await compact_closed_days(pool_conn, now=now + timedelta(days=3), limit=None) >= 1
    assert open_index_name(today_part) not in {r[0] for r in await _rows(pool_conn, INDEXES, today_part)}
    assert await _answers(pool_conn, start, end) == before
    # at today's time it is open: the maintenance builds its open index again, and a time range is read by it
    assert await ensure_open_indexes(pool_conn) >= 1
    assert open_index_name(today_part) in {r[0] for r in await _rows(pool_conn, INDEXES, today_part)}
    assert "event_ts_open" in await _plan(pool_conn, today)
    assert await ensure_open_indexes(pool_conn) == 0
    assert await _answers(pool_conn, start, end) == before


async def test_an_interrupted_rebuild_is_finished_by_the_next_run(pool_conn: Any) -> None:
    """What a killed REINDEX CONCURRENTLY leaves (an invalid index beside the old one) is dropped, the rest rebuilt."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=8)
    await ensure_partitions(pool_conn, [day.date()])
    part = partition_name(day.date())
    await write_events(pool_conn, _events(day, 30))
    await compact_closed_days(pool_conn, limit=None)
    # an index left invalid: created, then marked so as an interrupted concurrent build leaves it
    await _rows(pool_conn, f"CREATE INDEX {part}_site_ts_idx_ccnew ON {part} (site, ts)")
    await _rows(pool_conn, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
                f"{part}_site_ts_idx_ccnew")
    assert await compact_closed_days(pool_conn, limit=None) >= 1
    names = {r[0] for r in await _rows(pool_conn, INDEXES, part)}
    assert f"{part}_site_ts_idx_ccnew" not in names and len(names) == 3


async def test_a_rebuild_ended_by_the_statement_timeout_is_not_tried_again(pool_conn: Any, stores: Any,
                                                                          monkeypatch: Any) -> None:
    """A rebuild that the background timeout ends does not stop the maintenance, is not retried every run (a data
    fault, DECISIONS item 6), and leaves nothing invalid after the next run."""
    monkeypatch.setattr(compaction, "REBUILD_MIN_PAGES", 0)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=12)
    await ensure_partitions(pool_conn, [day.date()])
    part = partition_name(day.date())
    await write_events(pool_conn, _events(day, 40))
    await _rows(pool_conn, f"ALTER INDEX {part}_site_ts_idx RESET (fillfactor)")
    # a transaction holding an older snapshot: a concurrent rebuild waits for it (and here meets its timeout)
    blocker = psycopg2.connect(stores.database_url)
    try:
        with blocker.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT count(*) FROM np_analytics_users")
        await _rows(pool_conn, "SET statement_timeout = '300ms'")
        try:
            await compact_closed_days(pool_conn, limit=None)
        finally:
            await _rows(pool_conn, "RESET statement_timeout")
    finally:
        blocker.rollback()
        blocker.close()
    indexes = await _rows(pool_conn, INDEXES, part)
    left = [name for name, *_ in indexes if name.endswith("_ccnew")]  # what the ended rebuild left
    assert len(left) == 1
    # the index whose rebuild was ended is marked (fillfactor 100): it is not rebuilt again
    assert {name: full for name, _v, full, _p in indexes}[left[0].removesuffix("_ccnew")]
    await compact_closed_days(pool_conn, limit=None)
    indexes = await _rows(pool_conn, INDEXES, part)
    assert len(indexes) == 3 and all(valid and full for _n, valid, full, _p in indexes)
    assert await compact_closed_days(pool_conn, limit=None) == 0
