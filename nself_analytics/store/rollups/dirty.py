"""The hours the aggregator has not folded yet, as a read that mixes rollups and raw events plans around them.

The drain marks each hour it writes to in np_analytics_aggregate_dirty (store/events.py); the aggregator
folds and unmarks them (store/rollups/aggregates.py). A read takes the rollups of the other hours and raw events
for these, in one snapshot (REPEATABLE READ: the aggregator swaps both in one transaction), scanning raw
events only from the first to the last dirty hour, so the planner reads only those partitions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg

__all__ = ["dirty_hours"]

HOUR = timedelta(hours=1)
DIRTY_HOURS = """
SELECT hour FROM np_analytics_aggregate_dirty
WHERE source_account_id = %(account)s AND hour >= %(lo)s AND hour < %(hi)s::timestamptz
ORDER BY hour
"""


async def dirty_hours(cur: aiopg.Cursor, account: str, lo: datetime, hi: datetime | None) -> dict[str, Any]:
    """The dirty hours of ``account`` in ``[lo, hi)`` (``hi`` None: no upper bound) as query parameters:
    ``dirty`` (the hours, ascending, UTC), ``dirty_days`` (their UTC dates) and ``dirty_lo``/``dirty_hi``
    (the raw scan's bounds: the first dirty hour to the end of the last; ``lo``/``lo``, an empty scan, when
    none is dirty)."""
    await cur.execute(DIRTY_HOURS, {"account": account, "lo": lo, "hi": "infinity" if hi is None else hi})
    dirty = [hour.astimezone(UTC) for (hour,) in await cur.fetchall()]
    return {"dirty": dirty, "dirty_days": sorted({hour.date() for hour in dirty}),
            "dirty_lo": dirty[0] if dirty else lo, "dirty_hi": dirty[-1] + HOUR if dirty else lo}
