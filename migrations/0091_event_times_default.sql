-- Every table's source_account_id defaults to 'primary' (tests/test_foundation.py), as 0090 left out.
-- depends: 0090_event_times

ALTER TABLE np_analytics_event_times ALTER COLUMN source_account_id SET DEFAULT 'primary';
