-- Erasure of one person (issue 25 item 3), like Segment's SUPPRESS_WITH_DELETE: DELETE /persons/{distinct_id}
-- starts a job that deletes every id of the person and what was derived from them, and suppresses the ids (later
-- events carrying them are dropped at ingest and by the drain) until DELETE /suppressions/{distinct_id} lifts it.
-- Nothing here keeps an erased id once its job is done: suppressions and the audit log hold a salted SHA-256 of
-- (account, id) (np_analytics_id_hash below: the salt is this install's, made here), so an id is recognised when
-- it comes again, or when an operator names it, but is not stored. A job row holds the ids only while it runs.
-- depends: 0101_events_indexes

CREATE TABLE np_analytics_privacy_salt (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    salt text    NOT NULL
);
INSERT INTO np_analytics_privacy_salt (salt)
VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

-- hex(sha256(salt || LF || account || LF || id)): ingest/suppressed.py computes the same in Python.
CREATE FUNCTION np_analytics_id_hash(account text, id text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to((SELECT s.salt FROM np_analytics_privacy_salt s) || E'\n' || account || E'\n'
                                    || id, 'UTF8')), 'hex')
$$;

-- The suppression list: an id whose hash is here is dropped by the ingest service (through the Redis set the
-- leader keeps equal to this table) and by the drain (store/events.py), whatever the wire format.
CREATE TABLE np_analytics_suppressions (
    source_account_id text        NOT NULL DEFAULT 'primary',
    id_hash           text        NOT NULL,
    job_id            uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, id_hash)
);

-- Erasure jobs, run by the leader's `erasures` loop in bounded batches; a job survives a restart (it resumes at
-- its phase). ids/hours/names: the person's ids, the hours and event names of their deleted events, set to NULL when the job is done.
CREATE TABLE np_analytics_erasures (
    id                uuid        PRIMARY KEY,
    source_account_id text        NOT NULL DEFAULT 'primary',
    subject_hash      text        NOT NULL,
    state             text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
    phase             text        NOT NULL DEFAULT 'queued',
    ids               text[],
    hours             timestamptz[],
    names             text[],
    barrier           timestamptz,  -- the wait phase ends when no statement started before this is running
    counts            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    requested_by      text        NOT NULL,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX np_analytics_erasures_open_idx ON np_analytics_erasures (created_at) WHERE state IN ('pending', 'running');

-- Who erased (or lifted a suppression of) what and when: the credential's role and account, the job, the subject's
-- salted hash and the counts; never an id.
CREATE TABLE np_analytics_audit (
    id                bigserial   PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT now(),
    source_account_id text        NOT NULL DEFAULT 'primary',
    actor             text        NOT NULL,
    action            text        NOT NULL,
    job_id            uuid,
    subject_hash      text,
    detail            jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX np_analytics_audit_account_idx ON np_analytics_audit (source_account_id, at);
