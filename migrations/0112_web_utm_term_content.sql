-- The web rollup now keeps utm_term and utm_content (codes T and N, store/web_rollup.py) as it keeps utm_source,
-- utm_medium and utm_campaign, so their reports read the rollup instead of raw page views. The hours whose page
-- views carry either are marked dirty: the aggregator rebuilds their fragments and days with the new codes (reads
-- take those hours from raw page views until then, so every answer stays exact meanwhile).
-- depends: 0041_web_daily

INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
SELECT DISTINCT source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
FROM np_analytics_events
WHERE site IS NOT NULL AND event IN ('$pageview', '$screen') AND (properties ? 'utm_term' OR properties ? 'utm_content')
ON CONFLICT (source_account_id, hour) DO NOTHING;
