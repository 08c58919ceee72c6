"""Per-day web statistics kept by the aggregator from the session fragments (migration 0041).

The aggregator (store/rollups/aggregates.py) marks which fragments belong to sessions that are not "closed" within
one UTC day (fragments in more than one day, or with both bot flags: ``spans``, :data:`SPANS`) and keeps, for the
sessions of the hours it claims (store/rollups/web_hours.py; erasure rebuilds whole days with the ``INSERT_*``
statements here), the day's rows in
np_analytics_web_daily, its visitors and durations in np_analytics_web_day_stats and its closed sessions in
np_analytics_web_day_sessions (what filtered reads select from). A day's rows count only its
closed sessions, so summing them over days counts each session once; spanning fragments are read one by
one at read time (store/web.py). Pages ('p') and hours of the day ('H') count page views and the sessions
with one; every other code counts each closed session once, under its first page view's value (``evals`` of
its first fragment; '' for the referrer: "Direct / None"), with all its page views.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiopg

from . import hll

__all__ = [
    "DAILY_COLUMNS", "DAILY_ROWS", "DAY_SESSIONS_TAIL", "DAY_STATS_TAIL", "DELETE_DAILY", "DELETE_DAY_SESSIONS",
    "DELETE_DAY_STATS", "FR_COLUMNS", "INSERT_DAILY", "INSERT_DAY_SESSIONS", "INSERT_DAY_STATS", "SESS_CTE", "SPANS",
    "rebuild_days",
]

# The sessions with a fragment in a claimed hour: their fragments' flags, updated where they change;
# returns the (account, day) of each changed fragment.
SPANS = """
WITH claimed AS (
    SELECT DISTINCT c.source_account_id, c.hour
    FROM jsonb_to_recordset(%(claimed)s::jsonb) AS c(source_account_id text, hour timestamptz)
),
touched AS (
    SELECT DISTINCT w.source_account_id, w.site, w.session_id
    FROM claimed c CROSS JOIN LATERAL (  -- per claimed hour (its index), never a hash of the whole table
        SELECT w.source_account_id, w.site, w.session_id FROM np_analytics_web_sessions w
        WHERE w.source_account_id = c.source_account_id AND w.hour = c.hour AND w.session_id IS NOT NULL
        OFFSET 0) AS w
),
flags AS (
    SELECT w.source_account_id, w.site, w.session_id, w.hour, w.is_bot,
           (min(w.hour) OVER s AT TIME ZONE 'UTC')::date < (max(w.hour) OVER s AT TIME ZONE 'UTC')::date
           OR bool_or(w.is_bot) OVER s <> bool_and(w.is_bot) OVER s AS spans
    FROM np_analytics_web_sessions w
    JOIN touched t ON w.source_account_id = t.source_account_id AND w.site = t.site AND w.session_id = t.session_id
    WINDOW s AS (PARTITION BY w.source_account_id, w.site, w.session_id)
)
UPDATE np_analytics_web_sessions w SET spans = f.spans
FROM flags f
WHERE w.source_account_id = f.source_account_id AND w.site = f.site AND w.session_id = f.session_id
  AND w.hour = f.hour AND w.is_bot = f.is_bot AND w.spans <> f.spans
