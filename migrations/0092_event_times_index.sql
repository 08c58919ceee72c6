-- np_analytics_event_times without its primary key: one non-unique (account, event, hour) index serves the
-- reads (the names asked for, a range of hours) and the aggregator's replacement of a claimed hour's rows.
-- B-tree de-duplication stores each (account, event, hour) once per leaf page with a 6-byte entry per row, where
-- the primary key (with the distinct id and chunk) cost ~69 bytes a row: about 138 -> 90 bytes per event on the
-- bench's 1M events. The aggregator replaces rows under a transaction-level advisory lock (store/event_times.py).
-- depends: 0091_event_times_default

ALTER TABLE np_analytics_event_times DROP CONSTRAINT np_analytics_event_times_pkey;
CREATE INDEX np_analytics_event_times_event_hour_idx ON np_analytics_event_times (source_account_id, event, hour);
