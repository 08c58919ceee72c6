"""One leader across every process of every instance: the one that runs the aggregator and the pruner.

Leadership is a PostgreSQL session-level advisory lock held on a dedicated connection (not a pool's: a
pooled connection would carry the lock to whoever borrows it next). The server releases it when that
connection ends, so when the holder dies (SIGKILL, a lost host) another process takes it at its next
attempt, every LEADER_RETRY_SECONDS; TCP keepalives bound how long a silently lost connection keeps it.
The holder checks its connection as often, and stops leading the moment the check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiopg
import psycopg2
import structlog

__all__ = ["LEADER_LOCK_KEY", "LEADER_RETRY_SECONDS", "Leadership"]

log = structlog.get_logger("nself_analytics.pipeline.leader")

# The advisory lock's key (a bigint): b"npanlead" as a number, so it names its purpose in pg_locks.
LEADER_LOCK_KEY = int.from_bytes(b"npanlead", "big") - 2**63
# How often a follower tries to take the lock, and the leader checks it still holds it.
LEADER_RETRY_SECONDS = 1.0
# Keepalives of the lock's connection: a peer gone without a FIN is noticed within about 10 s.
_KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2}
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"


class Leadership:
    """Tries to hold the leader lock until stopped; ``held`` says whether this process leads now."""

    def __init__(self, database_url: str, key: int = LEADER_LOCK_KEY, retry: float = LEADER_RETRY_SECONDS) -> None:
        self.database_url = database_url
        self.key = key
        self.retry = retry
        self.held = False
        self._conn: aiopg.Connection | None = None

    async def _connect(self) -> aiopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = await aiopg.connect(self.database_url, timeout=10, **_KEEPALIVES)
        return self._conn

    async def attempt(self) -> bool:
        """One round: take the lock if free, or check the held one still is; return ``held``."""
        try:
            conn = await self._connect()
            async with conn.cursor() as cur:
                if self.held:
                    await cur.execute("SELECT 1")
                else:
                    await cur.execute(_TRY_LOCK, (self.key,))
                    (taken,) = await cur.fetchone()
                    if taken:
                        self.held = True
                        log.info("leader_elected")
        except (psycopg2.Error, OSError, TimeoutError) as exc:
            if self.held:
                log.warning("leader_lost", error=str(exc).strip()[:200])
            self.held = False
            await self.release()
        return self.held

    async def step(self) -> float:
        """One round of the supervised loop (pipeline/supervisor.py); an unexpected error lets the lock go first."""
        try:
            await self.attempt()
        except Exception:
            await self.release()
            raise
        return self.retry

    async def run(self, stop: asyncio.Event) -> None:
        """Try, or keep, the lock every ``retry`` seconds until ``stop``; then let it go."""
        try:
            while not stop.is_set():
                await self.attempt()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry)
        finally:
            await self.release()

    async def release(self) -> None:
        """Close the lock's connection (which ends the lock, held or not)."""
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()
