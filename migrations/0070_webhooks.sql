-- Webhooks: subscriptions per account, and the outbox of their deliveries.
-- depends: 0003_event_ts_covering

CREATE TABLE np_analytics_webhooks (
    id                bigserial   PRIMARY KEY,
    source_account_id text        NOT NULL DEFAULT 'primary',
    url               text        NOT NULL,
    events            text[]      NOT NULL,
    event_names       text[]      NOT NULL DEFAULT '{}',
    secret            text        NOT NULL,
    active            boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX np_analytics_webhooks_account_idx ON np_analytics_webhooks (source_account_id, id);

-- The outbox: a row is written in the same statement (so the same transaction) as the fact it reports,
-- and delivered by the background task. dedupe_key makes a fact re-written by a retried drain batch
-- enqueue once; the id is the delivery id the receiver deduplicates on.
CREATE TABLE np_analytics_webhook_deliveries (
    id                uuid        PRIMARY KEY,
    source_account_id text        NOT NULL DEFAULT 'primary',
    webhook_id        bigint      NOT NULL REFERENCES np_analytics_webhooks (id) ON DELETE CASCADE,
    event             text        NOT NULL,
    dedupe_key        text        NOT NULL,
    payload           jsonb       NOT NULL,
    status            text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_status       integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (webhook_id, dedupe_key)
);
-- The sender picks due pending deliveries.
CREATE INDEX np_analytics_webhook_deliveries_due_idx ON np_analytics_webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX np_analytics_webhook_deliveries_hook_idx ON np_analytics_webhook_deliveries (webhook_id, created_at);
