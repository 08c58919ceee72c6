"""Goal conversions of one site, from raw page views and events (the UTM breakdowns are web rollup
breakdowns: store/web.py, codes S M C T N of store/rollups/web_rollup.py).

A goal is a page path (its page views in the sessions the read's filters select, and the persons of those
sessions with one: a web read, store/web_reads.py) or an event name (events of the account with that name that
carry the site: sent from its pages, or naming it; an event without a site, as a back end's, is not counted,
so a site token reads only what its site produced); its conversions are the matching events and its converted
visitors the distinct persons (store/identity.py) among them, else the day's IP hash or the session. Under any
web filter, an event goal counts the events of the sessions the filters select, and the persons of those sessions
with one (store/web_reads.py goal_event), as a page goal does.
"""

from __future__ import annotations

from typing import Any

import aiopg

from . import web_reads
from .identity import person_expr, person_join
from .tx import read_snapshot
from .web import WebQuery

__all__ = ["goal"]

_DISTINCT = "coalesce(e.user_id, e.anonymous_id)"
_VISITOR = f"coalesce({person_expr(_DISTINCT)}, e.ip_hash, e.session_id)"
EVENT_GOAL = f"""
SELECT count(*) AS conversions, count(DISTINCT {_VISITOR}) AS visitors
FROM np_analytics_events e {person_join(_DISTINCT)}
WHERE e.source_account_id = %(account)s AND e.event = %(value)s AND e.ts >= %(start)s AND e.ts < %(end)s
  AND e.site = %(site)s AND (%(include_bots)s OR NOT e.is_bot)
"""


async def _rows(conn: aiopg.Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    async with read_snapshot(conn) as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall())


async def goal(conn: aiopg.Connection, query: WebQuery, kind: str, value: str) -> tuple[int, int]:
    """(conversions, converted visitors) of a goal: ``kind`` is ``path`` (a web read over the sessions the
    filters select: store/web_reads.py goal_path) or ``event`` (under a filter, likewise: goal_event)."""
    if kind == "path":
        return await web_reads.goal_path(conn, query, value)
    if query.filtered:
        return await web_reads.goal_event(conn, query, value)
    [(conversions, visitors)] = await _rows(conn, EVENT_GOAL, {**query.params(), "value": value})
    return int(conversions), int(visitors)
