"""The upgrade's backfills, run by the leader's aggregate job after the dirty hours (pipeline/runtime.py).

Batch after batch (store/backfills.py: up to a UTC day each, one transaction each, newest first) while the process
leads and is not stopping; a batch covers as many hours as take about BATCH_SECONDS to rebuild (a day at first;
fewer on a busy database, so no statement nears the background timeout); the aggregator's dirty hours are folded
between batches, so new events never wait behind the backfill. Each batch is logged (``backfill_batch``: the
position, the batches and hours so far, the batch's span and seconds) and the state is in /health (``backfills``). A
backfill interrupted by a stop, a lost leadership or an error resumes at its position at the next run.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiopg
import structlog

from ..store.backfills import run_batch

__all__ = ["run_backfills"]

log = structlog.get_logger("nself_analytics.pipeline.backfill")

# The time one batch should take: the next batch's hours are scaled by it over the last batch's seconds (1 to 24).
BATCH_SECONDS = 10.0


async def run_backfills(conn: aiopg.Connection, retention_days: int, keep_going: Callable[[], bool],
                        between: Callable[[], Awaitable[object]]) -> int:
    """Run backfill batches while ``keep_going()``, awaiting ``between()`` after each; return the batches run."""
    batches = 0
    hours = 24
    while keep_going():
        started = time.monotonic()
        state = await run_batch(conn, retention_days, hours=hours)
        if state is None:
            return batches
        batches += 1
        seconds = time.monotonic() - started
        log.info("backfill_batch", name=state.name, position=state.position, lo=state.lo, batches=state.batches,
                 hours=state.hours, finished=state.finished_at is not None, span_hours=hours,
                 seconds=round(seconds, 3))
        hours = max(1, min(24, int(hours * BATCH_SECONDS / max(seconds, 0.001))))
        await between()
        if state.finished_at is not None:
            log.info("backfill_finished", name=state.name, batches=state.batches, hours=state.hours)
            return batches
    return batches
