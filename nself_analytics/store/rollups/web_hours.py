"""The aggregator's per-day web rows, rebuilt for the sessions of the claimed hours only (issue 27 item 3).

A day's rows are sums over its closed sessions (store/rollups/web_daily.py): np_analytics_web_daily holds sums
per value, np_analytics_web_day_sessions one row per session, np_analytics_web_day_stats the visitors and
durations of its sessions. When the aggregator rebuilds the fragments of some hours, only the sessions with a
fragment in those hours (before or after: ``affected``) can change, so instead of recomputing whole days:

1. :func:`before` (before the claimed hours' fragments are replaced): the affected sessions, from the old fragments
   and the claimed hours' raw page views, and the closed fragments of those sessions as they are (``old``);
2. :func:`after` (after the fragments and their ``spans`` flags are updated): the same sessions' closed fragments
   now (``new``); the daily rows get the rows of ``new`` added and those of ``old`` subtracted (rows that reach
   zero go, as a full rebuild would not write them), the per-day session rows of ``old`` are replaced by those of
   ``new``, and the day stats of each (site, day, bot flag) of either are updated (store/rollups/web_day_stats.py).

The work is that of the claimed hours' sessions (and the arrays of their days' stats rows). The
full per-day rebuild (web_daily.rebuild_days) stays for claims of more than MAX_HOURS hours and for erasure (its
statements, store/erasure_steps.py), which deletes fragments outside any claim.
"""

from __future__ import annotations

import aiopg

from . import web_day_stats
from .web_daily import DAILY_COLUMNS as _COLUMNS
from .web_daily import DAILY_ROWS, DAY_SESSIONS_TAIL, FR_COLUMNS
from .web_daily import SESS_CTE as _SESS
from .web_rollup import PAGE_VIEW, SESSION_KEY

__all__ = ["MAX_HOURS", "after", "before"]

# Claims of up to this many hours go session by session; larger ones (a backfill, an import: most sessions of their
# days change) rebuild whole days (web_daily.rebuild_days), which reads each day once instead of each session.
MAX_HOURS = 24

_CLAIMED = """
claimed AS (
    SELECT DISTINCT c.source_account_id, c.hour
    FROM jsonb_to_recordset(%(claimed)s::jsonb) AS c(source_account_id text, hour timestamptz)
    WHERE c.hour >= %(cutoff)s::timestamptz
)"""

# Every statement here looks rows up per claimed hour, session or (site, day) (LATERAL, OFFSET 0 so that the
# planner keeps it per row: index scans), as the
# temporary tables have no statistics and a hash join would read a whole rollup table.
# Sessions with a fragment in a claimed hour now, or with a page view in it (the fragments about to be built).
AFFECTED = f"""
CREATE TEMP TABLE np_web_affected ON COMMIT DROP AS
WITH {_CLAIMED}
SELECT w.source_account_id, w.site, w.session_id
FROM claimed c CROSS JOIN LATERAL (
    SELECT w.source_account_id, w.site, w.session_id FROM np_analytics_web_sessions w
    WHERE w.source_account_id = c.source_account_id AND w.hour = c.hour AND w.session_id IS NOT NULL
        OFFSET 0) AS w
UNION
SELECT source_account_id, site, {SESSION_KEY}
FROM np_analytics_events
WHERE ts >= %(lo)s AND ts < %(hi)s AND site IS NOT NULL AND {PAGE_VIEW}
  AND (source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
      IN (SELECT source_account_id, hour FROM claimed)
"""

# The closed fragments of the affected sessions (and the sessionless fragments of the claimed hours), with their
# UTC day: the ``fr`` of web_daily's statements, for these sessions only.
_COLS = FR_COLUMNS.format(day="(w.hour AT TIME ZONE 'UTC')::date")
_FRAGMENTS = f"""
CREATE TEMP TABLE {{table}} ON COMMIT DROP AS
WITH {_CLAIMED}
SELECT {_COLS}
FROM np_web_affected a CROSS JOIN LATERAL (
    SELECT * FROM np_analytics_web_sessions w
    WHERE w.source_account_id = a.source_account_id AND w.site = a.site AND w.session_id = a.session_id
      AND NOT w.spans
        OFFSET 0) AS w
UNION ALL
SELECT {_COLS}
FROM claimed c CROSS JOIN LATERAL (
    SELECT * FROM np_analytics_web_sessions w
    WHERE w.source_account_id = c.source_account_id AND w.hour = c.hour AND w.session_id IS NULL AND NOT w.spans
        OFFSET 0) AS w
"""
OLD = _FRAGMENTS.format(table="np_web_old")
NEW = _FRAGMENTS.format(table="np_web_new")


