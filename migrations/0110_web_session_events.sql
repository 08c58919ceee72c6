-- Goal and custom-event filters on the web reads (issue 24, docs/web-metrics.md): a filter `event=<name>` (or
-- `goal=event:<name>`) selects the sessions that include an event of that name, as a page filter selects those
-- with a page view of its path. Per (site, UTC hour, event name, session, bot flag) the aggregator keeps how many
-- such events the session had (the site's events other than page views; the session as the fragments key it:
-- store/rollups/web_rollup.py SESSION_KEY) and its visitor (erasure deletes by it), so a filtered read finds the
-- sessions of an event over 30 days by index instead of scanning raw events (store/web.py). Every hour with such
-- events is marked dirty: the aggregator fills its rows (reads take those hours from raw events meanwhile).
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_web_session_events (
    source_account_id text        NOT NULL DEFAULT 'primary',
    site              text        NOT NULL,
    event             text        NOT NULL,
    hour              timestamptz NOT NULL,
    session_id        text        NOT NULL,
    is_bot            boolean     NOT NULL,
    visitor           text,
    n                 integer     NOT NULL,
    PRIMARY KEY (source_account_id, site, event, hour, session_id, is_bot)
);
CREATE INDEX np_analytics_web_session_events_hour_idx ON np_analytics_web_session_events (source_account_id, hour);

INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
SELECT DISTINCT source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
FROM np_analytics_events
WHERE site IS NOT NULL AND event NOT IN ('$pageview', '$screen')
ON CONFLICT (source_account_id, hour) DO NOTHING;
