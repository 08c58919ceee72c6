"""Web-analytics reads: page views of one site over a time range, from session fragments.

Every read groups the session fragments of its range (store/rollups/web_rollup.py: one row per site, session,
UTC hour and bot flag) by session: the fragments the aggregator stored for the whole hours of the range
that are not dirty, and fragments built on the fly from raw page views for the rest (the hours still
dirty, typically the current one, and the partial hours at the range's edges). A read with a filter
(``path``, ``referrer`` as a domain, ``country``, ``device``, ``browser``, ``os``, ``utm_*``) builds all
its fragments from the raw page views the filter selects, since a session is the set of its selected page
views. Parameters: ``account``, ``site``, ``start``, ``end`` (half-open), ``include_bots``, the filters
(NULL when unset) and ``limit``.
The SQL is built once, at import, from the constants below; user input only ever arrives as parameters. The
reads that run it are in store/web_reads.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import msgspec

from .identity import person_expr, person_join
from .rollups import hll
from .rollups.web_rollup import DIMENSIONS, FRAGMENTS, PAGE_VIEW, REFERRER_DOMAIN

__all__ = ["BREAKDOWNS", "SCREEN_BUCKETS", "WebQuery", "page_view_filters"]

SITE_DOMAIN = r"regexp_replace(%(site)s, '^www\.', '')"



def page_view_filters(alias: str = "") -> str:
    """The read's filters (WebQuery.params: path, country, device, referrer domain, browser, os, UTM values) over
    raw events; ``alias``: the events' table alias in the query (``e``), if any. The one spelling of the filters:
    the web reads' raw parts and the goals (store/campaigns.py) use it."""
    p = f"{alias}." if alias else ""
    return f"""(%(path)s::text IS NULL OR {p}path = %(path)s)
    AND (%(country)s::text IS NULL OR {p}country = %(country)s)
    AND (%(device)s::text IS NULL OR {p}device = %(device)s)
    AND (%(referrer)s::text IS NULL OR {REFERRER_DOMAIN.replace("referrer", p + "referrer")} = %(referrer)s)
    AND (%(browser)s::text IS NULL OR {p}browser = %(browser)s)
    AND (%(os)s::text IS NULL OR {p}os = %(os)s)
    AND (%(utm)s::jsonb IS NULL OR {p}properties @> %(utm)s::jsonb)"""


# Raw page views of the read (site and time come from the ranges in %(raw)s).
_RAW_FILTERS = f"""
    source_account_id = %(account)s AND {PAGE_VIEW} AND (%(include_bots)s OR NOT is_bot)
    AND {page_view_filters()}
"""
# Three index range scans on (site, ts), bounds known when planning (so each reads only its days): the
# partial hour at the range's start, the span of the dirty hours (only the dirty hours kept), and the
# partial hour at its end. An empty scan has lo = hi.
_RAW_SCAN = "SELECT * FROM np_analytics_events WHERE site = %(site)s AND ts >= %({n}_lo)s AND ts < %({n}_hi)s"
_RAW_SOURCE = f"""(
    {_RAW_SCAN.format(n="head")}
    UNION ALL
    {_RAW_SCAN.format(n="dirty")}
        AND date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' = ANY(%(dirty)s::timestamptz[])
    UNION ALL
    {_RAW_SCAN.format(n="tail")}
) AS e"""
_FRAGMENT_COLUMNS = "hour, session_id, visitor, first_ts, last_ts, views, entry, exit, vals, cnts"
_STORED = "np_analytics_web_sessions f WHERE f.source_account_id = %(account)s AND f.site = %(site)s"
# The parts of a read:
# * raw: fragments built from raw page views (edges, dirty hours; everything when filtered);
# * ddays: the whole days of the range read from the per-day rows: no dirty hour, and no closed session
#   of theirs seen in raw page views (a late page view not aggregated yet would count it twice);
# * gen: the fragments read one by one: those of the other days of [h1, h2) (clean hours), the spanning
#   ones of the ddays, and raw;
# * daily: the per-day rows of the ddays.
COMMON = f"""
WITH raw AS MATERIALIZED (
    SELECT {_FRAGMENT_COLUMNS} FROM ({FRAGMENTS.format(source=_RAW_SOURCE, where=_RAW_FILTERS)}) AS raw
),
pulled AS (
    SELECT (f.hour AT TIME ZONE 'UTC')::date AS day
    FROM raw r JOIN {_STORED.replace(" WHERE ", " ON ")} AND f.session_id = r.session_id
    WHERE NOT f.spans AND f.hour >= %(d1)s AND f.hour < %(d2)s
),
ddays AS MATERIALIZED (
    SELECT g::date AS day
    FROM generate_series(%(d1)s::timestamptz AT TIME ZONE 'UTC', %(d2)s::timestamptz AT TIME ZONE 'UTC'
                         - interval '1 day', interval '1 day') AS g
    WHERE g::date <> ALL(%(dirty_days)s::date[]) AND g::date NOT IN (SELECT day FROM pulled)
),
fdays AS (
    SELECT g::date AS day
    FROM generate_series(date_trunc('day', %(h1)s::timestamptz AT TIME ZONE 'UTC'),
                         (%(h2)s::timestamptz - interval '1 microsecond') AT TIME ZONE 'UTC', interval '1 day') AS g
    WHERE g::date NOT IN (SELECT day FROM ddays)
),
gen AS (
    SELECT f.* FROM fdays d CROSS JOIN LATERAL (
        SELECT {_FRAGMENT_COLUMNS} FROM {_STORED}
          AND f.hour >= greatest(%(h1)s, d.day::timestamp AT TIME ZONE 'UTC')
          AND f.hour < least(%(h2)s, (d.day + 1)::timestamp AT TIME ZONE 'UTC')
          AND f.hour <> ALL(%(dirty)s::timestamptz[]) AND (%(include_bots)s OR NOT f.is_bot)
    ) AS f
    UNION ALL
    SELECT {_FRAGMENT_COLUMNS} FROM {_STORED}
      AND f.spans AND f.hour >= %(d1)s AND f.hour < %(d2)s AND (%(include_bots)s OR NOT f.is_bot)
      AND (f.hour AT TIME ZONE 'UTC')::date IN (SELECT day FROM ddays)
    UNION ALL
    SELECT {_FRAGMENT_COLUMNS} FROM raw
)"""


