-- Scheduled reports (issue 26 item 3): a subscription per account to a daily, weekly or monthly summary sent to
-- email and chat recipients through np_analytics_notifications (0103_alerts). last_period_start is moved forward
-- in the transaction that writes a period's notifications (UPDATE ... WHERE last_period_start < the period), so N
-- instances (or a retried job) send a period once.
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_reports (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_account_id text NOT NULL DEFAULT 'primary',
    name text NOT NULL,
    spec jsonb NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    last_period_start timestamptz,
    last_sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX np_analytics_reports_account ON np_analytics_reports (source_account_id, id);
