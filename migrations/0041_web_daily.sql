-- Web statistics per site and UTC day, so a read over whole days sums a few rows per day and value
-- instead of grouping every session fragment (store/web_daily.py):
-- * np_analytics_web_daily: per (site, day, bot flag, code, value) the page views and the sessions of
--   the day's "closed" sessions (those whose fragments all lie in that day and share one bot flag),
--   with per code: a dimension value (the codes of store/web_rollup.py) -> page views, sessions;
--   'H' hour of the day -> page views, sessions; 'e' entry page -> sessions, bounces; 'x' exit page
--   -> sessions; '*' '' -> every page view of the day
--   (sessionless ones too), sessions, bounces, seconds (sum of durations), sviews (their page views).
-- * np_analytics_web_day_stats: per (site, day, bot flag) the distinct visitors of the day's closed sessions
--   and sessionless page views (raw ids, so identity links made later apply when read; and their sketch,
--   merged over days when the account has no identity link) and the durations of its closed sessions.
-- * np_analytics_web_sessions.spans: the fragment's session has fragments in more than one UTC day or
--   with both bot flags; such fragments are read one by one, never summed per day.
-- Kept by the aggregator from the claimed dirty hours (their days are rebuilt from the fragments).
-- depends: 0040_web_sessions

ALTER TABLE np_analytics_web_sessions ADD COLUMN spans boolean NOT NULL DEFAULT false;
-- the aggregator: fragments of claimed hours; the sessions of those fragments
CREATE INDEX np_analytics_web_sessions_hour_idx ON np_analytics_web_sessions (source_account_id, hour);
CREATE INDEX np_analytics_web_sessions_session_idx ON np_analytics_web_sessions (source_account_id, site, session_id)
    WHERE session_id IS NOT NULL;
-- reads: the spanning fragments of a range
CREATE INDEX np_analytics_web_sessions_spans_idx ON np_analytics_web_sessions (source_account_id, site, hour)
    WHERE spans;

CREATE TABLE np_analytics_web_daily (
    source_account_id text    NOT NULL DEFAULT 'primary',
    site              text    NOT NULL,
    day               date    NOT NULL,
    is_bot            boolean NOT NULL,
    code              text    NOT NULL,
    value             text,  -- NULL: a session's entry or exit page view without a path
    views             bigint  NOT NULL DEFAULT 0,
    sessions          bigint  NOT NULL DEFAULT 0,
    bounces           bigint  NOT NULL DEFAULT 0,
    seconds           float8  NOT NULL DEFAULT 0,
    sviews            bigint  NOT NULL DEFAULT 0
);
CREATE INDEX np_analytics_web_daily_site_day_idx ON np_analytics_web_daily (source_account_id, site, day, code);
CREATE INDEX np_analytics_web_daily_day_idx ON np_analytics_web_daily (source_account_id, day);

CREATE TABLE np_analytics_web_day_stats (
    source_account_id text       NOT NULL DEFAULT 'primary',
    site              text       NOT NULL,
    day               date       NOT NULL,
    is_bot            boolean    NOT NULL,
    visitors          text[]     NOT NULL,  -- the distinct visitors (raw ids, sorted: persons are resolved when read)
    sketch            bytea      NOT NULL,  -- a HyperLogLog sketch of those ids (store/hll.py: 2^14 registers)
    ms                bigint[]   NOT NULL,  -- the durations of the day's closed sessions, in milliseconds, ascending
    n                 integer[]  NOT NULL,  -- the sessions of each duration
    PRIMARY KEY (source_account_id, site, day, is_bot)
);
CREATE INDEX np_analytics_web_day_stats_day_idx ON np_analytics_web_day_stats (source_account_id, day);

-- Fragments stored before this migration: their hours are aggregated again (spans, days, sketches).
INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
SELECT DISTINCT source_account_id, hour FROM np_analytics_web_sessions
ON CONFLICT (source_account_id, hour) DO NOTHING;
