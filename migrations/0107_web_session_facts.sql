-- Session-scoped web filters (docs/web-metrics.md): a filter selects whole sessions, so a fragment keeps the
-- values of its first page view (evals: every dimension code but 'p', the site's own domain left out of 'r',
-- a bare 'r' when that page view had no other referrer), from which a read takes each session's referrer,
-- UTM, device, browser, OS, country, language, screen and hostname without reading raw page views; the set
-- of pages a session viewed is already in vals ('p' codes). Page views sent without a session now belong to
-- the session of their visitor's UTC day (store/rollups/web_rollup.py SESSION_KEY), and the per-day rows of
-- the session-level codes count sessions by their first page view's value (store/rollups/web_daily.py).
-- Every hour with page views is marked dirty: the aggregator rebuilds its fragments and days (reads take
-- those hours from raw page views until then, so every answer stays exact meanwhile).
-- depends: 0101_events_indexes

ALTER TABLE np_analytics_web_sessions ADD COLUMN evals text[] NOT NULL DEFAULT '{}';

INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
SELECT DISTINCT source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
FROM np_analytics_events
WHERE site IS NOT NULL AND event IN ('$pageview', '$screen')
ON CONFLICT (source_account_id, hour) DO NOTHING;
