"""The facts task: what the events the drain stored report, found after their acknowledgement, off the ingest path.

Each round claims the oldest rows of the event outbox (store/event_outbox.py, written by the drain's statement) and,
in the same transaction: fans the events out to their ``event.tracked`` webhooks, records the ``funnel.completed``
facts (pipeline/webhook_facts.py) and, with ANALYTICS_QUOTA_ENABLED, the quota crossings of their users
(ingest/quota_check.py); the commit deletes the rows. A crash before the commit leaves the rows to the next round,
and every fact has a key that keeps it once (exactly-once facts). The rows are claimed with SKIP LOCKED, so the task
runs in every process. A round whose statement times out is a data fault (docs: decision 6): the claim is halved, and
a single row that times out alone is dropped with a warning, never retried forever.
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiopg
import redis.asyncio as aioredis
import structlog

from ..config import Settings
from ..ingest.quota_check import record_crossings
from ..store import event_outbox
from ..store.event_outbox import NewEvent
from ..store.tx import StatementTimeout, statement_timeouts, transaction
from .webhook_facts import record_funnel_completions

__all__ = ["CLAIM_LIMIT", "Facts"]

log = structlog.get_logger("nself_analytics.pipeline.facts")

# Outbox rows per round (and per transaction).
CLAIM_LIMIT = 1000
# Seconds between rounds when the outbox was empty, or held less than a full claim.
IDLE_SECONDS = 0.2


class Facts:
    """One round at a time: ``step`` (the supervised loop) and ``run_once`` (tests)."""

    def __init__(self, pool: aiopg.Pool, client: aioredis.Redis, settings: Settings) -> None:
        self.pool = pool
        self.redis = client
        self.settings = settings
        self.limit = CLAIM_LIMIT
        self.dropped = 0

    async def run_once(self) -> int:
        """Claim and handle one round of outbox rows; return how many."""
        async with self.pool.acquire() as conn:
            try:
                async with statement_timeouts(), transaction(conn):
                    events = await event_outbox.claim(conn, self.limit)
                    await self._facts(conn, events)
            except StatementTimeout:
                return await self._timed_out(conn)
        if self.limit < CLAIM_LIMIT:
            self.limit = min(CLAIM_LIMIT, self.limit * 2)
        return len(events)

    async def _timed_out(self, conn: aiopg.Connection) -> int:
        if self.limit > 1:
            self.limit = max(1, self.limit // 2)
            log.warning("facts_timed_out", claim=self.limit)
            return 0
        async with transaction(conn):
            events = await event_outbox.claim(conn, 1)
            await event_outbox.drop(conn, [e.seq for e in events])
        self.dropped += len(events)
        log.warning("facts_dropped", reason="statement timeout on this event alone",
                    events=[(e.source_account_id, e.message_id) for e in events])
        return len(events)

    async def _facts(self, conn: aiopg.Connection, events: list[NewEvent]) -> None:
        if not events:
            return
        await event_outbox.fan_out_tracked(conn, events)
        await record_funnel_completions(conn, events)
        if self.settings.quota_enabled:
            await self._crossings(conn, events)

    async def _crossings(self, conn: aiopg.Connection, events: list[NewEvent]) -> None:
        by_account: dict[str, set[tuple[str, str]]] = {}
        for item in events:
            user = item.user_id or item.anonymous_id
            if item.type in ("track", "page") and user and item.event:
                by_account.setdefault(item.source_account_id, set()).add((item.event, user))
        now = datetime.now(UTC)
        for account, pairs in by_account.items():
            await record_crossings(conn, self.redis, account=account, pairs=pairs, now=now)

    async def step(self) -> float:
        handled = await self.run_once()
        return 0.0 if handled >= self.limit else IDLE_SECONDS

    async def run_until_empty(self) -> int:
        """Handle rounds until the outbox is empty (tests, and the final drain of a graceful stop)."""
        total = 0
        while handled := await self.run_once():
            total += handled
        return total
