"""The SQL of each web-analytics read, built on store/web.py's COMMON (the fragments of the range grouped by
session; ``chosen``: the sessions the filters select; ``sel``: their fragments with the page views that
count) and the per-day rows of the whole days of an unfiltered read (``daily``).

What each read counts (docs/web-metrics.md): page views are the counted page views (``pv``: all, or under a
page filter those of its path); sessions are the selected sessions with a counted page view in the row;
visitors, bounces, durations and views per session are those of the whole selected sessions. Pages and hours
of the day are per page view; every other dimension is a session's (its first page view's value).
"""

from __future__ import annotations

from .identity import person_expr, person_join
from .rollups import hll
from .rollups.web_rollup import DIMENSIONS
from .web import RAW_FRAGMENTS, common, daily

__all__ = [
    "BREAKDOWNS",
    "ENTRY_PAGES",
    "EXIT_PAGES",
    "GOAL_EVENT",
    "GOAL_PATH",
    "PEAK_HOURS",
    "PEAK_WEEK",
    "PEAK_WEEK_HOURS",
    "SCREEN_WIDTHS",
    "SESSION_DURATION",
    "SUMMARY",
    "TIMESERIES",
]

# COMMON with the per-day session rows' arrays a read uses: none, the pages', the hours of the day's.
COMMON, PAGES_COMMON, HOURS_COMMON = common(), common(pages=True), common(hours=True)

# Page views, sessions and visitors: the ddays' closed sessions from their rows, the rest from the chosen
# sessions. A visitor is a person (store/identity.py): the anonymous id the beacon or SDK sent joins the user
# it identified as, also for rows stored before the link. So visitors are counted exactly over the ddays'
# visitor lists when the account has an identity link; without any (every id is its own person), and with
# whole days in the range, the ddays' sketches and the hashes of the other visitors are returned instead,
# merged in Python (store/rollups/hll.py: within 2%).
SUMMARY = COMMON + f"""
, day_stats AS (
    SELECT v.visitors, v.sketch FROM np_analytics_web_day_stats v
    WHERE NOT %(filtered)s AND v.source_account_id = %(account)s AND v.site = %(site)s AND v.day >= %(d1_day)s
      AND v.day < %(d2_day)s AND v.day IN (SELECT day FROM ddays) AND (%(include_bots)s OR NOT v.is_bot)
),
visitors AS (
    SELECT u.visitor FROM day_stats v CROSS JOIN LATERAL unnest(v.visitors) AS u(visitor)
    UNION ALL
    SELECT visitor FROM chosen WHERE visitor IS NOT NULL
),
-- distinct persons by hash aggregation (a sort for count(DISTINCT) costs several times more)
persons AS (
    SELECT {person_expr("v.visitor")} AS person FROM visitors v {person_join("v.visitor")} GROUP BY 1
),
sketched AS MATERIALIZED (
    SELECT NOT %(filtered)s AND EXISTS (SELECT 1 FROM ddays)
           AND NOT EXISTS (SELECT 1 FROM np_analytics_person_map WHERE source_account_id = %(account)s) AS yes
)
SELECT (SELECT coalesce(sum(views), 0) FROM {daily("*")} AS d) + (SELECT coalesce(sum(pv), 0) FROM chosen),
       (SELECT coalesce(sum(sessions), 0) FROM {daily("*")} AS d) + (SELECT count(*) FROM chosen),
       CASE WHEN NOT k.yes THEN (SELECT count(*) FROM persons) END,
       -- base64 text: a bytea[] of 90 days took several times longer to transfer and parse
       CASE WHEN k.yes THEN (SELECT string_agg(encode(sketch, 'base64'), ',') FROM day_stats) END,
       CASE WHEN k.yes THEN (SELECT array_agg(DISTINCT {hll.HASH_SQL.format(v="visitor")}) FROM chosen) END
FROM sketched k
"""

