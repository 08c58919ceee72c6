"""Which PostgreSQL pool a query uses: the one place that decides (docs/scaling.md).

Writes, saved objects (read back right after they are written), the drain and the aggregator use the
primary (``PG_POOL``). Analytical reads use ``read_pool``: a streaming replica's pool when
ANALYTICS_READ_DATABASE_URL is set, else the primary's. A replica lags by its replay delay (reported by
/health); analytics over hours and days tolerate that, a just-saved funnel would not.
"""

from __future__ import annotations

import aiopg
from aiohttp import web

from .keys import PG_POOL, READ_POOL

__all__ = ["read_pool", "write_pool"]


def read_pool(request: web.Request) -> aiopg.Pool:
    """The pool of analytical read queries (a replica's when one is configured)."""
    return request.config_dict[READ_POOL]


def write_pool(request: web.Request) -> aiopg.Pool:
    """The primary's pool: writes, and reads that must see the request's own writes."""
    return request.config_dict[PG_POOL]
