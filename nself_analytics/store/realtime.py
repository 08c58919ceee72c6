"""Realtime: the visitors of one site in the last minutes, its latest page views and its visitors and page views
per minute of the last half hour, from raw page views.

Reads the ``(site, ts)`` index over a window of a few minutes, so it stays cheap whatever the site's size.
A visitor is the person (store/identity.py) of the page view's user or anonymous id, else its IP hash or
session, as the other web reads count visitors.
"""

from __future__ import annotations

from datetime import datetime

import aiopg
import msgspec

from .identity import person_expr, person_join
from .rollups.web_rollup import PAGE_VIEW
from .tx import read_snapshot

__all__ = ["LatestView", "Minute", "Recent", "latest", "per_minute"]

_DISTINCT = "coalesce(e.user_id, e.anonymous_id)"
_WHERE = f"""
    e.site = %(site)s AND e.ts >= %(since)s AND e.ts < %(until)s AND e.source_account_id = %(account)s
    AND e.{PAGE_VIEW} AND (%(include_bots)s OR NOT e.is_bot)
"""
VISITORS = f"""
SELECT count(DISTINCT coalesce({person_expr(_DISTINCT)}, e.ip_hash, e.session_id)) AS visitors, count(*) AS views
FROM np_analytics_events e {person_join(_DISTINCT)}
WHERE {_WHERE}
"""
# Per minute of [since, until) (whole minutes): page views and distinct visitors, every minute present.
MINUTES = f"""
WITH views AS (
    SELECT date_trunc('minute', e.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS minute,
           coalesce({person_expr(_DISTINCT)}, e.ip_hash, e.session_id) AS visitor
    FROM np_analytics_events e {person_join(_DISTINCT)}
    WHERE {_WHERE}
),
per AS (SELECT minute, count(*) AS views, count(DISTINCT visitor) AS visitors FROM views GROUP BY 1)
SELECT extract(epoch FROM g.minute)::bigint, coalesce(per.visitors, 0), coalesce(per.views, 0)
FROM generate_series(%(since)s::timestamptz, %(until)s::timestamptz - interval '1 minute', interval '1 minute')
     AS g(minute)
LEFT JOIN per ON per.minute = g.minute
ORDER BY 1
"""
LATEST = f"""
SELECT e.ts, e.path, e.referrer, e.country, e.device, e.browser
FROM np_analytics_events e
WHERE {_WHERE}
ORDER BY e.ts DESC, e.message_id
LIMIT %(limit)s
"""


class LatestView(msgspec.Struct, frozen=True):
    """One recent page view."""

    ts: datetime
    path: str | None
    referrer: str | None
    country: str | None
    device: str | None
    browser: str | None


class Recent(msgspec.Struct, frozen=True):
    """Visitors and page views of a window, and its latest page views, newest first."""

    visitors: int
    pageviews: int
    latest: list[LatestView]


class Minute(msgspec.Struct, frozen=True):
    """One minute: its start (Unix seconds), distinct visitors and page views."""

    start: int
    visitors: int
    pageviews: int


async def per_minute(conn: aiopg.Connection, *, account: str, site: str, since: datetime, until: datetime,
                     include_bots: bool) -> list[Minute]:
    """Visitors and page views per minute of ``[since, until)`` (both on whole minutes), every minute present."""
    params = {"account": account, "site": site, "since": since, "until": until, "include_bots": include_bots}
    async with read_snapshot(conn) as cur:
        await cur.execute(MINUTES, params)
        return [Minute(int(start), int(visitors), int(views)) for start, visitors, views in await cur.fetchall()]


async def latest(conn: aiopg.Connection, *, account: str, site: str, since: datetime, until: datetime,
                 include_bots: bool, limit: int) -> Recent:
    """Visitors and page views in ``[since, until)`` and the ``limit`` latest page views, newest first."""
    params = {"account": account, "site": site, "since": since, "until": until, "include_bots": include_bots,
              "limit": limit}
    async with read_snapshot(conn) as cur:
        await cur.execute(VISITORS, params)
        [(visitors, views)] = await cur.fetchall()
        await cur.execute(LATEST, params)
        rows = await cur.fetchall()
    return Recent(int(visitors), int(views), [LatestView(*row) for row in rows])
