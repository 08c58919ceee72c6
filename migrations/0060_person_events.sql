-- The people view reads one person's events (GET /users/{id}: counts, first/last seen, recent events newest
-- first) by distinct id: without this index that is a scan of every partition. Keyed as the person map is
-- (the raw distinct id, user_id else anonymous_id), newest first within an id.
-- depends: 0003_event_ts_covering

CREATE INDEX np_analytics_events_distinct_ts_idx
    ON np_analytics_events (source_account_id, (coalesce(user_id, anonymous_id)), ts)
    WHERE coalesce(user_id, anonymous_id) IS NOT NULL;
