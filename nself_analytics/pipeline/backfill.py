"""The upgrade's backfills, run by the leader's aggregate job after the dirty hours (pipeline/runtime.py).

Batch after batch (store/backfills.py: one UTC day each, one transaction each, newest day first) while the process
leads and is not stopping; the aggregator's dirty hours are folded between batches, so new events never wait behind
the backfill. Each batch is logged (``backfill_batch``: the day, its hours, the position, the batches so far and the
seconds it took) and its state is in /health (``backfills``). A backfill interrupted by a stop, a lost leadership or
an error resumes at its position at the next run.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiopg
import structlog

from ..store.backfills import run_batch

__all__ = ["run_backfills"]

log = structlog.get_logger("nself_analytics.pipeline.backfill")


async def run_backfills(conn: aiopg.Connection, retention_days: int, keep_going: Callable[[], bool],
                        between: Callable[[], Awaitable[object]]) -> int:
    """Run backfill batches while ``keep_going()``, awaiting ``between()`` after each; return the batches run."""
    batches = 0
    while keep_going():
        started = time.monotonic()
        state = await run_batch(conn, retention_days)
        if state is None:
            return batches
        batches += 1
        log.info("backfill_batch", name=state.name, position=state.position, lo=state.lo, batches=state.batches,
                 hours=state.hours, finished=state.finished_at is not None,
                 seconds=round(time.monotonic() - started, 3))
        await between()
        if state.finished_at is not None:
            log.info("backfill_finished", name=state.name, batches=state.batches, hours=state.hours)
            return batches
    return batches
