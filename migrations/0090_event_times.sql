-- Per (account, event name, UTC hour, distinct id): the times of the events of that name the id sent
-- in that hour (bots and events without a distinct id left out), sorted; at most 4096 per row (a
-- busier hour continues in the next chunk). Funnels and sessions read it instead of raw events
-- (store/event_times.py): only the rows of the names they ask for, with the exact times, and the
-- person of each id applied when read. Kept by the aggregator from the claimed dirty hours (rows of
-- an hour are replaced from its raw events, which only ever grow); hours still dirty are read raw.
-- depends: 0070_webhooks

CREATE TABLE np_analytics_event_times (
    source_account_id text NOT NULL,
    event             text NOT NULL,
    hour              timestamptz NOT NULL,
    u                 text COLLATE "C" NOT NULL,
    chunk             integer NOT NULL DEFAULT 0,
    ts                timestamptz[] NOT NULL,
    PRIMARY KEY (source_account_id, event, hour, u, chunk)
);

-- Backfill from the events already stored (their hours are not dirty any more).
INSERT INTO np_analytics_event_times (source_account_id, event, hour, u, chunk, ts)
SELECT source_account_id, event, hour, u, (n - 1) / 4096, array_agg(ts ORDER BY ts)
FROM (
    SELECT e.source_account_id, e.event, date_trunc('hour', e.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
           coalesce(e.user_id, e.anonymous_id) COLLATE "C" AS u, e.ts,
           row_number() OVER (PARTITION BY e.source_account_id, e.event,
                              date_trunc('hour', e.ts AT TIME ZONE 'UTC'), coalesce(e.user_id, e.anonymous_id)
                              ORDER BY e.ts) AS n
    FROM np_analytics_events e
    WHERE NOT e.is_bot AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
) AS x
GROUP BY 1, 2, 3, 4, 5;
