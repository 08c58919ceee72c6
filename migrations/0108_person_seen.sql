-- First and last activity per distinct id (issue 24): the people list showed the time of the identify call
-- as a user's first and last seen and sorted by it. np_analytics_seen keeps, per (account, distinct id), the
-- time of its first and last event (bots left out), widened by the aggregator from the claimed hours' raw
-- events (store/rollups/aggregates.py); the list resolves each user's person when read (store/people.py), so
-- the anonymous activity before an identify counts, whenever the link arrives.
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_seen (
    source_account_id text        NOT NULL DEFAULT 'primary',
    u                 text COLLATE "C" NOT NULL,
    first_ts          timestamptz NOT NULL,
    last_ts           timestamptz NOT NULL,
    PRIMARY KEY (source_account_id, u)
);

INSERT INTO np_analytics_seen (source_account_id, u, first_ts, last_ts)
SELECT source_account_id, coalesce(user_id, anonymous_id) COLLATE "C", min(ts), max(ts)
FROM np_analytics_events
WHERE NOT is_bot AND coalesce(user_id, anonymous_id) IS NOT NULL
GROUP BY 1, 2;
