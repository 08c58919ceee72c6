-- Exactly once for the drain without an index entry per event (issue 27 item 1): a drainer that stores a batch it
-- read fresh from the Redis stream (XREADGROUP ">": a run of consecutive entries no other consumer was given)
-- records the run of stream entry ids it stored, as one range, in the same transaction as its events. A redelivered
-- entry (the drainer's own pending entries after a failure, or entries reclaimed from a stopped drainer) is stored
-- only if it claims its own one-entry range here first (ON CONFLICT DO NOTHING against the exclusion constraint): an
-- entry inside a committed range was stored already, and one inside the range of a transaction still running waits
-- for it. A drainer whose entries were reclaimed meanwhile (a stale owner) fails on the constraint and commits
-- nothing. Keys: a stream id "<ms>-<seq>" as ms * 1000000 + seq (store/drain_ranges.py). Rows of entries no longer
-- in the stream are deleted by the drain (they cannot be delivered again).
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_drain_ranges (
    entries   int8range   NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT np_analytics_drain_ranges_disjoint EXCLUDE USING gist (entries WITH &&)
);
