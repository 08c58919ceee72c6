-- Per (account, user, UTC day): the distinct event names a user sent that day (bots left out).
-- Maintained by the aggregator from the dirty hours (store/aggregates.py), like the aggregates:
-- days already pruned from the raw log keep their rows. Retention reads it instead of raw events
-- when nothing before the query's horizon is dirty (store/retention.py).
-- depends: 0001_initial

CREATE TABLE np_analytics_activity (
    source_account_id text NOT NULL DEFAULT 'primary',
    day               date NOT NULL,
    u                 text COLLATE "C" NOT NULL,
    events            text[] NOT NULL,
    PRIMARY KEY (source_account_id, day, u)
);

-- Backfill from the events already stored (their hours are not dirty any more).
INSERT INTO np_analytics_activity (source_account_id, day, u, events)
SELECT e.source_account_id, (e.ts AT TIME ZONE 'UTC')::date, coalesce(e.user_id, e.anonymous_id) COLLATE "C",
       array_agg(DISTINCT e.event ORDER BY e.event)
FROM np_analytics_events e
WHERE NOT e.is_bot AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
GROUP BY 1, 2, 3;
