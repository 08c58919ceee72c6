"""Goal conversions of one site, from raw page views and events (the UTM breakdowns are web rollup
breakdowns: store/web.py, codes S M C T N of store/rollups/web_rollup.py).

A goal is a page path (page views of the site
with that path, the read's filters applied) or an event name (events of the account with that name that
carry the site: sent from its pages, or naming it; an event without a site, as a back end's, is not counted,
so a site token reads only what its site produced); its conversions are the matching events
and its converted visitors the distinct persons (store/identity.py) among them, else the day's IP hash
or the session.
"""

from __future__ import annotations

from typing import Any

import aiopg

from .identity import person_expr, person_join
from .rollups.web_rollup import PAGE_VIEW
from .tx import read_snapshot
from .web import WebQuery, page_view_filters

__all__ = ["goal"]

_DISTINCT = "coalesce(e.user_id, e.anonymous_id)"
_VISITOR = f"coalesce({person_expr(_DISTINCT)}, e.ip_hash, e.session_id)"
PATH_GOAL = f"""
SELECT count(*) AS conversions, count(DISTINCT {_VISITOR}) AS visitors
FROM np_analytics_events e {person_join(_DISTINCT)}
WHERE e.site = %(site)s AND e.ts >= %(start)s AND e.ts < %(end)s AND e.source_account_id = %(account)s
  AND e.{PAGE_VIEW} AND (%(include_bots)s OR NOT e.is_bot) AND e.path = %(value)s AND {page_view_filters('e')}
"""
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
    """(conversions, converted visitors) of a goal: ``kind`` is ``path`` or ``event``."""
    sql = {"path": PATH_GOAL, "event": EVENT_GOAL}[kind]
    [(conversions, visitors)] = await _rows(conn, sql, {**query.params(), "value": value})
    return int(conversions), int(visitors)
