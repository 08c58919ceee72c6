"""Per (site, UTC hour): page views, sessions and visitors, what the unfiltered heat map reads (migration 0124).

Built from the hour's session fragments (store/rollups/web_rollup.py, np_analytics_web_sessions) after the
aggregator rebuilt them, so the rows survive the raw events' deletion like the fragments do. ``views``: the page
views; ``sessions``: the sessions with a page view in the hour; ``visitors``: the distinct persons of those
fragments' visitors (resolved through the identity map when the hour is aggregated); without bots, and
``all_*`` with them (a session with page views of both bot flags in the hour counts once). Replaced for the
claimed hours by the aggregator (:func:`rebuild_hours`), and for whole UTC days by erasure
(:func:`rebuild_days`, after it deleted an erased visitor's fragments).
"""

from __future__ import annotations

import aiopg

from ..identity import person_expr, person_join

__all__ = ["BUILD", "rebuild_days", "rebuild_hours"]

_PERSON = person_expr("f.visitor")
# The rows of the fragments of {keys} (a CTE of (source_account_id, lo, hi): the hours [lo, hi) to rebuild).
BUILD = f"""
INSERT INTO np_analytics_web_hour_stats (source_account_id, site, hour, views, sessions, visitors, all_views,
                                         all_sessions, all_visitors)
SELECT f.source_account_id, f.site, f.hour,
       coalesce(sum(f.views) FILTER (WHERE NOT f.is_bot), 0), count(DISTINCT f.session_id) FILTER (WHERE NOT f.is_bot),
       count(DISTINCT {_PERSON}) FILTER (WHERE NOT f.is_bot),
       sum(f.views), count(DISTINCT f.session_id), count(DISTINCT {_PERSON})
FROM keys k JOIN np_analytics_web_sessions f ON f.source_account_id = k.source_account_id
     AND f.hour >= k.lo AND f.hour < k.hi
{person_join("f.visitor", "f.source_account_id")}
GROUP BY 1, 2, 3
"""
_DELETE = """
DELETE FROM np_analytics_web_hour_stats s USING keys k
WHERE s.source_account_id = k.source_account_id AND s.hour >= k.lo AND s.hour < k.hi
"""
# The claimed hours from the cutoff on (older hours keep their rows, as their fragments are kept).
_HOURS = """
WITH keys AS (
    SELECT DISTINCT c.source_account_id, c.hour AS lo, c.hour + interval '1 hour' AS hi
    FROM jsonb_to_recordset(%(claimed)s::jsonb) AS c(source_account_id text, hour timestamptz)
    WHERE c.hour >= %(cutoff)s::timestamptz
)"""
_DAYS = """
WITH keys AS (
    SELECT DISTINCT d.source_account_id, d.day::timestamp AT TIME ZONE 'UTC' AS lo,
           (d.day + 1)::timestamp AT TIME ZONE 'UTC' AS hi
    FROM jsonb_to_recordset(%(days)s::jsonb) AS d(source_account_id text, day date)
)"""
DELETE_HOURS, INSERT_HOURS = _HOURS + _DELETE, _HOURS + BUILD
DELETE_DAYS, INSERT_DAYS = _DAYS + _DELETE, _DAYS + BUILD


async def rebuild_hours(cur: aiopg.Cursor, claimed: str, cutoff: object) -> None:
    """Inside the aggregator's transaction, after the fragments: the rows of the ``claimed`` hours (JSON of
    source_account_id and hour) from ``cutoff`` on."""
    params = {"claimed": claimed, "cutoff": cutoff}
    await cur.execute(DELETE_HOURS, params)
    await cur.execute(INSERT_HOURS, params)


async def rebuild_days(cur: aiopg.Cursor, days: str) -> None:
    """The rows of every hour of ``days`` (JSON of source_account_id and day, UTC) from their fragments."""
    await cur.execute(DELETE_DAYS, {"days": days})
    await cur.execute(INSERT_DAYS, {"days": days})