def _rows(table: str) -> str:
    return f"WITH fr AS (SELECT * FROM {table}),{_SESS}{DAILY_ROWS}"


_SUMS = "views, sessions, bounces, seconds, sviews"
# The change of each daily row: the new sessions' rows less the old ones'.
DELTA = f"""
CREATE TEMP TABLE np_web_delta ON COMMIT DROP AS
SELECT source_account_id, site, day, is_bot, code, value, sum(views) AS views, sum(sessions) AS sessions,
       sum(bounces) AS bounces, sum(seconds) AS seconds, sum(sviews) AS sviews
FROM (
    SELECT * FROM ({_rows("np_web_new")}) AS n ({_COLUMNS})
    UNION ALL
    SELECT source_account_id, site, day, is_bot, code, value, -views, -sessions, -bounces, -seconds, -sviews
    FROM ({_rows("np_web_old")}) AS o ({_COLUMNS})
) AS x
GROUP BY 1, 2, 3, 4, 5, 6
HAVING sum(views) <> 0 OR sum(sessions) <> 0 OR sum(bounces) <> 0 OR sum(sviews) <> 0 OR sum(seconds) <> 0
"""
_SAME_ROW = """w.source_account_id = d.source_account_id AND w.site = d.site AND w.day = d.day AND w.is_bot = d.is_bot
  AND w.code = d.code AND w.value IS NOT DISTINCT FROM d.value"""
# Added to the rows there are (the seconds of a row left without sessions are 0, not a float remainder), the
# others inserted; then the rows left at zero deleted.
APPLY_DELTA = f"""
WITH updated AS (
    UPDATE np_analytics_web_daily w
    SET views = w.views + d.views, sessions = w.sessions + d.sessions, bounces = w.bounces + d.bounces,
        seconds = CASE WHEN w.sessions + d.sessions = 0 THEN 0 ELSE w.seconds + d.seconds END,
        sviews = w.sviews + d.sviews
    FROM np_web_delta d
    WHERE {_SAME_ROW}
    RETURNING d.source_account_id, d.site, d.day, d.is_bot, d.code, d.value
)
INSERT INTO np_analytics_web_daily ({_COLUMNS})
SELECT {_COLUMNS} FROM np_web_delta d
WHERE NOT EXISTS (SELECT 1 FROM updated w WHERE {_SAME_ROW})
"""
DELETE_ZERO = f"""
DELETE FROM np_analytics_web_daily w USING np_web_delta d
WHERE {_SAME_ROW} AND w.views = 0 AND w.sessions = 0 AND w.bounces = 0 AND w.sviews = 0
"""

# The old sessions' rows, each looked up by its session id (migration 0114's hash index).
DELETE_SESSIONS = """
DELETE FROM np_analytics_web_day_sessions w WHERE w.ctid = ANY(ARRAY(
    SELECT s.ctid
    FROM (SELECT DISTINCT source_account_id, site, day, session_id FROM np_web_old WHERE session_id IS NOT NULL) AS o
    CROSS JOIN LATERAL (
        SELECT s.ctid FROM np_analytics_web_day_sessions s
        WHERE s.source_account_id = o.source_account_id AND s.site = o.site AND s.day = o.day
          AND s.session_id = o.session_id
        OFFSET 0) AS s))
"""
INSERT_SESSIONS = f"WITH fr AS (SELECT * FROM np_web_new),{_SESS}{DAY_SESSIONS_TAIL}"

async def before(cur: aiopg.Cursor, params: dict[str, object]) -> None:
    """Inside the aggregator's transaction, before the claimed hours' fragments are replaced (``params``: claimed,
    cutoff, lo, hi of those hours)."""
    await cur.execute("DROP TABLE IF EXISTS np_web_affected, np_web_old, np_web_new, np_web_delta, "
                      f"{web_day_stats.TABLES}")
    await cur.execute(AFFECTED, params)
    await cur.execute("ANALYZE np_web_affected")
    await cur.execute(OLD, params)
    await cur.execute("ANALYZE np_web_old")


async def after(cur: aiopg.Cursor, params: dict[str, object]) -> None:
    """After the fragments and their flags are updated: apply the change to the per-day rows."""
    await cur.execute(NEW, params)
    await cur.execute("ANALYZE np_web_new")
    await cur.execute(DELTA)
    await cur.execute(APPLY_DELTA)
    await cur.execute(DELETE_ZERO)
    await cur.execute(DELETE_SESSIONS)
    await cur.execute(INSERT_SESSIONS)
    await web_day_stats.refresh(cur)
