"""The day stats (np_analytics_web_day_stats: visitors, their sketch, durations) of the (site, day, bot flag) keys whose
sessions the aggregator's claimed hours changed (store/rollups/web_hours.py), without reading their whole days when
no visitor can have left the day.

Per key, the affected sessions' old and new closed sessions (np_web_old / np_web_new: their fragments) give the
visitors and durations they contributed before and after. When every old visitor is still a new one (sessions only
grew: the steady state), the day's visitors are its old ones plus the new ones, the sketch the registers' maximum
with the new ones', the durations the old multiset less the old sessions' plus the new sessions' (all exact: the
other sessions' contributions did not change). Otherwise (a session began spanning days or its visitor changed) the
key is recomputed from its per-day sessions and sessionless fragments, as a full rebuild would.
"""

from __future__ import annotations

import aiopg

from . import hll
from .web_daily import DAY_STATS_TAIL, FR_COLUMNS

__all__ = ["TABLES", "refresh"]

TABLES = "np_web_keys, np_web_sides, np_web_full, np_web_rows"
_KEY = "source_account_id, site, day, is_bot"
_SAME = "{a}.source_account_id = {b}.source_account_id AND {a}.site = {b}.site AND {a}.day = {b}.day " \
        "AND {a}.is_bot = {b}.is_bot"

KEYS = f"""
CREATE TEMP TABLE np_web_keys ON COMMIT DROP AS
SELECT {_KEY} FROM np_web_old
UNION
SELECT {_KEY} FROM np_web_new
"""

# What the affected sessions (and sessionless fragments) gave each key before ('o') and after ('n'): a visitor and,
# for a session, its duration in milliseconds (as web_daily's sess and durations compute them).
_PER_SESSION = f"""
SELECT {_KEY}, min(visitor) AS visitor,
       round(extract(epoch FROM max(last_ts) - min(first_ts))::float8 * 1000)::bigint AS ms
FROM {{table}} WHERE session_id IS NOT NULL GROUP BY {_KEY}, session_id
UNION ALL
SELECT {_KEY}, visitor, NULL FROM {{table}} WHERE session_id IS NULL AND visitor IS NOT NULL"""
SIDES = f"""
CREATE TEMP TABLE np_web_sides ON COMMIT DROP AS
SELECT 'o' AS side, * FROM ({_PER_SESSION.format(table="np_web_old")}) AS o
UNION ALL
SELECT 'n', * FROM ({_PER_SESSION.format(table="np_web_new")}) AS n
"""
# Keys an old visitor may have left: recomputed in full.
FULL = f"""
CREATE TEMP TABLE np_web_full ON COMMIT DROP AS
SELECT DISTINCT {_KEY} FROM np_web_sides o
WHERE o.side = 'o' AND o.visitor IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM np_web_sides n WHERE n.side = 'n' AND {_SAME.format(a="n", b="o")} AND n.visitor = o.visitor)
"""

