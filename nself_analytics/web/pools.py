"""Which PostgreSQL pool a query uses: the one place that decides (docs/scaling.md).

- ``reading(request)``: analytical reads, on a streaming replica's pool when ANALYTICS_READ_DATABASE_URL is
  set (``READ_POOL``), else the primary's API pool. A replica lags by its replay delay (reported by /health);
  analytics over hours and days tolerate that, a just-saved funnel would not.
- ``writing(request)``: writes and saved objects (read back right after they are written): ``PG_POOL``.
- The drain, the aggregator, the maintenance job, the webhook sender and /health use ``WORKER_POOL``, which
  no request can take: reads cannot starve writes.

The API's pools carry ``statement_timeout`` (ANALYTICS_QUERY_TIMEOUT) from the moment they connect, and on
PostgreSQL 14+ ``client_connection_check_interval``: when a client goes away, aiohttp cancels the handler,
aiopg closes the connection of the query in progress, and the server aborts that query within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiopg
from aiohttp import web

from ..config import Settings
from .appkeys import PG_POOL, READ_POOL, SETTINGS
from .errors import QUERY_TIMEOUT_MESSAGE, RETRY_AFTER_SECONDS, ApiError

__all__ = ["API_POOL_SIZE", "create_api_pool", "reading", "writing"]

API_POOL_SIZE = 20
# How often the server checks, during a long query, whether its client is still connected (PostgreSQL 14+).
_CLIENT_CHECK = "SET client_connection_check_interval = '1s'"


async def _on_connect(conn: aiopg.Connection) -> None:
    if conn.raw.server_version >= 140000:
        async with conn.cursor() as cur:
            await cur.execute(_CLIENT_CHECK)


async def create_api_pool(url: str, settings: Settings) -> aiopg.Pool:
    """A pool of the API: ``statement_timeout`` set per connection at connect time (no round trip per query)."""
    timeout_ms = max(1, int(settings.query_timeout * 1000))
    return await aiopg.create_pool(url, minsize=1, maxsize=API_POOL_SIZE, timeout=30, pool_recycle=300,
                                   on_connect=_on_connect, options=f"-c statement_timeout={timeout_ms}")


@contextlib.asynccontextmanager
async def _connection(request: web.Request, pool: aiopg.Pool) -> AsyncIterator[aiopg.Connection]:
    """A connection of ``pool``; 503 + Retry-After when none frees up within ANALYTICS_QUERY_TIMEOUT, or when
    the statement timeout ends the query."""
    try:
        async with asyncio.timeout(request.config_dict[SETTINGS].query_timeout):
            conn = await pool.acquire()
    except TimeoutError:
        raise ApiError(503, "Every database connection is busy; retry later",
                       headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
    try:
        yield conn
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the client went away: aiohttp cancelled the handler
        # aiopg turns the server's "canceling statement due to statement timeout" into CancelledError
        raise ApiError(503, QUERY_TIMEOUT_MESSAGE, headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
    finally:
        await pool.release(conn)


def reading(request: web.Request) -> contextlib.AbstractAsyncContextManager[aiopg.Connection]:
    """A connection for analytical reads (the replica's when one is configured)."""
    return _connection(request, request.config_dict[READ_POOL])


def writing(request: web.Request) -> contextlib.AbstractAsyncContextManager[aiopg.Connection]:
    """A connection of the primary: writes, and reads that must see the request's own writes."""
    return _connection(request, request.config_dict[PG_POOL])
