"""Daily partitions of np_analytics_events: only for the retention window, created ahead, dropped whole.

Partitions exist for the UTC days ``[today - retention, today + AHEAD_DAYS]`` (:func:`partition_window`). The
worker's maintenance job (:func:`maintain_partitions`, at start and hourly) creates the coming days before any
event needs them and drops the days past retention, so the drain never runs DDL in the normal case. DDL takes
an ACCESS EXCLUSIVE lock on the parent table; it runs with a short ``lock_timeout`` and is retried, so it never
sits in the lock queue behind a long read (where it would block every insert queued behind it).

Open and closed days (migration 0118, store/compaction.py): a day's partition is *open* until CLOSE_AFTER past its
end. An open partition also has a local (source_account_id, event, ts) index (:data:`OPEN_INDEX`, created with it),
for the reads of recent hours in time order; every partition has the parent's narrow (source_account_id, event)
index, which B-tree de-duplication stores in a few bytes per event. Once closed, the compaction drops the open index
and rebuilds the others full (fillfactor 100): a closed day's reads are whole days, found by name.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import aiopg
import psycopg2
import psycopg2.errors
import structlog

from .tx import transaction

__all__ = [
    "AHEAD_DAYS",
    "CLOSE_AFTER",
    "OPEN_INDEX",
    "ensure_partitions",
    "forget_partitions",
    "is_closed",
    "list_partitions",
    "maintain_partitions",
    "open_index_name",
    "partition_name",
    "partition_window",
    "prune_partitions",
    "upper_bound",
]

log = structlog.get_logger("nself_analytics.partitions")

PARENT = "np_analytics_events"
# Days created ahead of today: the job runs hourly, so a few days leave room for it failing for a while.
AHEAD_DAYS = 3
# How long one DDL statement may wait for its lock before it gives way to the reads (and is retried).
LOCK_TIMEOUT = "500ms"
DDL_ATTEMPTS = 6
# Partition names are built only from dates we format ourselves, never from user input.
_CREATE = (
    "CREATE TABLE IF NOT EXISTS {name} PARTITION OF np_analytics_events "
    "FOR VALUES FROM ('{start}T00:00:00+00:00') TO ('{end}T00:00:00+00:00')"
)
# A day is closed this long after its end: late events (clients that batch offline) still arrive before that.
CLOSE_AFTER = timedelta(days=2)
# The open days' local index: what follows ``ON <partition>``; its name is <partition>_<OPEN_SUFFIX>.
OPEN_INDEX = "(source_account_id, event, ts)"
OPEN_SUFFIX = "event_ts_open"
_CREATE_OPEN = "CREATE INDEX IF NOT EXISTS {index} ON {name} " + OPEN_INDEX
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('np_analytics_events_partitions'))"
_LOCK_TIMEOUT = f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
# Every partition with its bound as Postgres prints it; pruning reads the bound, not the name.
LIST_PARTITIONS = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'np_analytics_events' ORDER BY c.relname
"""
_UPPER_BOUND = re.compile(r"TO \('([^']+)'\)")

_known: set[str] = set()


def partition_name(day: date) -> str:
    # zero-padded by hand: strftime("%Y") does not pad years before 1000 on every platform
    return f"{PARENT}_p{day.year:04d}{day.month:02d}{day.day:02d}"


def open_index_name(partition: str) -> str:
    return f"{partition}_{OPEN_SUFFIX}"[:63]


def is_closed(end: datetime | None, now: datetime) -> bool:
    """Whether a partition whose range ends at ``end`` (None: no upper bound) is closed at ``now``."""
    return end is not None and end <= now - CLOSE_AFTER


def partition_window(retention_days: int, now: datetime | None = None) -> tuple[date, date]:
    """The first and last UTC day that may have a partition: ``[now - retention, now + AHEAD_DAYS]``."""
    now = now or datetime.now(UTC)
    return (now - timedelta(days=retention_days)).date(), (now + timedelta(days=AHEAD_DAYS)).date()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _ddl(conn: aiopg.Connection, *statements: str) -> None:
    """One DDL statement under the partitions' advisory lock and a short lock_timeout, retried with backoff."""
    delay = 0.05
    for attempt in range(1, DDL_ATTEMPTS + 1):
        try:
            async with transaction(conn) as cur:
                await cur.execute(_LOCK_TIMEOUT)
                await cur.execute(_LOCK)
                for statement in statements:
                    await cur.execute(statement)
            return
        except psycopg2.errors.LockNotAvailable:
            if attempt == DDL_ATTEMPTS:
                raise
            log.info("partition_ddl_waiting", attempt=attempt, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def ensure_partitions(conn: aiopg.Connection, days: Iterable[date]) -> None:
    """Create the daily partitions holding ``days`` unless they exist (safe with concurrent drainers)."""
    missing = sorted({d for d in days if partition_name(d) not in _known})
    if not missing:
        return
    existing = {name for name, _bound in await list_partitions(conn)}
    _known.update(existing)
    for day in missing:
        name = partition_name(day)
        if name not in existing:
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
            create = _CREATE.format(name=name, start=day.isoformat(), end=end.date().isoformat())
            if is_closed(end, datetime.now(UTC)):
                await _ddl(conn, create)
            else:  # an open day gets its time-ordered index with the (empty) table, in the same transaction
                await _ddl(conn, create, _CREATE_OPEN.format(index=_quote(open_index_name(name)), name=name))
        _known.add(name)


async def list_partitions(conn: aiopg.Connection) -> list[tuple[str, str]]:
    """(name, bound expression) of every partition of the events table."""
    async with conn.cursor() as cur:
        await cur.execute(LIST_PARTITIONS)
        return [(row[0], row[1] or "") for row in await cur.fetchall()]


def upper_bound(bound: str) -> datetime | None:
    """The exclusive end of a partition's range; None when it has none (MAXVALUE, a default partition)."""
    match = _UPPER_BOUND.search(bound)
    if not match:
        return None
    text = match.group(1)
    if text.endswith(" BC"):
        return datetime.min.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def prune_partitions(conn: aiopg.Connection, retention_days: int, now: datetime | None = None) -> list[str]:
    """Drop every partition whose range ends before the retention window (whatever its name); return the names."""
    now = now or datetime.now(UTC)
    cutoff = datetime.combine(partition_window(retention_days, now)[0], datetime.min.time(), tzinfo=UTC)
    dropped = []
    for name, bound in await list_partitions(conn):
        end = upper_bound(bound)
        if end is not None and end <= cutoff:
            await _ddl(conn, f"DROP TABLE IF EXISTS {_quote(name)}")
            _known.discard(name)
            dropped.append(name)
    if dropped:
        log.info("partitions_pruned", dropped=len(dropped), first=dropped[0], last=dropped[-1],
                 retention_days=retention_days)
    return dropped


async def maintain_partitions(conn: aiopg.Connection, retention_days: int,
                              now: datetime | None = None) -> list[str]:
    """Create the window's missing days, drop those past it; return the names dropped."""
    first, last = partition_window(retention_days, now)
    days = [last - timedelta(days=i) for i in range((last - first).days + 1)]
    await ensure_partitions(conn, days)
    return await prune_partitions(conn, retention_days, now)


def forget_partitions() -> None:
    """Clear the in-process cache of known partitions (after a schema reset in tests)."""
    _known.clear()
