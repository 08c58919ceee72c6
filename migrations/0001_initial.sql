-- Initial schema of nself-analytics. Every table carries source_account_id for multi-app isolation.

-- Raw event log. Natively partitioned by day on ts, so retention drops whole partitions;
-- partitions are created on demand by the drain (store/partitions.py).
CREATE TABLE np_analytics_events (
    ts                timestamptz NOT NULL,
    message_id        uuid        NOT NULL,
    source_account_id text        NOT NULL DEFAULT 'primary',
    type              text        NOT NULL DEFAULT 'track',
    event             text        NOT NULL,
    user_id           text,
    anonymous_id      text,
    session_id        text,
    site              text,
    path              text,
    referrer          text,
    device            text,
    browser           text,
    os                text,
    language          text,
    country           text,
    screen_width      smallint,
    is_bot            boolean     NOT NULL DEFAULT false,
    ip_hash           text,
    properties        jsonb,
    context           jsonb
) PARTITION BY RANGE (ts);

-- Idempotent ingest: a message is stored once (the partition key must be part of a unique index).
CREATE UNIQUE INDEX np_analytics_events_message_idx ON np_analytics_events (message_id, ts);
-- Funnels, retention, metrics and sessions select by event name and time.
CREATE INDEX np_analytics_events_event_ts_idx ON np_analytics_events (source_account_id, event, ts);
-- Web analytics read one site over a time range.
CREATE INDEX np_analytics_events_site_ts_idx ON np_analytics_events (site, ts) WHERE site IS NOT NULL;

CREATE TABLE np_analytics_users (
    source_account_id text        NOT NULL DEFAULT 'primary',
    user_id           text        NOT NULL,
    traits            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    anonymous_ids     text[]      NOT NULL DEFAULT '{}',
    first_seen        timestamptz NOT NULL DEFAULT now(),
    last_seen         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, user_id)
);
CREATE INDEX np_analytics_users_traits_idx ON np_analytics_users USING gin (traits jsonb_path_ops);

-- Materialized counts and distinct users per event per hour and per day (kept after raw pruning).
CREATE TABLE np_analytics_aggregates (
    source_account_id text        NOT NULL DEFAULT 'primary',
    granularity       text        NOT NULL CHECK (granularity IN ('hour', 'day')),
    bucket            timestamptz NOT NULL,
    event             text        NOT NULL,
    count             bigint      NOT NULL,
    users             bigint      NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, granularity, bucket, event)
);
CREATE INDEX np_analytics_aggregates_event_idx ON np_analytics_aggregates (source_account_id, granularity, event, bucket);

-- Hours whose aggregates must be recomputed: written by the drain in the same transaction as
-- the events, consumed by the aggregator (the incremental watermark).
CREATE TABLE np_analytics_aggregate_dirty (
    source_account_id text        NOT NULL DEFAULT 'primary',
    hour              timestamptz NOT NULL,
    marked_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, hour)
);

CREATE TABLE np_analytics_funnels (
    id                bigserial   PRIMARY KEY,
    source_account_id text        NOT NULL DEFAULT 'primary',
    name              text        NOT NULL,
    steps             jsonb       NOT NULL,
    window_seconds    integer     NOT NULL DEFAULT 604800,
    breakdown         text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX np_analytics_funnels_account_idx ON np_analytics_funnels (source_account_id, id);

CREATE TABLE np_analytics_quotas (
    id                bigserial   PRIMARY KEY,
    source_account_id text        NOT NULL DEFAULT 'primary',
    event             text        NOT NULL,
    segment           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    "limit"           bigint      NOT NULL CHECK ("limit" >= 0),
    period            text        NOT NULL CHECK (period IN ('minute', 'hour', 'day', 'month')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX np_analytics_quotas_event_idx ON np_analytics_quotas (source_account_id, event);

-- First crossing of a quota limit by a user in one period.
CREATE TABLE np_analytics_quota_violations (
    id                bigserial   PRIMARY KEY,
    source_account_id text        NOT NULL DEFAULT 'primary',
    quota_id          bigint      NOT NULL REFERENCES np_analytics_quotas (id) ON DELETE CASCADE,
    user_id           text        NOT NULL,
    period_start      timestamptz NOT NULL,
    used              bigint      NOT NULL,
    "limit"           bigint      NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (quota_id, user_id, period_start)
);
