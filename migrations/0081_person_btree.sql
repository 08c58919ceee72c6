-- The people view's index (0061: a hash index on the distinct id, 45-48 bytes per event at 1M) as a B-tree on the
-- distinct id alone: B-tree de-duplication (PostgreSQL 13+) stores a key once per leaf page with a 6-byte entry per
-- row after it, and a person's events of one day share a partition, so the index costs 13 bytes per event on the
-- bench's 1M events (built; a few more grown by inserts). The person page looks ids up by equality only
-- (= ANY of a person's ids, then sorts that person's few events by time; the account is checked on the rows), as
-- before. Partial: rows with no distinct id (cookieless page views) are never looked up by it.
-- depends: 0080_message_ids

DROP INDEX IF EXISTS np_analytics_events_distinct_hash_idx;
CREATE INDEX np_analytics_events_distinct_idx
    ON np_analytics_events ((coalesce(user_id, anonymous_id)))
    WHERE coalesce(user_id, anonymous_id) IS NOT NULL;
