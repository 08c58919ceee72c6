"""The aggregator job (leader only): materialize the dirty hours (store/rollups/aggregates.py), never retrying the same
input forever (docs/architecture.md, decision 6).

A round that outlasts its statement timeout (StatementTimeout) claims fewer hours next time (a quarter, down to one);
a single hour that times out alone is quarantined: left dirty (reads of it stay exact, from raw events), skipped by
later claims, shown in /health (``tasks.aggregate.detail.quarantined``) and retried alone after a backoff that doubles
from QUARANTINE_FIRST_SECONDS to QUARANTINE_CAP_SECONDS. Successful rounds grow the claim back.
"""

from __future__ import annotations

import time
from datetime import datetime

import aiopg
import structlog

from ..store.rollups.aggregates import materialize, next_dirty
from ..store.tx import StatementTimeout, statement_timeouts

__all__ = ["Aggregator"]

log = structlog.get_logger("nself_analytics.pipeline.aggregator")

CLAIM_LIMIT = 5000
QUARANTINE_FIRST_SECONDS = 60.0
QUARANTINE_CAP_SECONDS = 3600.0

Hour = tuple[str, datetime]


class Aggregator:
    def __init__(self, pool: aiopg.Pool, retention_days: int, *,
                 first_backoff: float = QUARANTINE_FIRST_SECONDS) -> None:
        self.pool = pool
        self.retention_days = retention_days
        self.first_backoff = first_backoff
        self.limit = CLAIM_LIMIT
        # hour -> (monotonic time of its next try, failures)
        self.quarantine: dict[Hour, tuple[float, int]] = {}

    def detail(self) -> dict[str, object]:
        """What /health shows: the claim size and the quarantined hours."""
        now = time.monotonic()
        return {"claim": self.limit, "quarantined": [
            {"source_account_id": a, "hour": h.isoformat(), "failures": n, "retry_in": round(max(0.0, due - now), 1)}
            for (a, h), (due, n) in sorted(self.quarantine.items())]}

    async def run(self) -> int:
        """Materialize until nothing (outside the quarantine) is dirty; return the hours done."""
        total = 0
        async with self.pool.acquire() as conn:
            await self._retry_quarantined(conn)
            while True:
                try:
                    async with statement_timeouts():
                        claimed = await materialize(conn, self.retention_days, self.limit, skip=list(self.quarantine))
                except StatementTimeout:
                    await self._timed_out(conn)
                    continue
                if not claimed:
                    return total
                total += claimed
                self.limit = min(CLAIM_LIMIT, self.limit * 2)

    async def _timed_out(self, conn: aiopg.Connection) -> None:
        if self.limit > 1:
            self.limit = max(1, self.limit // 4)
            log.warning("aggregate_timed_out", claim=self.limit)
            return
        hour = await next_dirty(conn, list(self.quarantine))
        if hour is not None:
            self._quarantine(hour, 0)

    def _quarantine(self, hour: Hour, failures: int) -> None:
        delay = min(self.first_backoff * 2 ** failures, QUARANTINE_CAP_SECONDS)
        self.quarantine[hour] = (time.monotonic() + delay, failures + 1)
        log.warning("aggregate_hour_quarantined", source_account_id=hour[0], hour=hour[1].isoformat(),
                    failures=failures + 1, retry_in=delay)

    async def _retry_quarantined(self, conn: aiopg.Connection) -> None:
        now = time.monotonic()
        for hour, (due, failures) in list(self.quarantine.items()):
            if due > now:
                continue
            try:
                async with statement_timeouts():
                    await materialize(conn, self.retention_days, 1, only=[hour])
            except StatementTimeout:
                self._quarantine(hour, failures)
                continue
            del self.quarantine[hour]
            log.info("aggregate_hour_released", source_account_id=hour[0], hour=hour[1].isoformat())
