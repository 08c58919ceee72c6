-- The (source_account_id, event, ts) index without the columns 0003 added for funnels and sessions (those now
-- read compact per-person and per-session structures, migration 0090): a plain key again. Measured on the bench's
-- 1M events: 106 bytes per event (grown by inserts) -> ~60. Keeping is_bot in it (72 grown) bought nothing
-- measurable: the explorer's event-name list over 30 days is planned as a sequential scan of the range either way
-- (305 ms at 1M, vacuumed), and the property sample reads each row's properties from the heap anyway.
-- depends: 0081_person_btree

CREATE INDEX np_analytics_events_event_ts_idx ON np_analytics_events (source_account_id, event, ts);
DROP INDEX IF EXISTS np_analytics_events_event_ts_covering_idx;