_INDEX, _RANK = (sql.format(h=hll.HASH_SQL.format(v="x.visitor")) for sql in hll.REGISTER_SQL)
_EMPTY_SKETCH = f"decode(repeat('00', {hll.M}), 'hex')"
# The other keys' new rows, from their stored row (none: empty) and the sides.
_NEW_VISITOR = f"x.side = 'n' AND {_SAME.format(a='x', b='i')} AND x.visitor IS NOT NULL"
INCREMENT = f"""
CREATE TEMP TABLE np_web_rows ON COMMIT DROP AS
WITH inc AS MATERIALIZED (
    SELECT k.source_account_id, k.site, k.day, k.is_bot, s.visitors, coalesce(s.sketch, {_EMPTY_SKETCH}) AS sketch,
           s.ms, s.n
    FROM np_web_keys k
    LEFT JOIN np_analytics_web_day_stats s ON {_SAME.format(a="s", b="k")}
    WHERE NOT EXISTS (SELECT 1 FROM np_web_full f WHERE {_SAME.format(a="f", b="k")})
),
regs AS MATERIALIZED (
    SELECT {_KEY}, {_INDEX} AS i, max({_RANK}) AS r FROM np_web_sides x
    WHERE x.side = 'n' AND x.visitor IS NOT NULL GROUP BY 1, 2, 3, 4, 5
),
-- the registers a new visitor raises (none: the sketch stays), then every register of those keys
raised AS MATERIALIZED (
    SELECT DISTINCT i.source_account_id, i.site, i.day, i.is_bot
    FROM inc i JOIN regs r ON {_SAME.format(a="r", b="i")} AND r.r > get_byte(i.sketch, r.i)
),
sketches AS (
    SELECT i.source_account_id, i.site, i.day, i.is_bot,
           decode(string_agg(lpad(to_hex(greatest(get_byte(i.sketch, g.i), coalesce(r.r, 0))), 2, '0'), ''
                             ORDER BY g.i), 'hex') AS sketch
    FROM raised k JOIN inc i ON {_SAME.format(a="i", b="k")}
    CROSS JOIN generate_series(0, {hll.M - 1}) AS g(i)
    LEFT JOIN regs r ON {_SAME.format(a="r", b="i")} AND r.i = g.i
    GROUP BY 1, 2, 3, 4
)
SELECT i.source_account_id, i.site, i.day, i.is_bot, v.visitors, coalesce(g.sketch, i.sketch), d.ms, d.n, x.bn,
       x.bpos
FROM inc i
LEFT JOIN sketches g ON {_SAME.format(a="g", b="i")}
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(u.v ORDER BY u.v), '{{}}') AS visitors FROM (
        SELECT unnest(coalesce(i.visitors, '{{}}')) AS v
        UNION
        SELECT x.visitor FROM np_web_sides x WHERE {_NEW_VISITOR}) AS u) AS v
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(t.m ORDER BY t.m), '{{}}')::bigint[] AS ms,
           coalesce(array_agg(t.c ORDER BY t.m), '{{}}')::integer[] AS n
    FROM (
        SELECT m, sum(c)::integer AS c FROM (
            SELECT u.m, u.c FROM unnest(coalesce(i.ms, '{{}}'), coalesce(i.n, '{{}}')) AS u(m, c)
            UNION ALL
            SELECT x.ms, CASE WHEN x.side = 'n' THEN 1 ELSE -1 END FROM np_web_sides x
            WHERE {_SAME.format(a="x", b="i")} AND x.ms IS NOT NULL) AS e
        GROUP BY m HAVING sum(c) > 0) AS t) AS d
CROSS JOIN LATERAL np_analytics_duration_index(d.ms, d.n) AS x
"""
# Every key's row goes (INCREMENT has read the ones it keeps), then INCREMENT and FULL_STATS write them again.
DELETE_STATS = """
DELETE FROM np_analytics_web_day_stats w USING np_web_keys k
WHERE w.source_account_id = k.source_account_id AND w.site = k.site AND w.day = k.day AND w.is_bot = k.is_bot
"""
# The keys recomputed in full, from their per-day sessions and sessionless fragments.
FULL_STATS = f"""
WITH fr AS MATERIALIZED (
    SELECT {FR_COLUMNS.format(day="k.day")}
    FROM np_web_full k CROSS JOIN LATERAL (
        SELECT * FROM np_analytics_web_sessions w
        WHERE w.source_account_id = k.source_account_id AND w.site = k.site
          AND w.hour >= k.day::timestamp AT TIME ZONE 'UTC' AND w.hour < (k.day + 1)::timestamp AT TIME ZONE 'UTC'
          AND w.is_bot = k.is_bot AND NOT w.spans AND w.session_id IS NULL
        OFFSET 0) AS w
),
sess AS MATERIALIZED (
    SELECT s.source_account_id, s.site, s.day, s.is_bot, s.session_id, s.visitor, s.seconds
    FROM np_web_full k CROSS JOIN LATERAL (
        SELECT * FROM np_analytics_web_day_sessions s
        WHERE s.source_account_id = k.source_account_id AND s.site = k.site AND s.day = k.day
          AND s.is_bot = k.is_bot
        OFFSET 0) AS s
){DAY_STATS_TAIL}"""


async def refresh(cur: aiopg.Cursor) -> None:
    """After np_web_old and np_web_new are filled and the per-day sessions replaced: the stats of their keys."""
    for sql in (KEYS, SIDES, FULL):
        await cur.execute(sql)
    await cur.execute("ANALYZE np_web_sides")
    await cur.execute(INCREMENT)
    await cur.execute(DELETE_STATS)
    await cur.execute("INSERT INTO np_analytics_web_day_stats SELECT * FROM np_web_rows")
    await cur.execute(FULL_STATS)
