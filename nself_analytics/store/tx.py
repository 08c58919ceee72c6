"""Explicit transactions on aiopg connections (which are autocommit by default), and statement timeouts told
apart from cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiopg

__all__ = ["StatementTimeout", "statement_timeouts", "transaction"]


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
