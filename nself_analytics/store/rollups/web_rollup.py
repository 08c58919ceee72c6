"""Web session fragments: page views folded into one row per (site, session, UTC hour, bot flag).

A fragment (np_analytics_web_sessions, migration 0040) holds what one web session did in one hour: its
first and last page view (time, path), its page views, its visitor and, per dimension value, the page
views that carried it (``vals``: the value prefixed by its one-letter code, see ``DIMENSIONS``; ``cnts``:
the page views), and the values of its first page view (``evals``, migration 0107). A page view without
a session belongs to the session of its visitor's UTC day (``SESSION_KEY``).

The same SQL (:data:`FRAGMENTS`) builds fragments for the aggregator (the claimed dirty hours of every
site, stored) and for reads (the hours not aggregated yet and the partial hours at a range's edges, on
the fly), so stored and on-the-fly fragments agree by construction.
"""

from __future__ import annotations

__all__ = [
    "DIMENSIONS", "FRAGMENTS", "FRAGMENT_COLUMNS", "OWN_DOMAIN", "PAGE_VIEW", "REFERRER_DOMAIN", "SCREEN_BUCKET",
    "SESSION_EVENTS", "SESSION_EVENT_COLUMNS", "SESSION_KEY",
]

# What a page view is: the one definition every web read and the rollup use. Beacon hits, page messages
# (/page, /v1/page, the SDKs' page calls) and screen messages (/v1/screen) alike; their site and path come
# from the message's URL (ingest/normalize.py) and their bot flag from the same rules (ingest/service.py).
PAGE_VIEW = "event IN ('$pageview', '$screen')"

# The host of a referring URL (text between "scheme://" and the first / ? or #, less user info and
# port), lower case, without a leading "www.". String functions: a capturing regex costs twice as much.
_AFTER_SCHEME = "split_part(split_part(split_part(split_part(referrer, '://', 2), '/', 1), '?', 1), '#', 1)"
REFERRER_DOMAIN = (
    "CASE WHEN referrer ~ '^[A-Za-z][A-Za-z0-9+.-]*://' THEN "
    f"regexp_replace(lower(split_part(split_part({_AFTER_SCHEME}, '@', -1), ':', 1)), '^www\\.', '') END"
)
# The index of the screen width bucket (store.web.SCREEN_BUCKETS), as text.
SCREEN_BUCKET = (
    "(CASE WHEN screen_width < 576 THEN 0 WHEN screen_width < 768 THEN 1 WHEN screen_width < 992 THEN 2 "
    "WHEN screen_width < 1200 THEN 3 WHEN screen_width >= 1200 THEN 4 END)::text"
)

# One-letter code -> the SQL of a page view's value. 'p' (the path) comes first: every page view has
# exactly one 'p' value (possibly NULL), so a fragment's page views are its 'p' counts.
DIMENSIONS: dict[str, str] = {
    "p": "path",
    "r": REFERRER_DOMAIN,
    "d": "device",
    "l": "language",
    "b": "browser",
    "o": "os",
    "c": "country",
    "h": "coalesce(properties->>'hostname', site)",
    "w": SCREEN_BUCKET,
    "S": "properties->>'utm_source'",
    "M": "properties->>'utm_medium'",
    "C": "properties->>'utm_campaign'",
    "T": "properties->>'utm_term'",
    "N": "properties->>'utm_content'",
}
_VALUES = ", ".join(f"('{code}', {sql})" for code, sql in DIMENSIONS.items())

# The session a page view belongs to: its session id, or for one sent without (stored before the ingest
# service derived one the beacon's way, ingest/hits.py derived_session) the visitor's identity of that UTC
# day: "~" + user id, anonymous id or IP hash + "~" + the day.
SESSION_KEY = (
    "coalesce(session_id, '~' || coalesce(user_id, anonymous_id, ip_hash, '') || '~' "
    "|| to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'))"
)
# The site's own domain: a referrer from it is no referrer ("Direct / None" when it is the session's first).
OWN_DOMAIN = r"regexp_replace(site, '^www\.', '')"