# Dimension name -> code of its values. Rows without a value are left out, except the referrer's '' (the
# sessions without one: "Direct / None").
_DIMENSIONS: dict[str, str] = {
    "pages": "p", "referrers": "r", "devices": "d", "languages": "l", "browsers": "b", "os": "o", "countries": "c",
    "hostnames": "h",
    # UTM reports (api/campaigns.py)
    "utm-sources": "S", "utm-mediums": "M", "utm-campaigns": "C", "utm-terms": "T", "utm-contents": "N",
}
assert set(_DIMENSIONS.values()) <= DIMENSIONS.keys()
# Per value of a session-level code: the chosen sessions with that value and their counted page views.
_PER_SESSION_VALUE = """
    SELECT value, views, sessions FROM {daily} AS d
    UNION ALL
    SELECT substr(a.v, 2), sum(c.pv), count(*)
    FROM chosen c CROSS JOIN LATERAL jsonb_array_elements_text(c.attrs) AS a(v)
    WHERE left(a.v, 1) = '{code}' GROUP BY 1"""
# Per page: its counted page views and the sessions with one (the ddays' rows, then the fragments read one
# by one: their sessions are never among the ddays' closed sessions, so the sums count each session once).
_PER_PAGE = """
    SELECT value, views, sessions FROM {daily} AS d
    UNION ALL
    SELECT value, sum(views), count(session_id) FROM (
        SELECT substr(d.v, 2) AS value, f.session_id, sum(d.n) AS views
        FROM sel f CROSS JOIN LATERAL unnest(f.vals, f.cnts) AS d(v, n)
        WHERE left(d.v, 1) = 'p' AND (%(path)s::text IS NULL OR d.v = 'p' || %(path)s)
        GROUP BY 1, 2
    ) AS per_session GROUP BY value
    UNION ALL
    SELECT p.path, sum(p.n), count(*)
    FROM dsess d CROSS JOIN LATERAL unnest(d.pages, d.pcnts) AS p(path, n)
    WHERE %(path)s::text IS NULL OR p.path = %(path)s
    GROUP BY 1"""
_BREAKDOWN = """
SELECT value, sum(views) AS pageviews, sum(sessions) AS sessions
FROM ({per_value}) AS per_value
WHERE value IS NOT NULL AND (value <> '' OR {empty})
GROUP BY value
ORDER BY pageviews DESC, sessions DESC, value COLLATE "C"
LIMIT %(limit)s
"""


def _per_value(code: str) -> str:
    per_value = _PER_PAGE if code == "p" else _PER_SESSION_VALUE
    return per_value.format(daily=daily(code), code=code)


BREAKDOWNS: dict[str, str] = {
    name: (PAGES_COMMON if code == "p" else COMMON)
    + _BREAKDOWN.format(per_value=_per_value(code), empty="true" if code == "r" else "false")
    for name, code in _DIMENSIONS.items()
}

# Page views and sessions per key, zero-filled over every key of a series: {counts} gives (key, views,
# sessions) rows to sum per key, {series} is a set-returning expression of all keys.
_SERIES = """
, counts AS (
    SELECT key, sum(views) AS pageviews, sum(sessions) AS sessions FROM ({counts}) AS c GROUP BY key
)
SELECT {label}, coalesce(counts.pageviews, 0) AS pageviews, coalesce(counts.sessions, 0) AS sessions
FROM {series} AS series(key)
LEFT JOIN counts ON counts.key = series.key
ORDER BY series.key
"""
_PER_KEY = """
    SELECT {daily_key} AS key, views, sessions FROM {daily} AS d
    UNION ALL
    SELECT key, sum(views), count(session_id) FROM (
        SELECT {key} AS key, session_id, sum(pv) AS views FROM sel WHERE pv > 0 GROUP BY 1, 2
    ) AS per_session GROUP BY key
    UNION ALL
    SELECT {dsess_key}"""

