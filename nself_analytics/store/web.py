"""Web-analytics reads: page views of one site over a time range, from session fragments.

Every read groups the session fragments of its range (store/rollups/web_rollup.py: one row per site, session,
UTC hour and bot flag) by session: the fragments the aggregator stored for the whole hours of the range
that are not dirty, and fragments built on the fly from raw page views for the rest (the hours still
dirty, typically the current one, and the partial hours at the range's edges). An unfiltered read takes
the closed sessions of whole UTC days from their per-day rows (store/rollups/web_daily.py).

Filters select whole sessions (docs/web-metrics.md, Plausible's model): the session-level filters (referrer,
UTM, device, browser, OS, country, language, screen, hostname: the values of the session's first page view;
entry and exit page) compare with each session's facts, and a page filter (``path``) keeps the sessions
with a page view of that path. Every metric is then computed on the whole selected sessions, except page
views, which under a page filter count the matching page views only. A filtered read selects the closed
sessions of whole days from their per-day session rows (``dsess``: one condition per row) and groups the
fragments of the other hours by session; it never reads raw page views outside the dirty hours and the edges.
An event filter (``events``) keeps the sessions with an event of each name in the range (``esess``: the
sessions' events of the whole hours from their rows, migration 0110, the rest from raw events).
Parameters: ``account``, ``site``, ``start``, ``end`` (half-open), ``include_bots``, ``tz``, the filters
(NULL when unset: ``path``, ``want`` (a JSON array of the code-prefixed session values required),
``entry_page``, ``exit_page``, ``events``), ``event_names`` (the event names read: the filters' and a goal's),
``filtered`` and ``limit``.
The SQL is built once, at import, from the constants below; user input only ever arrives as parameters. The
per-endpoint SQL is in store/web_sql.py, the reads that run it in store/web_reads.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import msgspec

from .rollups.web_rollup import FRAGMENTS, PAGE_VIEW, SESSION_EVENTS

__all__ = ["COMMON", "RAW_FRAGMENTS", "SCREEN_BUCKETS", "WebQuery", "common", "daily"]

# Raw page views of the read (site and time come from the ranges in %(raw)s).
_RAW_FILTERS = f"source_account_id = %(account)s AND {PAGE_VIEW} AND (%(include_bots)s OR NOT is_bot)"
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
# The fragments of the read's raw page views (its edges and dirty hours), built on the fly.
RAW_FRAGMENTS = FRAGMENTS.format(source=_RAW_SOURCE, where=_RAW_FILTERS)
_FRAGMENT_COLUMNS = "hour, session_id, visitor, first_ts, last_ts, views, entry, exit, vals, cnts, evals"
_STORED = "np_analytics_web_sessions f WHERE f.source_account_id = %(account)s AND f.site = %(site)s"
# The page views of a fragment that count: all, or under a page filter those of its path.
_PV = "CASE WHEN %(path)s::text IS NULL THEN views ELSE coalesce(cnts[array_position(vals, 'p' || %(path)s)], 0) END"
# The sessions' events of the names an event filter or goal reads (``event_names``; none: no row, and no scan),
# from their rows (migration 0110) for the whole hours of the range that are not dirty, from raw events for the rest.
_EVENTS_RAW = SESSION_EVENTS.format(
    source=_RAW_SOURCE, where="%(event_names)s::text[] IS NOT NULL AND source_account_id = %(account)s "
                              "AND event = ANY(%(event_names)s::text[]) AND (%(include_bots)s OR NOT is_bot)")
_EVENTS = f"""
evs AS MATERIALIZED (
    SELECT session_id, event, sum(n) AS n FROM (
        SELECT s.session_id, s.event, s.n FROM np_analytics_web_session_events s
        WHERE %(event_names)s::text[] IS NOT NULL AND s.source_account_id = %(account)s AND s.site = %(site)s
          AND s.event = ANY(%(event_names)s::text[]) AND s.hour >= %(h1)s AND s.hour < %(h2)s
          AND s.hour <> ALL(%(dirty)s::timestamptz[]) AND (%(include_bots)s OR NOT s.is_bot)
        UNION ALL
        SELECT session_id, event, n FROM ({_EVENTS_RAW}) AS r
    ) AS x GROUP BY 1, 2
),
-- the sessions with an event of every name the event filters require
esess AS MATERIALIZED (
    SELECT session_id FROM evs WHERE event = ANY(%(events)s::text[]) GROUP BY 1
    HAVING count(DISTINCT event) = cardinality(%(events)s::text[])
),"""
# The parts of a read:
# * raw: fragments built from raw page views (edges, dirty hours);
# * ddays: the whole days of the range read from the per-day rows: no dirty hour, and no closed session
#   of theirs seen in raw page views (a late page view not aggregated yet would count it twice);
# * gen: the fragments read one by one: those of the other days of [h1, h2) (clean hours), the spanning
#   ones of the ddays, and raw;
# * daily: the per-day rows of the ddays.
COMMON = f"""
WITH {_EVENTS}
raw AS MATERIALIZED (
    SELECT {_FRAGMENT_COLUMNS} FROM ({RAW_FRAGMENTS}) AS raw
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
),
-- under a filter, the sessions that may match, from conditions on single fragments (a session's first
-- fragment holds its facts and entry page, some fragment its exit page, some its filtered page), so only those
-- are put together again below
cand AS MATERIALIZED (
    SELECT session_id FROM gen
    WHERE %(events)s::text[] IS NULL OR session_id IN (SELECT session_id FROM esess)
    GROUP BY session_id
    HAVING bool_or((%(want_list)s::text[] IS NULL OR evals @> %(want_list)s::text[])
                   AND (%(entry_page)s::text IS NULL OR entry = %(entry_page)s))
       AND bool_or(%(exit_page)s::text IS NULL OR exit = %(exit_page)s)
       AND bool_or(%(path)s::text IS NULL OR vals @> ARRAY['p' || %(path)s])
),
-- the sessions of gen: their facts, and their page views that count (pv: under a page filter, those of it)
sess AS MATERIALIZED (
    SELECT session_id, min(visitor) AS visitor,
           (array_agg(entry ORDER BY first_ts, entry COLLATE "C"))[1] AS entry,
           (array_agg(exit ORDER BY last_ts DESC, exit COLLATE "C" DESC))[1] AS exit,
           sum(views) AS views, sum({_PV}) AS pv,
           extract(epoch FROM max(last_ts) - min(first_ts))::float8 AS seconds,
           (array_agg(to_jsonb(evals) ORDER BY first_ts, entry COLLATE "C"))[1] AS attrs
    FROM gen WHERE NOT %(filtered)s OR session_id IN (SELECT session_id FROM cand)
    GROUP BY session_id
),
-- a filtered read: the ddays' closed sessions the filters select, one row each (migration 0109)
dsess AS MATERIALIZED (
    SELECT w.day, w.session_id, w.visitor, w.entry, w.exit, w.views, w.seconds, w.attrs,
           w.pages, w.pcnts, w.hpages, w.hcnts,
           CASE WHEN %(path)s::text IS NULL THEN w.views
                ELSE coalesce(w.pcnts[array_position(w.pages, %(path)s)], 0) END AS pv
    FROM np_analytics_web_day_sessions w
    WHERE %(filtered)s AND w.source_account_id = %(account)s AND w.site = %(site)s AND w.day >= %(d1_day)s
      AND w.day < %(d2_day)s AND w.day IN (SELECT day FROM ddays) AND (%(include_bots)s OR NOT w.is_bot)
      AND (%(want)s::jsonb IS NULL OR w.attrs @> %(want)s::jsonb)
      AND (%(entry_page)s::text IS NULL OR w.entry = %(entry_page)s)
      AND (%(exit_page)s::text IS NULL OR w.exit = %(exit_page)s)
      AND (%(path)s::text IS NULL OR w.pages @> ARRAY[%(path)s::text])
      AND (%(events)s::text[] IS NULL OR w.session_id IN (SELECT session_id FROM esess))
),
-- the sessions of gen the filters select
gchosen AS MATERIALIZED (
    SELECT session_id, visitor, entry, exit, views, pv, seconds, attrs FROM sess
    WHERE (%(want)s::jsonb IS NULL OR attrs @> %(want)s::jsonb)
      AND (%(entry_page)s::text IS NULL OR entry = %(entry_page)s)
      AND (%(exit_page)s::text IS NULL OR exit = %(exit_page)s)
      AND pv > 0
),
-- the sessions the filters select: of gen, and (filtered) of the ddays
chosen AS MATERIALIZED (
    SELECT session_id, visitor, entry, exit, views, pv, seconds, attrs FROM gchosen
    UNION ALL
    SELECT session_id, visitor, entry, exit, views, pv, seconds, attrs FROM dsess
),
-- their fragments (gen's sessions are never among the ddays' closed ones), with the page views that count
sel AS MATERIALIZED (
    SELECT hour, session_id, vals, cnts, views, {_PV} AS pv FROM gen
    WHERE NOT %(filtered)s OR session_id IN (SELECT session_id FROM gchosen)
)"""



_ARRAYS = "           w.pages, w.pcnts, w.hpages, w.hcnts,\n"
assert COMMON.count(_ARRAYS) == 1


def common(pages: bool = False, hours: bool = False) -> str:
    """COMMON whose per-day session rows (``dsess``, materialized: every column is copied for each selected
    session) carry only the arrays the read uses: ``pages``/``pcnts`` (pages, page goals) and ``hpages``/``hcnts``
    (hours of the day)."""
    kept = [name for name, wanted in (("w.pages, w.pcnts", pages), ("w.hpages, w.hcnts", hours)) if wanted]
    return COMMON.replace(_ARRAYS, f"           {', '.join(kept)},\n" if kept else "")


def daily(code: str) -> str:
    """The per-day rows of one code over the ddays (an unfiltered read's; a filtered one reads dsess)."""
    return f"""(
    SELECT w.day, w.value, w.views, w.sessions, w.bounces, w.seconds, w.sviews FROM np_analytics_web_daily w
    WHERE NOT %(filtered)s AND w.source_account_id = %(account)s AND w.site = %(site)s AND w.code = '{code}'
      AND w.day >= %(d1_day)s AND w.day < %(d2_day)s AND w.day IN (SELECT day FROM ddays)
      AND (%(include_bots)s OR NOT w.is_bot))"""


# Screen width buckets (the common CSS breakpoints): label, lowest width, highest width (None: no limit).
SCREEN_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("<576", 0, 575), ("576-767", 576, 767), ("768-991", 768, 991), ("992-1199", 992, 1199), (">=1200", 1200, None),
)
DIRECT = "Direct / None"  # the referrer of a session without one (its code alone: 'r')

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Session-level filter -> its code in the fragments' values (store/rollups/web_rollup.py DIMENSIONS).
SESSION_CODES = {"referrer": "r", "device": "d", "language": "l", "browser": "b", "os": "o", "country": "c",
                 "hostname": "h", "screen": "w", "utm_source": "S", "utm_medium": "M", "utm_campaign": "C",
                 "utm_term": "T", "utm_content": "N"}


class WebQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The parameters shared by every web-analytics read. ``session`` holds the session-level filters as
    (name of SESSION_CODES, value) pairs, all required (referrer "Direct / None": no referrer; screen: the
    index of its bucket); ``path`` is the page filter; ``events`` the event filters (the sessions with an event of
    each name)."""

    site: str
    start: datetime
    end: datetime
    include_bots: bool = False
    path: str | None = None
    limit: int = 10
    account: str = "primary"
    session: tuple[tuple[str, str], ...] = ()
    entry_page: str | None = None
    exit_page: str | None = None
    events: tuple[str, ...] = ()
    tz: str = "UTC"

    @property
    def filtered(self) -> bool:
        pages = (self.path, self.entry_page, self.exit_page)
        return bool(self.session or self.events) or any(v is not None for v in pages)

    def value(self, name: str) -> str | None:
        return next((v for k, v in self.session if k == name), None)

    def params(self) -> dict[str, Any]:
        want = [SESSION_CODES[k] + ("" if k == "referrer" and v == DIRECT else v) for k, v in self.session]
        return {"account": self.account, "site": self.site, "start": self.start, "end": self.end,
                "include_bots": self.include_bots, "path": self.path, "want": json.dumps(want) if want else None,
                "want_list": want or None,
                "events": list(self.events) or None, "event_names": list(self.events) or None,
                "entry_page": self.entry_page, "exit_page": self.exit_page, "filtered": self.filtered,
                "tz": self.tz, "limit": self.limit}
