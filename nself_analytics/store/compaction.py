"""Closed days of np_analytics_events in their compact form (migration 0118, issue 27 item 2).

A day's partition is open until ``partitions.CLOSE_AFTER`` past its end: it then has, beside the parent's indexes,
the local time-ordered (source_account_id, event, ts) index that reads of recent hours use. The leader's hourly
maintenance (pipeline/runtime.py ``maintain``) compacts each closed day once, a few per run (:data:`PER_RUN`):

1. indexes an interrupted concurrent build or rebuild left invalid are dropped (``DROP INDEX CONCURRENTLY``);
2. the open index is dropped (``DROP INDEX CONCURRENTLY``): a closed day is found by the parent's narrow
   (source_account_id, event) index, stored de-duplicated (a few bytes per event against ~45-60 for a key with the
   time), and a range read of a closed day reads whole days but at the range's edges, where the time filters rows;
3. every other index gets fillfactor 100 and is rebuilt (``REINDEX INDEX CONCURRENTLY``): indexes grown by
   inserts are a third emptier than built ones, and a closed day takes few inserts. A rebuild that the background
   statement timeout ends is not tried again (the fillfactor, set first, marks it done; its invalid copy is
   dropped by the next run): a data fault, never retried forever.

Every step holds only locks that inserts do not wait on (late events of a closed day go on being stored); a step a
restart interrupts is resumed by the next run (the state is the catalog's: a closed partition is compacted when it
has no open index, no invalid index and every B-tree index has fillfactor 100). Open partitions missing their open
index (created by a version before 0118, or by hand) get it here, built concurrently.

The queries do not change: the planner picks each partition's indexes, and a closed day's rows are the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiopg
import psycopg2
import structlog

from .partitions import OPEN_INDEX, is_closed, list_partitions, open_index_name, upper_bound
from .tx import StatementTimeout, statement_timeouts

__all__ = ["PER_RUN", "compact_closed_days", "ensure_open_indexes"]

log = structlog.get_logger("nself_analytics.compaction")

# Closed partitions compacted per maintenance run (hourly): a 90-day database upgraded to 0118 is done in a day.
PER_RUN = 4
FILLFACTOR = 100
# An index smaller than this (pages) only gets the fillfactor (for its later splits): rebuilding it gains nothing.
REBUILD_MIN_PAGES = 4
# A partition's indexes: name, valid, B-tree, fillfactor 100 set, pages.
_INDEXES = """
SELECT ci.relname, x.indisvalid, am.amname = 'btree',
       coalesce(ci.reloptions, '{}') @> ARRAY['fillfactor=100'], pg_relation_size(ci.oid) / 8192
FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_am am ON am.oid = ci.relam
WHERE x.indrelid = to_regclass(quote_ident(%(partition)s))
ORDER BY ci.relname
"""


Index = tuple[str, bool, bool, bool, int]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _execute(conn: aiopg.Connection, statement: str) -> None:
    async with conn.cursor() as cur:
        await cur.execute(statement)


async def _indexes(conn: aiopg.Connection, partition: str) -> list[Index]:
    async with conn.cursor() as cur:
        await cur.execute(_INDEXES, {"partition": partition})
        return [(str(n), bool(v), bool(b), bool(f), int(pages)) for n, v, b, f, pages in await cur.fetchall()]


def _compacted(partition: str, indexes: list[Index]) -> bool:
    return all(valid and (full or not btree) and name != open_index_name(partition)
               for name, valid, btree, full, _pages in indexes)


async def _compact(conn: aiopg.Connection, partition: str, indexes: list[Index]) -> None:
    for name, valid, _btree, _full, _pages in indexes:
        if not valid or name == open_index_name(partition):
            await _execute(conn, f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(name)}")
    for name, valid, btree, full, pages in indexes:
        if valid and btree and not full and name != open_index_name(partition):
            # ShareUpdateExclusive on the index: inserts go on; the rebuild builds beside it and swaps
            await _execute(conn, f"ALTER INDEX {_quote(name)} SET (fillfactor = {FILLFACTOR})")
            if pages >= REBUILD_MIN_PAGES:
                await _execute(conn, f"REINDEX INDEX CONCURRENTLY {_quote(name)}")


async def _partitions(conn: aiopg.Connection, now: datetime) -> list[tuple[str, bool]]:
    """(name, closed) of every partition, newest first."""
    found = [(name, upper_bound(bound)) for name, bound in await list_partitions(conn)]
    found.sort(key=lambda item: item[1] or datetime.max.replace(tzinfo=UTC), reverse=True)
    return [(name, is_closed(end, now)) for name, end in found]


async def compact_closed_days(conn: aiopg.Connection, now: datetime | None = None,
                              limit: int | None = PER_RUN) -> int:
    """Compact up to ``limit`` (None: all) closed partitions not compacted yet, newest first; return how many.
    ``conn`` must be in autocommit (no transaction open): the concurrent index statements cannot run in one."""
    now = now or datetime.now(UTC)
    done = 0
    for partition, closed in await _partitions(conn, now):
        if limit is not None and done >= limit:
            break
        if not closed:
            continue
        indexes = await _indexes(conn, partition)
        if _compacted(partition, indexes):
            continue
        try:
            async with statement_timeouts():
                await _compact(conn, partition, indexes)
        except (psycopg2.Error, StatementTimeout) as exc:
            # a partition dropped meanwhile, a concurrent compaction, a rebuild longer than the background timeout:
            # the others go on; the next run drops what was left invalid, and an index whose rebuild timed out
            # already has its fillfactor, so it is not rebuilt again (never the same timeout every hour)
            log.warning("compaction_failed", partition=partition, error=str(exc).strip()[:200])
            continue
        done += 1
        log.info("partition_compacted", partition=partition)
    return done


async def ensure_open_indexes(conn: aiopg.Connection, now: datetime | None = None) -> int:
    """Build the open index of every open partition that lacks it (concurrently); return how many were built."""
    now = now or datetime.now(UTC)
    built = 0
    for partition, closed in await _partitions(conn, now):
        if closed:
            continue
        name = open_index_name(partition)
        indexes = {index[0]: index[1] for index in await _indexes(conn, partition)}
        if indexes.get(name) is True:
            continue
        if name in indexes:  # left invalid by an interrupted build
            await _execute(conn, f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(name)}")
        await _execute(conn, f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_quote(name)} ON {_quote(partition)} "
                             f"{OPEN_INDEX}")
        built += 1
    return built
