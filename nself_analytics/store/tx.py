"""Explicit transactions on aiopg connections (which are autocommit by default)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiopg

__all__ = ["transaction"]


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
