"""Schema changes on the events table that never hold a lock a writer waits on for long (migration 0101).

* An index of the partitioned ``np_analytics_events`` is created ``ON ONLY`` the parent (catalog only: invalid while
  a partition lacks it), then built on each partition with ``CREATE INDEX CONCURRENTLY`` (inserts go on) and attached;
  attaching the last one makes the parent's index valid. A partition created meanwhile (the drain's maintenance)
  gets its index from the parent at once. Resumable: a partition already attached is skipped, an index a killed
  build left invalid is dropped and built again.
* The statements that need a table lock (the ``ON ONLY`` index, an attach, a drop) run under a short
  ``lock_timeout`` and are retried with backoff, so none waits in the lock queue behind a long read (where it would
  block every insert queued behind it).

Synchronous (psycopg2, autocommit): it runs inside yoyo's migration step, which hands it its connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg2
import psycopg2.errors
import structlog
from psycopg2 import sql

from .partitions import LIST_PARTITIONS, OPEN_INDEX, is_closed, open_index_name, upper_bound

__all__ = ["EventsIndex", "build_events_index", "build_open_indexes", "drop_events_index", "seed_message_ids"]

log = structlog.get_logger("nself_analytics.online_ddl")

PARENT = "np_analytics_events"
# How long one locking statement may wait before it gives way (and is retried), and how often it is tried.
LOCK_TIMEOUT = "500ms"
ATTEMPTS = 40
MAX_DELAY = 2.0

PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'np_analytics_events'::regclass ORDER BY c.relname DESC
"""
# The partition's index attached to the parent's index, if any; else its index of that name and whether it is valid.
ATTACHED = """
SELECT ci.relname FROM pg_inherits ih JOIN pg_class ci ON ci.oid = ih.inhrelid JOIN pg_index x ON x.indexrelid = ci.oid
WHERE ih.inhparent = to_regclass(%(parent_index)s) AND x.indrelid = to_regclass(%(partition)s)
"""
INDEX_VALID = "SELECT x.indisvalid FROM pg_index x WHERE x.indexrelid = to_regclass(%(name)s)"


@dataclass(frozen=True, slots=True)
class EventsIndex:
    """An index of np_analytics_events: its name and what follows ``ON [ONLY] <table>`` (method, keys, predicate)."""

    name: str
    definition: str
    suffix: str  # the partitions' index names: <partition>_<suffix>


def _locking(conn: psycopg2.extensions.connection, statement: sql.Composable) -> None:
    """Run one statement that needs a table lock under a short lock_timeout, retried with backoff."""
    delay = 0.05
    with conn.cursor() as cur:
        cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    cur.execute(statement)
                    return
                except psycopg2.errors.LockNotAvailable:
                    if attempt == ATTEMPTS:
                        raise
                    log.info("ddl_lock_busy", statement=statement.as_string(conn)[:120], attempt=attempt)
                    time.sleep(delay)
                    delay = min(delay * 2, MAX_DELAY)
        finally:
            cur.execute("RESET lock_timeout")


def _one(conn: psycopg2.extensions.connection, query: str, params: dict[str, str]) -> object:
    with conn.cursor() as cur:
        cur.execute(query, params)
        row = cur.fetchone()
    return None if row is None else row[0]


def _partitions(conn: psycopg2.extensions.connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(PARTITIONS)
        return [name for (name,) in cur.fetchall()]


def build_events_index(conn: psycopg2.extensions.connection, index: EventsIndex) -> int:
    """Create ``index`` on np_analytics_events partition by partition (newest first); return how many were built."""
    _locking(conn, sql.SQL("CREATE INDEX IF NOT EXISTS {} ON ONLY {} {}").format(
        sql.Identifier(index.name), sql.Identifier(PARENT), sql.SQL(index.definition)))
    built = 0
    while True:  # partitions created while building get theirs from the parent; list again until none is missing
        missing = [p for p in _partitions(conn)
                   if _one(conn, ATTACHED, {"parent_index": index.name, "partition": p}) is None]
        if not missing:
            break
        for number, partition in enumerate(missing, 1):
            child = f"{partition}_{index.suffix}"[:63]
            started = time.monotonic()
            if _one(conn, INDEX_VALID, {"name": child}) is False:  # left invalid by an interrupted build
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(child)))
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} {}").format(
                    sql.Identifier(child), sql.Identifier(partition), sql.SQL(index.definition)))
            _locking(conn, sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(
                sql.Identifier(index.name), sql.Identifier(child)))
            built += 1
            log.info("index_partition_built", index=index.name, partition=partition, done=number, of=len(missing),
                     seconds=round(time.monotonic() - started, 2))
    if _one(conn, INDEX_VALID, {"name": index.name}) is not True:
        raise RuntimeError(f"{index.name}: still invalid after every partition was attached")
    return built


def build_open_indexes(conn: psycopg2.extensions.connection) -> int:
    """The open days' local time-ordered index (store/partitions.py OPEN_INDEX) on every open partition, built
    concurrently; return how many were built (an invalid one left by an interrupted build is built again)."""
    with conn.cursor() as cur:
        cur.execute(LIST_PARTITIONS)
        found = cur.fetchall()
    now = datetime.now(UTC)
    built = 0
    for partition, bound in found:
        if is_closed(upper_bound(bound or ""), now):
            continue
        name = open_index_name(partition)
        valid = _one(conn, INDEX_VALID, {"name": f'"{name}"'})
        if valid is True:
            continue
        with conn.cursor() as cur:
            if valid is False:
                cur.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
            cur.execute(sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} {}").format(
                sql.Identifier(name), sql.Identifier(partition), sql.SQL(OPEN_INDEX)))
        built += 1
    log.info("open_indexes_built", built=built)
    return built


def drop_events_index(conn: psycopg2.extensions.connection, name: str) -> None:
    """Drop an index of np_analytics_events (every partition's too). A partitioned index cannot be dropped
    CONCURRENTLY: the drop takes ACCESS EXCLUSIVE for a moment (no data is read), under the short lock_timeout."""
    _locking(conn, sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))
    log.info("index_dropped", index=name)


# The ids of the events stored recently (by event time), one partition per transaction, so an entry committed
# before the upgrade but redelivered after it is still stored once (np_analytics_message_ids replaces the unique
# index). Kept a full de-duplication window from now (received_at defaults to now()).
SEED_MESSAGE_IDS = """
INSERT INTO np_analytics_message_ids (source_account_id, message_id)
SELECT DISTINCT source_account_id, message_id FROM {partition} WHERE ts >= now() - interval '2 days'
ON CONFLICT DO NOTHING
"""
PARTITION_RECENT = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'np_analytics_events'::regclass
  AND substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz
      > now() - interval '2 days'
ORDER BY c.relname
"""


def seed_message_ids(conn: psycopg2.extensions.connection) -> int:
    """Remember the message ids of the last two days' events; return how many were added."""
    added = 0
    with conn.cursor() as cur:
        cur.execute(PARTITION_RECENT)
        for (partition,) in cur.fetchall():
            cur.execute(sql.SQL(SEED_MESSAGE_IDS).format(partition=sql.Identifier(partition)))
            added += cur.rowcount
    log.info("message_ids_seeded", added=added)
    return added
