-- The dashboard's heat map (GET /api/peak-hours/week) without a filter reads one row per site and UTC hour instead
-- of every session of its range (issue 27 item 3: answers that do not grow with the traffic). Per (site, UTC hour):
-- the page views, the sessions with a page view in the hour and their distinct visitors (persons, as the identity
-- map stood when the hour was aggregated), without bots and with them (a session with page views of both bot flags
-- in one hour counts once). Kept by the aggregator from the fragments of the dirty hours
-- (store/rollups/web_hour_stats.py); erasure rebuilds the rows of the days whose fragments it deleted. Filled here
-- from the fragments already stored (the hours still dirty are rebuilt by the aggregator anyway).
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_web_hour_stats (
    source_account_id text        NOT NULL DEFAULT 'primary',
    site              text        NOT NULL,
    hour              timestamptz NOT NULL,
    views             integer     NOT NULL,  -- without bots
    sessions          integer     NOT NULL,
    visitors          integer     NOT NULL,
    all_views         integer     NOT NULL,  -- bots included
    all_sessions      integer     NOT NULL,
    all_visitors      integer     NOT NULL,
    PRIMARY KEY (source_account_id, site, hour)
);
-- the aggregator and erasure replace the rows of hours of every site
CREATE INDEX np_analytics_web_hour_stats_hour_idx ON np_analytics_web_hour_stats (source_account_id, hour);

INSERT INTO np_analytics_web_hour_stats (source_account_id, site, hour, views, sessions, visitors, all_views,
                                         all_sessions, all_visitors)
SELECT f.source_account_id, f.site, f.hour,
       coalesce(sum(f.views) FILTER (WHERE NOT f.is_bot), 0),
       count(DISTINCT f.session_id) FILTER (WHERE NOT f.is_bot),
       count(DISTINCT coalesce(pm.person_id, f.visitor COLLATE "C")) FILTER (WHERE NOT f.is_bot),
       sum(f.views), count(DISTINCT f.session_id), count(DISTINCT coalesce(pm.person_id, f.visitor COLLATE "C"))
FROM np_analytics_web_sessions f
LEFT JOIN np_analytics_person_map pm ON pm.source_account_id = f.source_account_id
     AND pm.distinct_id = f.visitor COLLATE "C"
GROUP BY 1, 2, 3;