# A filtered read's ddays sessions per UTC day (a closed session lies in one).
_DSESS_DAYS = "day::timestamp AS key, sum(pv), count(*) FROM dsess WHERE pv > 0 GROUP BY 1"
# Days of [start, end) in the read's time zone (the per-day rows are UTC days: a read in another zone has none).
TIMESERIES = COMMON + _SERIES.format(
    counts=_PER_KEY.format(daily_key="d.day::timestamp", daily=daily("*"), dsess_key=_DSESS_DAYS,
                           key="date_trunc('day', hour AT TIME ZONE %(tz)s)"),
    label="to_char(series.key, 'YYYY-MM-DD')",
    series="generate_series(date_trunc('day', %(start)s AT TIME ZONE %(tz)s), "
           "date_trunc('day', (%(end)s - interval '1 microsecond') AT TIME ZONE %(tz)s), interval '1 day')",
)
# Per UTC hour of the day, a filtered read's ddays sessions: the counted page views of each (hour, path) entry.
# (Per hour and session first: a count(DISTINCT) per hour sorted every row.)
_DSESS_HOURS = """key, sum(n), count(*) FROM (
        SELECT left(h.hp, 2)::int AS key, d.session_id, sum(h.n) AS n
        FROM dsess d CROSS JOIN LATERAL unnest(d.hpages, d.hcnts) AS h(hp, n)
        WHERE %(path)s::text IS NULL OR substr(h.hp, 3) = %(path)s
        GROUP BY 1, 2
    ) AS per_session GROUP BY 1"""
# Hours of the day in the read's time zone (of each UTC hour's start); the whole days' rows are UTC hours, so
# a read in another zone groups every fragment (store/web_reads.py).
PEAK_HOURS = HOURS_COMMON + _SERIES.format(
    counts=_PER_KEY.format(daily_key="d.value::int", daily=daily("H"), dsess_key=_DSESS_HOURS,
                           key="extract(hour FROM hour AT TIME ZONE %(tz)s)::int"),
    label="series.key", series="generate_series(0, 23)",
)
# Per ISO weekday (1 Monday) and hour of the day in the read's zone (of each UTC hour's start): the counted page
# views, the selected sessions with one and their persons. Read as a filtered read whatever the filters (the
# whole days' sessions one by one from their rows, with their page views per UTC hour: migration 0109), since
# the per-day rows keep neither weekdays nor visitors per hour; another zone than UTC groups every fragment.
PEAK_WEEK = HOURS_COMMON + f"""
, cells AS (
    SELECT extract(isodow FROM f.hour AT TIME ZONE %(tz)s)::int AS dow,
           extract(hour FROM f.hour AT TIME ZONE %(tz)s)::int AS hr, f.session_id, g.visitor, f.pv
    FROM sel f JOIN gchosen g USING (session_id) WHERE f.pv > 0
    UNION ALL
    SELECT extract(isodow FROM d.day)::int, left(h.hp, 2)::int, d.session_id, d.visitor, h.n
    FROM dsess d CROSS JOIN LATERAL unnest(d.hpages, d.hcnts) AS h(hp, n)
    WHERE %(path)s::text IS NULL OR substr(h.hp, 3) = %(path)s
),
-- grouped level by level (hash aggregates: count(DISTINCT) per cell sorted every row)
per_session AS (
    SELECT dow, hr, session_id, min(visitor) AS visitor, sum(pv) AS pv FROM cells GROUP BY 1, 2, 3
),
per_person AS (
    SELECT p.dow, p.hr, {person_expr("p.visitor")} AS person, sum(p.pv) AS pv, count(*) AS sessions
    FROM per_session p {person_join("p.visitor")} GROUP BY 1, 2, 3
),
per AS (
    SELECT dow, hr, sum(pv) AS pageviews, sum(sessions) AS sessions, count(person) AS visitors
    FROM per_person GROUP BY 1, 2
)
SELECT d.d, h.h, coalesce(per.visitors, 0), coalesce(per.pageviews, 0), coalesce(per.sessions, 0)
FROM generate_series(1, 7) AS d(d) CROSS JOIN generate_series(0, 23) AS h(h)
LEFT JOIN per ON per.dow = d.d AND per.hr = h.h
ORDER BY 1, 2
"""
# Unfiltered: from the per-hour rows (migration 0124) of the whole clean hours of the range, and per hour of the
# raw fragments (the edges and the dirty hours, persons resolved now); each cell sums its UTC hours: page views,
# sessions with a page view in the hour and the hour's distinct visitors ("hourly visitors", docs/web-metrics.md).
# Costs hours x sites, not traffic.
PEAK_WEEK_HOURS = f"""
WITH hours AS (
    SELECT s.hour, CASE WHEN %(include_bots)s THEN s.all_views ELSE s.views END AS views,
           CASE WHEN %(include_bots)s THEN s.all_sessions ELSE s.sessions END AS sessions,
           CASE WHEN %(include_bots)s THEN s.all_visitors ELSE s.visitors END AS visitors
    FROM np_analytics_web_hour_stats s
    WHERE s.source_account_id = %(account)s AND s.site = %(site)s AND s.hour >= %(h1)s AND s.hour < %(h2)s
      AND s.hour <> ALL(%(dirty)s::timestamptz[])
    UNION ALL
    SELECT r.hour, sum(r.views), count(DISTINCT r.session_id), count(DISTINCT {person_expr("r.visitor")})
    FROM ({RAW_FRAGMENTS}) AS r {person_join("r.visitor")}
    GROUP BY r.hour
),
per AS (
    SELECT extract(isodow FROM hour AT TIME ZONE %(tz)s)::int AS dow, extract(hour FROM hour AT TIME ZONE %(tz)s)::int
           AS hr, sum(views) AS pageviews, sum(sessions) AS sessions, sum(visitors) AS visitors
    FROM hours WHERE views > 0 GROUP BY 1, 2
)
SELECT d.d, h.h, coalesce(per.visitors, 0), coalesce(per.pageviews, 0), coalesce(per.sessions, 0)
FROM generate_series(1, 7) AS d(d) CROSS JOIN generate_series(0, 23) AS h(h)
LEFT JOIN per ON per.dow = d.d AND per.hr = h.h
ORDER BY 1, 2
"""
SCREEN_WIDTHS = COMMON + _SERIES.format(
    counts=f"SELECT value::int AS key, views, sessions FROM ({_per_value('w')}) AS w",
    label="series.key", series="generate_series(0, 4)",
)

