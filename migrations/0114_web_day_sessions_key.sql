-- The aggregator replaces the per-day session rows of the sessions of the hours it claims (issue 27 item 3:
-- store/rollups/web_hours.py), looking each one up by session id: a hash index on it (about 20 bytes a row; a
-- B-tree on (site, day, session_id) was 140 bytes a row, as unique keys get no B-tree de-duplication, against a
-- few bytes for the (site, day) index kept for reads). No backfill; the drain never writes this table.
-- depends: 0101_events_indexes

CREATE INDEX np_analytics_web_day_sessions_session_idx ON np_analytics_web_day_sessions USING hash (session_id);