def _daily(code: str) -> str:
    """The per-day rows of one code over the ddays."""
    return f"""(
    SELECT w.day, w.value, w.views, w.sessions, w.bounces, w.seconds, w.sviews FROM np_analytics_web_daily w
    WHERE w.source_account_id = %(account)s AND w.site = %(site)s AND w.code = '{code}'
      AND w.day >= %(d1_day)s AND w.day < %(d2_day)s AND w.day IN (SELECT day FROM ddays)
      AND (%(include_bots)s OR NOT w.is_bot))"""


# Page views, sessions and visitors: the ddays' closed sessions from their rows, the rest from the fragments
# read one by one. A visitor is a person (store/identity.py): the anonymous id the beacon or SDK sent joins
# the user it identified as, also for rows stored before the link. So visitors are counted exactly over the
# ddays' visitor lists when the account has an identity link; without any (every id is its own person),
# and with whole days in the range, the ddays' sketches and the hashes of the other visitors are returned
# instead, merged in Python (store/rollups/hll.py: within 2%).
SUMMARY = COMMON + f"""
, per_session AS (
    -- one row per session (its visitor: the first identity seen, so a session whose IP changes mid-way is
    -- still one session); page views without a session are grouped by visitor instead
    SELECT session_id, min(visitor) AS visitor, sum(views) AS views
    FROM gen
    GROUP BY session_id, CASE WHEN session_id IS NULL THEN visitor END
),
day_stats AS (
    SELECT v.visitors, v.sketch FROM np_analytics_web_day_stats v
    WHERE v.source_account_id = %(account)s AND v.site = %(site)s AND v.day >= %(d1_day)s AND v.day < %(d2_day)s
      AND v.day IN (SELECT day FROM ddays) AND (%(include_bots)s OR NOT v.is_bot)
),
visitors AS (
    SELECT u.visitor FROM day_stats v CROSS JOIN LATERAL unnest(v.visitors) AS u(visitor)
    UNION ALL
    SELECT visitor FROM per_session WHERE visitor IS NOT NULL
),
-- distinct persons by hash aggregation (a sort for count(DISTINCT) costs several times more)
persons AS (
    SELECT {person_expr("v.visitor")} AS person FROM visitors v {person_join("v.visitor")} GROUP BY 1
),
sketched AS MATERIALIZED (
    SELECT EXISTS (SELECT 1 FROM ddays)
           AND NOT EXISTS (SELECT 1 FROM np_analytics_person_map WHERE source_account_id = %(account)s) AS yes
)
SELECT (SELECT coalesce(sum(views), 0) FROM {_daily("*")} AS d) + (SELECT coalesce(sum(views), 0) FROM per_session),
       (SELECT coalesce(sum(sessions), 0) FROM {_daily("*")} AS d) + (SELECT count(session_id) FROM per_session),
       CASE WHEN NOT k.yes THEN (SELECT count(*) FROM persons) END,
       -- base64 text: a bytea[] of 90 days took several times longer to transfer and parse
       CASE WHEN k.yes THEN (SELECT string_agg(encode(sketch, 'base64'), ',') FROM day_stats) END,
       CASE WHEN k.yes THEN (SELECT array_agg(DISTINCT {hll.HASH_SQL.format(v="visitor")}) FROM per_session) END
FROM sketched k
"""