# Fragments of the page views selected by {where} (over np_analytics_events, unaliased) and {source}
# (the FROM clause). Two steps: per (fragment, dimension value) its page views, first and last time;
# then per fragment. The entry is the path of the first page view (ties in time: the smallest path, then
# the message id), the exit that of the last (ties: the largest), as the raw reads defined them.
# ``evals`` are the first page view's values of every code but 'p' (the session-level facts a filter
# selects sessions by: store/web.py), its referrer unless it is the site's own domain, and a bare 'r'
# when it has no other referrer (the session's referrer is then "Direct / None").
FRAGMENTS = f"""
SELECT source_account_id, site, hour, session_id, is_bot, min(ident) AS visitor, min(t0) AS first_ts,
       max(t1) AS last_ts, sum(n) FILTER (WHERE code = 'p')::int AS views,
       (array_agg(value ORDER BY t0, value COLLATE "C") FILTER (WHERE code = 'p'))[1] AS entry,
       (array_agg(value ORDER BY t1 DESC, value COLLATE "C" DESC) FILTER (WHERE code = 'p'))[1] AS exit,
       coalesce(array_agg(code || value) FILTER (WHERE value <> ''), '{{{{}}}}') AS vals,
       coalesce(array_agg(n) FILTER (WHERE value <> ''), '{{{{}}}}') AS cnts,
       coalesce(array_agg(code || value ORDER BY code || value COLLATE "C")
                FILTER (WHERE first AND code <> 'p' AND value <> '' AND NOT (code = 'r' AND value = own)),
                '{{{{}}}}')
       || CASE WHEN bool_or(first AND code = 'r' AND value <> '' AND value <> own) THEN '{{{{}}}}'::text[]
               ELSE ARRAY['r'] END AS evals
FROM (
    SELECT source_account_id, site, hour, sid AS session_id, is_bot, d.code, d.value, count(*)::int AS n,
           min(ts) AS t0, max(ts) AS t1, min(coalesce(user_id, anonymous_id, ip_hash, sid)) AS ident,
           bool_or(first) AS first, min({OWN_DOMAIN}) AS own
    FROM (
        SELECT *, row_number() OVER (PARTITION BY source_account_id, site, hour, sid, is_bot
                                     ORDER BY ts, path COLLATE "C", message_id) = 1 AS first
        FROM (SELECT *, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, {SESSION_KEY} AS sid
              FROM {{source}} WHERE {{where}}) AS selected
    ) AS e
    CROSS JOIN LATERAL (VALUES {_VALUES}) AS d(code, value)
    WHERE d.code = 'p' OR d.value IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7
) AS per_value
GROUP BY source_account_id, site, hour, session_id, is_bot
"""

FRAGMENT_COLUMNS = (
    "source_account_id, site, hour, session_id, is_bot, visitor, first_ts, last_ts, views, entry, exit, vals, cnts, "
    "evals"
)

# The events other than page views of the rows selected by {where} (over np_analytics_events, unaliased) and
# {source}, per (site, UTC hour, name, session, bot flag) with their count and visitor (migration 0110): what an
# event filter selects sessions by (store/web.py), for the aggregator (stored) and for reads (raw hours, on the fly).
SESSION_EVENTS = f"""
SELECT source_account_id, site, event, hour, sid AS session_id, is_bot,
       min(coalesce(user_id, anonymous_id, ip_hash, sid)) AS visitor, count(*)::int AS n
FROM (SELECT *, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, {SESSION_KEY} AS sid
      FROM {{source}} WHERE {{where}} AND NOT ({PAGE_VIEW})) AS selected
GROUP BY 1, 2, 3, 4, 5, 6
"""
SESSION_EVENT_COLUMNS = "source_account_id, site, event, hour, session_id, is_bot, visitor, n"
