-- Alerts (issue 26): a rule on a series the API computes, checked once per interval by the leader, and the
-- notification outbox of the chat and email channels (webhooks keep their own outbox).
-- np_analytics_alert_checks: one row per (alert, interval start), inserted in the transaction that changes the
-- alert's state and writes its notifications, so N instances (or a retried check) notify once.
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_account_id text NOT NULL DEFAULT 'primary',
    name text NOT NULL,
    spec jsonb NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    state text NOT NULL DEFAULT 'not_firing' CHECK (state IN ('firing', 'not_firing', 'errored', 'snoozed')),
    firing boolean NOT NULL DEFAULT false,
    last_period_start timestamptz,
    last_checked_at timestamptz,
    last_value double precision,
    last_error text,
    last_notified_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX np_analytics_alerts_account ON np_analytics_alerts (source_account_id, id);

CREATE TABLE np_analytics_alert_checks (
    source_account_id text NOT NULL DEFAULT 'primary',
    alert_id bigint NOT NULL REFERENCES np_analytics_alerts (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL,
    value double precision,
    current double precision,
    previous double precision,
    error text,
    notified text,
    PRIMARY KEY (alert_id, period_start)
);
CREATE INDEX np_analytics_alert_checks_checked ON np_analytics_alert_checks (checked_at);

CREATE TABLE np_analytics_notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_account_id text NOT NULL DEFAULT 'primary',
    source text NOT NULL,
    dedupe_key text NOT NULL UNIQUE,
    channel text NOT NULL CHECK (channel IN ('telegram', 'discord', 'email')),
    target text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX np_analytics_notifications_due ON np_analytics_notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX np_analytics_notifications_created ON np_analytics_notifications (created_at);
