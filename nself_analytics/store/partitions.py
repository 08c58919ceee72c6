"""Daily partitions of np_analytics_events: created on demand, dropped whole for retention."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import aiopg
import structlog

from .tx import transaction

__all__ = ["ensure_partitions", "partition_name", "prune_partitions"]

log = structlog.get_logger("nself_analytics.partitions")

PARENT = "np_analytics_events"
# Partition names are built only from dates we format ourselves, never from user input.
_CREATE = (
    "CREATE TABLE IF NOT EXISTS {name} PARTITION OF np_analytics_events "
    "FOR VALUES FROM ('{start}T00:00:00+00:00') TO ('{end}T00:00:00+00:00')"
)
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('np_analytics_events_partitions'))"
LIST_PARTITIONS = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'np_analytics_events' ORDER BY c.relname
"""

_known: set[str] = set()


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


async def ensure_partitions(conn: aiopg.Connection, days: Iterable[date]) -> None:
    """Create the daily partitions holding ``days`` unless they exist (safe with concurrent drainers)."""
    missing = sorted({d for d in days if partition_name(d) not in _known})
    if not missing:
        return
    async with transaction(conn) as cur:
        await cur.execute(_LOCK)
        for day in missing:
            await cur.execute(_CREATE.format(name=partition_name(day), start=day.isoformat(),
                                             end=(day + timedelta(days=1)).isoformat()))
    _known.update(partition_name(d) for d in missing)


async def list_partitions(conn: aiopg.Connection) -> list[str]:
    async with conn.cursor() as cur:
        await cur.execute(LIST_PARTITIONS)
        return [row[0] for row in await cur.fetchall()]


async def prune_partitions(conn: aiopg.Connection, retention_days: int, now: datetime | None = None) -> list[str]:
    """Drop every daily partition that ends before now - retention_days; return the names dropped."""
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=retention_days)).date()
    dropped = []
    for name in await list_partitions(conn):
        try:
            day = datetime.strptime(name.rsplit("_p", 1)[1], "%Y%m%d").date()
        except (IndexError, ValueError):
            continue
        if day + timedelta(days=1) <= cutoff:
            async with transaction(conn) as cur:
                await cur.execute(_LOCK)
                await cur.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
            _known.discard(name)
            dropped.append(name)
    if dropped:
        log.info("partitions_pruned", dropped=dropped, retention_days=retention_days)
    return dropped


def forget_partitions() -> None:
    """Clear the in-process cache of known partitions (after a schema reset in tests)."""
    _known.clear()