# Dimension name -> (code of its values in the fragments, condition on its value). Rows without a value
# are left out.
_DIMENSIONS: dict[str, tuple[str, str]] = {
    "pages": ("p", "true"),
    "referrers": ("r", f"value <> {SITE_DOMAIN}"),
    "devices": ("d", "true"),
    "languages": ("l", "true"),
    "browsers": ("b", "true"),
    "os": ("o", "true"),
    "countries": ("c", "true"),
    "hostnames": ("h", "true"),
    # UTM reports (api/campaigns.py)
    "utm-sources": ("S", "true"),
    "utm-mediums": ("M", "true"),
    "utm-campaigns": ("C", "true"),
    "utm-terms": ("T", "true"),
    "utm-contents": ("N", "true"),
}
assert {code for code, _ in _DIMENSIONS.values()} <= DIMENSIONS.keys()
# Page views and sessions per value of one code: the ddays' rows, then the fragments read one by one
# (their sessions are never among the ddays' closed sessions, so the sums count each session once).
_PER_VALUE = """
    SELECT value, views, sessions FROM {daily} AS d
    UNION ALL
    SELECT value, sum(views), count(session_id) FROM (
        SELECT substr(d.v, 2) AS value, f.session_id, sum(d.n) AS views
        FROM gen f CROSS JOIN LATERAL unnest(f.vals, f.cnts) AS d(v, n)
        WHERE left(d.v, 1) = '{code}'
        GROUP BY 1, 2
    ) AS per_session GROUP BY value"""
