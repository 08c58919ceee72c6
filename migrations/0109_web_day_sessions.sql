-- Filtered web reads at the speed of unfiltered ones (issue 24 item 2): per UTC day, one row per closed
-- session (all its fragments in that day, one bot flag) with what a filter selects it by and what the reads
-- count on it: its first page view's values (attrs, as the fragments' evals: store/rollups/web_rollup.py), entry
-- and exit page, the pages it viewed with their page views (pages, pcnts, sorted by path), page views,
-- duration and visitor. A filtered read selects the whole days' sessions from these rows with one condition per
-- row (no grouping of fragments) and groups only the fragments of the other hours (store/web.py).
-- Kept by the aggregator with the other per-day rows (store/rollups/web_daily.py). Every hour with page views is
-- marked dirty so the days are rebuilt (reads take those hours from raw page views meanwhile, exact).
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_web_day_sessions (
    source_account_id text    NOT NULL DEFAULT 'primary',
    site              text    NOT NULL,
    day               date    NOT NULL,
    is_bot            boolean NOT NULL,
    session_id        text    NOT NULL,
    visitor           text,
    entry             text,
    exit              text,
    views             integer NOT NULL,
    seconds           float8  NOT NULL,
    attrs             jsonb   NOT NULL,
    pages             text[]  NOT NULL,
    pcnts             integer[] NOT NULL,
    hpages            text[]  NOT NULL,  -- per (UTC hour of the day, path): two digits of the hour, then the path
    hcnts             integer[] NOT NULL  -- the page views of each hpages entry
);
CREATE INDEX np_analytics_web_day_sessions_site_day_idx ON np_analytics_web_day_sessions (source_account_id, site, day);
CREATE INDEX np_analytics_web_day_sessions_day_idx ON np_analytics_web_day_sessions (source_account_id, day);

INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
SELECT DISTINCT source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
FROM np_analytics_events
WHERE site IS NOT NULL AND event IN ('$pageview', '$screen')
ON CONFLICT (source_account_id, hour) DO NOTHING;
