"""The hours the aggregator has not folded yet, as a read that mixes rollups and raw events plans around them.

The drain marks each hour it writes to in np_analytics_aggregate_dirty (store/events.py); the aggregator
folds and unmarks them (store/rollups/aggregates.py). A read takes the rollups of the other hours and raw events
for these, in one snapshot (REPEATABLE READ: the aggregator swaps both in one transaction), scanning raw
events only from the first to the last dirty hour, so the planner reads only those partitions.

The rollups 1.2 added (event times, web fragments and days) also count an hour as dirty while the upgrade's backfill
has not rebuilt it (np_analytics_backfills: [lo, position) until finished; pipeline/backfill.py), so their reads stay
exact during the backfill. The aggregates and the activity, which 1.1.1 already kept, do not wait for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg

__all__ = ["DIRTY_HOURS", "backfill_pending_sql", "dirty_hours"]

HOUR = timedelta(hours=1)


def backfill_pending_sql(lo: str, hi: str) -> str:
    """The UTC hours in ``[%(lo)s, %(hi)s)`` (parameter names) an unfinished backfill has not rebuilt yet: its
    ``[lo, position)`` (no position yet: up to the partitions' horizon, now + 4 days), as a query of one column."""
    return f"""
SELECT generate_series(
    date_trunc('hour', (greatest(b.lo, %({lo})s::timestamptz) - interval '1 microsecond') AT TIME ZONE 'UTC')
        AT TIME ZONE 'UTC' + interval '1 hour',
    least(b.position, %({hi})s::timestamptz, now() + interval '4 days') - interval '1 microsecond',
    interval '1 hour')
FROM np_analytics_backfills b WHERE b.finished_at IS NULL AND b.lo IS NOT NULL"""


_MARKED = """
SELECT hour FROM np_analytics_aggregate_dirty
WHERE source_account_id = %(account)s AND hour >= %(lo)s AND hour < %(hi)s::timestamptz"""
DIRTY_HOURS = f"{_MARKED}\nORDER BY hour"
DIRTY_OR_PENDING_HOURS = f"{_MARKED}\nUNION{backfill_pending_sql('lo', 'hi')}\nORDER BY 1"


async def dirty_hours(cur: aiopg.Cursor, account: str, lo: datetime, hi: datetime | None,
                      backfilled: bool = True) -> dict[str, Any]:
    """The dirty hours of ``account`` in ``[lo, hi)`` (``hi`` None: no upper bound) as query parameters:
    ``dirty`` (the hours, ascending, UTC), ``dirty_days`` (their UTC dates) and ``dirty_lo``/``dirty_hi``
    (the raw scan's bounds: the first dirty hour to the end of the last; ``lo``/``lo``, an empty scan, when
    none is dirty). ``backfilled``: the read uses rollups the upgrade's backfill builds (its pending hours count)."""
    await cur.execute(DIRTY_OR_PENDING_HOURS if backfilled else DIRTY_HOURS,
                      {"account": account, "lo": lo, "hi": "infinity" if hi is None else hi})
    dirty = [hour.astimezone(UTC) for (hour,) in await cur.fetchall()]
    return {"dirty": dirty, "dirty_days": sorted({hour.date() for hour in dirty}),
            "dirty_lo": dirty[0] if dirty else lo, "dirty_hi": dirty[-1] + HOUR if dirty else lo}
