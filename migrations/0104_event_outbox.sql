-- The event outbox (issues 21 and 22): the drain's statement writes one narrow row per newly stored event, and the
-- facts task (pipeline/facts.py) reads them in order, fans the events out to their webhooks (event.tracked), finds
-- funnel completions and quota crossings, and deletes the rows it handled in the same transaction. What an event's
-- facts cost (per webhook, per saved funnel) is thus paid off the drain's acknowledgement path.
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_event_outbox (
    seq               bigserial   PRIMARY KEY,
    source_account_id text        NOT NULL DEFAULT 'primary',
    message_id        uuid        NOT NULL,
    ts                timestamptz NOT NULL,
    type              text        NOT NULL,
    event             text,
    user_id           text,
    anonymous_id      text,
    is_bot            boolean     NOT NULL DEFAULT false
);
