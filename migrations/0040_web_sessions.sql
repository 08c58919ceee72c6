-- Web statistics without reading raw page views: one row per (site, web session, UTC hour, bot flag),
-- a "session fragment" holding what that session did in that hour: its first and last page views
-- (time and path), the page views, its visitor (the smallest identity it showed) and, per dimension
-- value (path, referrer domain, device, language, browser, OS, country, hostname, screen width bucket,
-- UTM source/medium/campaign), the number of page views that carried it. Page views sent without a
-- session make one fragment per visitor and hour (session_id NULL).
-- Kept by the aggregator from the dirty hours (store/web_rollup.py), like the aggregates: hours
-- already pruned from the raw log keep their rows. Every /api/* web read groups the fragments of its
-- range by session (store/web.py); only hours still dirty and the partial hours at the range's edges
-- are read from raw page views. A fragment is local to its hour, so an hour is rebuilt from that hour's
-- events alone, and a session spanning hours is put together again at read time (exact).
-- depends: 0003_event_ts_covering

CREATE TABLE np_analytics_web_sessions (
    source_account_id text        NOT NULL DEFAULT 'primary',
    site              text        NOT NULL,
    hour              timestamptz NOT NULL,
    session_id        text,
    is_bot            boolean     NOT NULL,
    visitor           text,
    first_ts          timestamptz NOT NULL,
    last_ts           timestamptz NOT NULL,
    views             integer     NOT NULL,
    entry             text,
    exit              text,
    vals              text[]      NOT NULL,  -- dimension values, each prefixed by its one-letter code
    cnts              integer[]   NOT NULL   -- page views per value of vals
);
CREATE INDEX np_analytics_web_sessions_site_hour_idx ON np_analytics_web_sessions (source_account_id, site, hour);

-- Events stored before this migration: their hours are marked dirty again, so the aggregator builds
-- their fragments (reads go to raw events for those hours meanwhile).
INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
SELECT DISTINCT source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
FROM np_analytics_events WHERE site IS NOT NULL AND event = '$pageview'
ON CONFLICT (source_account_id, hour) DO NOTHING;