RETURNING w.source_account_id, (w.hour AT TIME ZONE 'UTC')::date
"""

_DAYS = """
days AS (
    SELECT DISTINCT d.source_account_id, d.day
    FROM jsonb_to_recordset(%(days)s::jsonb) AS d(source_account_id text, day date)
)"""

DELETE_DAILY = f"""
WITH {_DAYS}
DELETE FROM np_analytics_web_daily w USING days d WHERE w.source_account_id = d.source_account_id AND w.day = d.day
"""
DELETE_DAY_STATS = f"""
WITH {_DAYS}
DELETE FROM np_analytics_web_day_stats w USING days d WHERE w.source_account_id = d.source_account_id AND w.day = d.day
"""

# The closed fragments of the days, and one row per closed session (entry: the first fragment's entry,
# ties in time broken by path, as within a fragment; exit likewise). ``SESS_CTE`` needs a ``fr`` of these columns
# before it (web_hours.py gives it the fragments of some sessions instead of whole days).
FR_COLUMNS = ("w.source_account_id, w.site, {day} AS day, w.hour, w.session_id, w.is_bot, w.visitor, w.first_ts, "
              "w.last_ts, w.views, w.entry, w.exit, w.vals, w.cnts, w.evals")
SESS_CTE = """
sess AS MATERIALIZED (
    SELECT source_account_id, site, day, is_bot, session_id, min(visitor) AS visitor,
           (array_agg(entry ORDER BY first_ts, entry COLLATE "C"))[1] AS entry,
           (array_agg(exit ORDER BY last_ts DESC, exit COLLATE "C" DESC))[1] AS exit,
           sum(views) AS views, extract(epoch FROM max(last_ts) - min(first_ts))::float8 AS seconds,
           (array_agg(to_jsonb(evals) ORDER BY first_ts, entry COLLATE "C"))[1] AS attrs
    FROM fr WHERE session_id IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
)"""
_CLOSED = f"""
WITH {_DAYS},
fr AS MATERIALIZED (
    SELECT {FR_COLUMNS.format(day="d.day")}
    FROM days d JOIN np_analytics_web_sessions w ON w.source_account_id = d.source_account_id
         AND w.hour >= d.day::timestamp AT TIME ZONE 'UTC' AND w.hour < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
    WHERE NOT w.spans
),{SESS_CTE}"""

DAILY_COLUMNS = "source_account_id, site, day, is_bot, code, value, views, sessions, bounces, seconds, sviews"
# The daily rows of the closed sessions (and sessionless fragments) of ``fr``: sums over sessions, so the rows of
# a day are the sums of the rows of any split of its sessions (web_hours.py subtracts and adds some sessions' rows).
DAILY_ROWS = """,
per_value AS (
    SELECT f.source_account_id, f.site, f.day, f.is_bot, left(d.v, 1) AS code, substr(d.v, 2) AS value,
           f.session_id, sum(d.n) AS views
    FROM fr f
    CROSS JOIN LATERAL unnest(f.vals || ('H' || extract(hour FROM f.hour AT TIME ZONE 'UTC')::int::text),
                              f.cnts || f.views) AS d(v, n)
    WHERE left(d.v, 1) IN ('p', 'H')
    GROUP BY 1, 2, 3, 4, 5, 6, 7
)
-- pages and hours of the day: the page views of each value and the sessions with one
SELECT source_account_id, site, day, is_bot, code, value, sum(views), count(session_id), 0, 0, 0
FROM per_value GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
-- the session-level codes: each session under its first page view's value, with all its page views
SELECT s.source_account_id, s.site, s.day, s.is_bot, left(a.v, 1), substr(a.v, 2), sum(s.views), count(*), 0, 0, 0
FROM sess s CROSS JOIN LATERAL jsonb_array_elements_text(s.attrs) AS a(v)
GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT source_account_id, site, day, is_bot, 'e', entry, 0, count(*), count(*) FILTER (WHERE views = 1), 0, 0
FROM sess GROUP BY 1, 2, 3, 4, 6
UNION ALL
SELECT source_account_id, site, day, is_bot, 'x', exit, 0, count(*), 0, 0, 0
FROM sess GROUP BY 1, 2, 3, 4, 6
UNION ALL
SELECT t.source_account_id, t.site, t.day, t.is_bot, '*', '', t.views, coalesce(s.sessions, 0),
       coalesce(s.bounces, 0), coalesce(s.seconds, 0), coalesce(s.sviews, 0)
FROM (SELECT source_account_id, site, day, is_bot, sum(views) AS views FROM fr GROUP BY 1, 2, 3, 4) AS t
LEFT JOIN (SELECT source_account_id, site, day, is_bot, count(*) AS sessions,
                  count(*) FILTER (WHERE views = 1) AS bounces, sum(seconds) AS seconds, sum(views) AS sviews
           FROM sess GROUP BY 1, 2, 3, 4) AS s USING (source_account_id, site, day, is_bot)
"""
INSERT_DAILY = f"INSERT INTO np_analytics_web_daily ({DAILY_COLUMNS})\n" + _CLOSED + DAILY_ROWS

DELETE_DAY_SESSIONS = f"""
WITH {_DAYS}
DELETE FROM np_analytics_web_day_sessions w USING days d
WHERE w.source_account_id = d.source_account_id AND w.day = d.day
"""
# One row per closed session (migration 0109): its facts, pages with their page views, views, duration.
DAY_SESSIONS_TAIL = """,
pages AS (
    SELECT f.source_account_id, f.site, f.day, f.is_bot, f.session_id, substr(d.v, 2) AS path, sum(d.n)::int AS n
    FROM fr f CROSS JOIN LATERAL unnest(f.vals, f.cnts) AS d(v, n)
    WHERE left(d.v, 1) = 'p'
    GROUP BY 1, 2, 3, 4, 5, 6
),
hours AS (
    SELECT f.source_account_id, f.site, f.day, f.is_bot, f.session_id,
           lpad(extract(hour FROM f.hour AT TIME ZONE 'UTC')::int::text, 2, '0') || substr(d.v, 2) AS hpath, d.n
    FROM fr f CROSS JOIN LATERAL unnest(f.vals, f.cnts) AS d(v, n)
    WHERE left(d.v, 1) = 'p'
),
plist AS (
    SELECT source_account_id, site, day, is_bot, session_id, array_agg(path ORDER BY path COLLATE "C") AS pages,
           array_agg(n ORDER BY path COLLATE "C") AS pcnts
    FROM pages GROUP BY 1, 2, 3, 4, 5
),
hlist AS (
    SELECT source_account_id, site, day, is_bot, session_id, array_agg(hpath ORDER BY hpath COLLATE "C") AS hpages,
           array_agg(n ORDER BY hpath COLLATE "C") AS hcnts
    FROM hours GROUP BY 1, 2, 3, 4, 5
)
INSERT INTO np_analytics_web_day_sessions (source_account_id, site, day, is_bot, session_id, visitor, entry, exit,
                                           views, seconds, attrs, pages, pcnts, hpages, hcnts)
