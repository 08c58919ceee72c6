-- The aggregator replaces the per-day session rows of the sessions of the hours it claims (issue 27 item 3:
-- store/rollups/web_hours.py), looking each one up by (site, day, session): the (site, day) index becomes
-- (site, day, session_id), which filtered reads use as before (a range of days of a site), and the (account, day)
-- index goes (a whole day's rows, for erasure's rebuild of a day, are found by skip scan over the sites of this
-- index). No backfill; the drain never writes this table, so ingest does not wait for the build.
-- depends: 0101_events_indexes

CREATE INDEX np_analytics_web_day_sessions_key_idx
    ON np_analytics_web_day_sessions (source_account_id, site, day, session_id);
DROP INDEX np_analytics_web_day_sessions_site_day_idx;
DROP INDEX np_analytics_web_day_sessions_day_idx;