ENTRY_PAGES = COMMON + f"""
SELECT path, sum(sessions) AS sessions, sum(bounces) AS bounces FROM (
    SELECT value AS path, sessions, bounces FROM {daily("e")} AS d
    UNION ALL
    SELECT entry, count(*), count(*) FILTER (WHERE views = 1) FROM chosen GROUP BY entry
) AS e
GROUP BY path
ORDER BY sessions DESC, path COLLATE "C"
LIMIT %(limit)s
"""
EXIT_PAGES = COMMON + f"""
SELECT path, sum(sessions) AS sessions FROM (
    SELECT value AS path, sessions FROM {daily("x")} AS d
    UNION ALL
    SELECT exit, count(*) FROM chosen GROUP BY exit
) AS x
GROUP BY path
ORDER BY sessions DESC, path COLLATE "C"
LIMIT %(limit)s
"""
# The median of the durations, to the millisecond (bigint milliseconds: numeric seconds took 3x longer): the
# ddays keep them per millisecond with their session counts; the k-th smallest (from 0) is the first
# duration whose running count exceeds k.
SESSION_DURATION = COMMON + f"""
, totals AS (
    SELECT coalesce(sum(sessions), 0) AS n, coalesce(sum(seconds), 0) AS seconds, coalesce(sum(sviews), 0) AS views,
           coalesce(sum(bounces), 0) AS bounces
    FROM (SELECT sessions, seconds, sviews, bounces FROM {daily("*")} AS d
          UNION ALL
          SELECT count(*), sum(seconds), sum(views), count(*) FILTER (WHERE views = 1) FROM chosen) AS t
),
-- the median: the per-day durations are indexed by bucket (migration 0110), so the bucket(s) holding the two
-- middle ranks are found from the per-bucket counts, and only their values are read, from each day's slice
dstats AS MATERIALIZED (
    SELECT v.ms, v.n, v.bn, v.bpos FROM np_analytics_web_day_stats v
    WHERE NOT %(filtered)s AND v.source_account_id = %(account)s AND v.site = %(site)s AND v.day >= %(d1_day)s
      AND v.day < %(d2_day)s AND v.day IN (SELECT day FROM ddays) AND (%(include_bots)s OR NOT v.is_bot)
),
extra AS MATERIALIZED (
    SELECT round(seconds * 1000)::bigint AS ms, np_analytics_duration_bucket(round(seconds * 1000)::bigint) AS k
    FROM chosen
),
cumul AS (
    SELECT k, sum(c) OVER (ORDER BY k) AS upto, sum(c) OVER (ORDER BY k) - c AS below
    FROM (SELECT k, sum(c) AS c FROM (
              SELECT b.k - 1 AS k, b.c FROM dstats d CROSS JOIN LATERAL unnest(d.bn) WITH ORDINALITY AS b(c, k)
              UNION ALL
              SELECT k, 1 FROM extra) AS u
          GROUP BY k) AS g
),
pick AS (
    SELECT min(c.k) FILTER (WHERE c.upto > floor((t.n - 1) / 2)) AS k1,
           min(c.k) FILTER (WHERE c.upto > floor(t.n / 2)) AS k2
    FROM cumul c CROSS JOIN totals t
),
durations AS (
    SELECT ms, (SELECT c.below FROM cumul c JOIN pick p ON c.k = p.k1) + sum(n) OVER (ORDER BY ms) AS upto
    FROM (SELECT ms, sum(n) AS n FROM (
              SELECT u.ms, u.n
              FROM dstats d CROSS JOIN pick p
              CROSS JOIN LATERAL unnest(d.ms[d.bpos[p.k1 + 1]:d.bpos[p.k2 + 2] - 1],
                                        d.n[d.bpos[p.k1 + 1]:d.bpos[p.k2 + 2] - 1]) AS u(ms, n)
              UNION ALL
              SELECT e.ms, 1 FROM extra e CROSS JOIN pick p WHERE e.k BETWEEN p.k1 AND p.k2) AS u
          GROUP BY ms) AS g
)
SELECT t.n, CASE WHEN t.n > 0 THEN t.seconds / t.n ELSE 0 END,
       coalesce((SELECT (min(ms) FILTER (WHERE upto > floor((t.n - 1) / 2))
                         + min(ms) FILTER (WHERE upto > floor(t.n / 2))) / 2000.0 FROM durations), 0)::float8,
       CASE WHEN t.n > 0 THEN t.views::float8 / t.n ELSE 0 END,
       t.bounces
FROM totals t
"""

# A page goal: its page views in the selected sessions, and the persons of the selected sessions with one.
GOAL_PATH = PAGES_COMMON + f"""
, hits AS (
    SELECT session_id, sum(coalesce(cnts[array_position(vals, 'p' || %(value)s)], 0)) AS n FROM sel GROUP BY 1
    UNION ALL
    SELECT session_id, coalesce(pcnts[array_position(pages, %(value)s)], 0) FROM dsess
)
SELECT coalesce(sum(h.n), 0), count(DISTINCT {person_expr("c.visitor")}) FILTER (WHERE h.n > 0)
FROM hits h JOIN chosen c USING (session_id) {person_join("c.visitor")}
"""

# An event goal under filters: its events in the selected sessions, and the persons of the selected sessions with
# one (``evs`` reads the goal's name besides the filters').
GOAL_EVENT = COMMON + f"""
, hits AS (SELECT session_id, sum(n) AS n FROM evs WHERE event = %(value)s GROUP BY 1)
SELECT coalesce(sum(h.n), 0), count(DISTINCT {person_expr("c.visitor")})
FROM hits h JOIN chosen c USING (session_id) {person_join("c.visitor")}
"""
