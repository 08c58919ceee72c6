"""Explicit transactions on aiopg connections (which are autocommit by default), and statement timeouts told
apart from cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiopg

__all__ = ["READ_SNAPSHOT", "StatementTimeout", "read_snapshot", "statement_timeouts", "transaction"]

# Every analytical read: one snapshot (REPEATABLE READ: the aggregator swaps dirty hours and rollups in one
# transaction, so a read sees both before or both after), room to hash a month of rows in memory instead of
# spilling to disk, and no JIT compilation (it costs more than it saves on these short scans).
READ_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET LOCAL work_mem = '64MB'; SET LOCAL jit = off"


class StatementTimeout(Exception):
    """The server ended a statement at its ``statement_timeout`` (SQLSTATE 57014)."""


@contextlib.asynccontextmanager
async def statement_timeouts() -> AsyncIterator[None]:
    """Raise :class:`StatementTimeout` where aiopg turns the server's "canceling statement due to statement
    timeout" into ``asyncio.CancelledError``; a real cancellation of the running task still propagates."""
    try:
        yield
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise StatementTimeout("canceling statement due to statement timeout") from None


@contextlib.asynccontextmanager
async def transaction(conn: aiopg.Connection) -> AsyncIterator[aiopg.Cursor]:
    """A cursor inside BEGIN ... COMMIT; ROLLBACK on any error (a dead connection just drops it)."""
    async with conn.cursor() as cur:
        await cur.execute("BEGIN")
        try:
            yield cur
        except BaseException:
            with contextlib.suppress(Exception):
                await cur.execute("ROLLBACK")
            raise
        await cur.execute("COMMIT")


@contextlib.asynccontextmanager
async def read_snapshot(conn: aiopg.Connection) -> AsyncIterator[aiopg.Cursor]:
    """A cursor inside one read transaction under :data:`READ_SNAPSHOT`: every read of the store takes its rows
    through this (the API pools add the statement timeout, ANALYTICS_QUERY_TIMEOUT)."""
    async with transaction(conn) as cur:
        await cur.execute(READ_SNAPSHOT)
        yield cur