_BREAKDOWN = """
SELECT value, sum(views) AS pageviews, sum(sessions) AS sessions
FROM ({per_value}) AS per_value
WHERE value IS NOT NULL AND value <> '' AND {condition}
GROUP BY value
ORDER BY pageviews DESC, sessions DESC, value COLLATE "C"
LIMIT %(limit)s
"""
BREAKDOWNS: dict[str, str] = {
    name: COMMON + _BREAKDOWN.format(per_value=_PER_VALUE.format(daily=_daily(code), code=code), condition=condition)
    for name, (code, condition) in _DIMENSIONS.items()
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
        SELECT {key} AS key, session_id, sum(views) AS views FROM gen GROUP BY 1, 2
    ) AS per_session GROUP BY key"""

# Days of [start, end) in UTC.
TIMESERIES = COMMON + _SERIES.format(
    counts=_PER_KEY.format(daily_key="d.day::timestamp", daily=_daily("*"),
                           key="date_trunc('day', hour AT TIME ZONE 'UTC')"),
    label="to_char(series.key, 'YYYY-MM-DD')",
    series="generate_series(date_trunc('day', %(start)s AT TIME ZONE 'UTC'), "
           "date_trunc('day', (%(end)s - interval '1 microsecond') AT TIME ZONE 'UTC'), interval '1 day')",
)
# Hours of the day, UTC.
PEAK_HOURS = COMMON + _SERIES.format(
    counts=_PER_KEY.format(daily_key="d.value::int", daily=_daily("H"),
                           key="extract(hour FROM hour AT TIME ZONE 'UTC')::int"),
    label="series.key", series="generate_series(0, 23)",
)
# Screen width buckets (the common CSS breakpoints): label, lowest width, highest width (None: no limit).
SCREEN_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("<576", 0, 575), ("576-767", 576, 767), ("768-991", 768, 991), ("992-1199", 992, 1199), (">=1200", 1200, None),
)
SCREEN_WIDTHS = COMMON + _SERIES.format(
    counts=f"SELECT value::int AS key, views, sessions FROM ({_PER_VALUE.format(daily=_daily('w'), code='w')}) AS w",
    label="series.key", series="generate_series(0, 4)",
)

# One row per session read one by one: its first and last page (the fragments of a session never overlap
# in time, except a bot's and a human's within one hour: ties broken by path as within a fragment), views,
# and duration.
_SESSIONS = COMMON + """
, sessions AS (
    SELECT session_id,
           (array_agg(entry ORDER BY first_ts, entry COLLATE "C"))[1] AS entry,
           (array_agg(exit ORDER BY last_ts DESC, exit COLLATE "C" DESC))[1] AS exit,
           sum(views) AS views,
           extract(epoch FROM max(last_ts) - min(first_ts))::float8 AS seconds
    FROM gen
    WHERE session_id IS NOT NULL
    GROUP BY session_id
)
"""
ENTRY_PAGES = _SESSIONS + f"""
SELECT path, sum(sessions) AS sessions, sum(bounces) AS bounces FROM (
    SELECT value AS path, sessions, bounces FROM {_daily("e")} AS d
    UNION ALL
    SELECT entry, count(*), count(*) FILTER (WHERE views = 1) FROM sessions GROUP BY entry
) AS e
GROUP BY path
ORDER BY sessions DESC, path COLLATE "C"
LIMIT %(limit)s
"""
EXIT_PAGES = _SESSIONS + f"""
SELECT path, sum(sessions) AS sessions FROM (
    SELECT value AS path, sessions FROM {_daily("x")} AS d
    UNION ALL
    SELECT exit, count(*) FROM sessions GROUP BY exit
) AS x
GROUP BY path
ORDER BY sessions DESC, path COLLATE "C"
LIMIT %(limit)s
"""
# The median of the durations, to the millisecond (bigint milliseconds: numeric seconds took 3x longer): the
# ddays keep them per millisecond with their session counts; the k-th smallest (from 0) is the first
# duration whose running count exceeds k.
SESSION_DURATION = _SESSIONS + f"""
, totals AS (
    SELECT coalesce(sum(sessions), 0) AS n, coalesce(sum(seconds), 0) AS seconds, coalesce(sum(sviews), 0) AS views,
           coalesce(sum(bounces), 0) AS bounces
    FROM (SELECT sessions, seconds, sviews, bounces FROM {_daily("*")} AS d
          UNION ALL
          SELECT count(*), sum(seconds), sum(views), count(*) FILTER (WHERE views = 1) FROM sessions) AS t
),
-- the median: the per-day durations are indexed by bucket (migration 0110), so the bucket(s) holding the two
-- middle ranks are found from the per-bucket counts, and only their values are read, from each day's slice
dstats AS MATERIALIZED (
    SELECT v.ms, v.n, v.bn, v.bpos FROM np_analytics_web_day_stats v
    WHERE v.source_account_id = %(account)s AND v.site = %(site)s AND v.day >= %(d1_day)s
      AND v.day < %(d2_day)s AND v.day IN (SELECT day FROM ddays) AND (%(include_bots)s OR NOT v.is_bot)
),
extra AS MATERIALIZED (
    SELECT round(seconds * 1000)::bigint AS ms, np_analytics_duration_bucket(round(seconds * 1000)::bigint) AS k
    FROM sessions
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

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class WebQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The parameters shared by every web-analytics read."""

    site: str
    start: datetime
    end: datetime
    include_bots: bool = False
    path: str | None = None
    referrer: str | None = None
    country: str | None = None
    device: str | None = None
    limit: int = 10
    account: str = "primary"
    browser: str | None = None
    os: str | None = None
    utm: tuple[tuple[str, str], ...] = ()  # (utm_* property, value) pairs, all required

    @property
    def filtered(self) -> bool:
        return bool(self.utm) or any(value is not None for value in (
            self.path, self.referrer, self.country, self.device, self.browser, self.os))

    def params(self) -> dict[str, Any]:
        return {"account": self.account, "site": self.site, "start": self.start, "end": self.end,
                "include_bots": self.include_bots,
                "path": self.path, "referrer": self.referrer, "country": self.country, "device": self.device,
                "browser": self.browser, "os": self.os, "utm": json.dumps(dict(self.utm)) if self.utm else None,
                "limit": self.limit}