SELECT s.source_account_id, s.site, s.day, s.is_bot, s.session_id, s.visitor, s.entry, s.exit, s.views, s.seconds,
       s.attrs, coalesce(p.pages, '{}'), coalesce(p.pcnts, '{}'), coalesce(h.hpages, '{}'), coalesce(h.hcnts, '{}')
FROM sess s LEFT JOIN plist p USING (source_account_id, site, day, is_bot, session_id)
LEFT JOIN hlist h USING (source_account_id, site, day, is_bot, session_id)
"""
INSERT_DAY_SESSIONS = _CLOSED + DAY_SESSIONS_TAIL

_INDEX, _RANK = (sql.format(h=hll.HASH_SQL.format(v="visitor")) for sql in hll.REGISTER_SQL)
_EMPTY_SKETCH = f"decode(repeat('00', {hll.M}), 'hex')"
# Per (site, day, bot flag): the distinct visitors (raw ids: persons are resolved when read), their dense
# sketch (the non-zero registers in index order, the gaps filled with zero bytes), and the durations.
# (``sess`` needs only the key, visitor and seconds: web_hours.py reads them from the per-day sessions.)
DAY_STATS_TAIL = f""",
vis AS (
    SELECT source_account_id, site, day, is_bot, visitor FROM sess WHERE visitor IS NOT NULL
    UNION
    SELECT source_account_id, site, day, is_bot, visitor FROM fr WHERE session_id IS NULL AND visitor IS NOT NULL
),
visitors AS (
    SELECT source_account_id, site, day, is_bot, array_agg(visitor ORDER BY visitor) AS visitors
    FROM vis GROUP BY 1, 2, 3, 4
),
regs AS (
    SELECT source_account_id, site, day, is_bot, i, r, lag(i, 1, -1) OVER (
               PARTITION BY source_account_id, site, day, is_bot ORDER BY i) AS prev
    FROM (SELECT source_account_id, site, day, is_bot, {_INDEX} AS i, max({_RANK}) AS r
          FROM vis GROUP BY 1, 2, 3, 4, 5) AS x
),
sketches AS (
    SELECT source_account_id, site, day, is_bot,
           decode(string_agg(repeat('00', i - prev - 1) || lpad(to_hex(r), 2, '0'), '' ORDER BY i)
                  || repeat('00', {hll.M - 1} - max(i)), 'hex') AS sketch
    FROM regs GROUP BY 1, 2, 3, 4
),
keys AS (SELECT source_account_id, site, day, is_bot FROM fr
         UNION SELECT source_account_id, site, day, is_bot FROM sess),
durations AS (
    SELECT source_account_id, site, day, is_bot, array_agg(ms ORDER BY ms) AS ms, array_agg(n ORDER BY ms) AS n
    FROM (SELECT source_account_id, site, day, is_bot, round(seconds * 1000)::bigint AS ms, count(*)::int AS n
          FROM sess GROUP BY 1, 2, 3, 4, 5) AS d
    GROUP BY 1, 2, 3, 4
)
INSERT INTO np_analytics_web_day_stats (source_account_id, site, day, is_bot, visitors, sketch, ms, n, bn, bpos)
SELECT k.source_account_id, k.site, k.day, k.is_bot, coalesce(v.visitors, '{{}}'), coalesce(s.sketch, {_EMPTY_SKETCH}),
       coalesce(d.ms, '{{}}'), coalesce(d.n, '{{}}'), i.bn, i.bpos
FROM keys k LEFT JOIN visitors v USING (source_account_id, site, day, is_bot)
LEFT JOIN sketches s USING (source_account_id, site, day, is_bot)
LEFT JOIN durations d USING (source_account_id, site, day, is_bot)
-- the durations' bucket index (migration 0110): a median reads one bucket's slice of each day
CROSS JOIN LATERAL np_analytics_duration_index(coalesce(d.ms, '{{}}'), coalesce(d.n, '{{}}')) AS i
"""
INSERT_DAY_STATS = _CLOSED + DAY_STATS_TAIL


async def rebuild_days(cur: aiopg.Cursor, claimed: str, hours: list[tuple[str, datetime]]) -> None:
    """Inside the aggregator's transaction, for a claim of many hours (a backfill: whole days change): flags of the
    sessions of the ``claimed`` hours (JSON), then the whole days of ``hours`` (the claimed hours whose fragments were
    rebuilt) and of the changed flags. (A claim of a few hours: store/rollups/web_hours.py.)"""
    await cur.execute(SPANS, {"claimed": claimed})
    days = {(account, day) for account, day in await cur.fetchall()}
    days |= {(account, hour.astimezone(UTC).date()) for account, hour in hours}
    if not days:
        return
    params = {"days": json.dumps([{"source_account_id": a, "day": d.isoformat()} for a, d in sorted(days)])}
    for sql in (DELETE_DAILY, INSERT_DAILY, DELETE_DAY_STATS, INSERT_DAY_STATS, DELETE_DAY_SESSIONS,
                INSERT_DAY_SESSIONS):
        await cur.execute(sql, params)
