-- Exactly-once without a unique index entry per stored event: the message ids the drain stored in the last
-- ANALYTICS_DEDUPE_WINDOW (default 48 h), in one small table written by the drain in the same statement as the
-- events (store/events.py: INSERT ... ON CONFLICT DO NOTHING RETURNING feeds the events insert), pruned in
-- batches by the leader's maintenance job (store/message_ids.py). It replaces the unique (message_id, ts) index
-- of every partition (54 bytes per stored event at 1M): a redelivered stream entry or a client retry inside the
-- window is stored once, a retry past it is stored again (as Segment: message-id dedupe within a look-back).
-- Keyed per account, so one account's write key cannot suppress another account's message ids. Not partitioned:
-- the key has no time in it. received_at is the drain's commit-side clock (now()); the BRIN index lets the
-- prune find the old rows without a B-tree entry per id.
-- depends: 0070_webhooks

CREATE TABLE np_analytics_message_ids (
    source_account_id text        NOT NULL DEFAULT 'primary',
    message_id        uuid        NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, message_id)
);
CREATE INDEX np_analytics_message_ids_received_idx ON np_analytics_message_ids USING brin (received_at);

-- The ids of the events stored recently, so an entry committed just before this migration but not yet
-- acknowledged (redelivered after the restart) is still stored once: events of the last 2 days by event time,
-- kept a full window from now. (An event with an older client time drained in the minutes before the upgrade
-- is not covered; the unique index below is dropped in the same transaction.)
INSERT INTO np_analytics_message_ids (source_account_id, message_id)
SELECT DISTINCT source_account_id, message_id FROM np_analytics_events WHERE ts >= now() - interval '2 days'
ON CONFLICT DO NOTHING;

DROP INDEX np_analytics_events_message_idx;
