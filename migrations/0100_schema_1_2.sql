-- Release 1.2.0's schema in one step from 1.1.1 (0001-0003): every table, function and index of an object that
-- 1.1.1 did not have. It consolidates the unreleased migrations 0030-0114 of the 1.2 development (their history:
-- git log -- migrations/; the old files are kept in tests/fixtures/migrations_1_2_development/, and
-- tests/test_upgrade_schema.py checks that this chain builds the same schema as theirs). It only creates objects, so it takes no lock a writer of
-- the events waits on and reads no event: the indexes of np_analytics_events are built per partition with CREATE INDEX
-- CONCURRENTLY by 0101_events_indexes.py, and the rollups of the events stored before the upgrade (event times, web
-- session fragments, web days, UTM term/content) are built after it, in bounded batches by the service's backfill
-- (np_analytics_backfills below; nself_analytics/pipeline/backfill.py), reads taking the hours not yet backfilled from
-- raw events meanwhile.
-- depends: 0003_event_ts_covering

-- Identity: which person each distinct id (an event's user_id, else its anonymous_id) belongs to. Stored rows keep
-- the raw distinct id; reads resolve it through this map (store/persons.py). Only linked ids have a row; a person_id
-- never has a row of its own. Written by the drain through np_analytics_link_ids (README "Identity").
CREATE TABLE np_analytics_person_map (
    source_account_id text        NOT NULL DEFAULT 'primary',
    distinct_id       text COLLATE "C" NOT NULL,
    person_id         text COLLATE "C" NOT NULL,
    linked_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, distinct_id),
    CHECK (distinct_id <> person_id)
);
-- A person's ids (metrics/sessions filtered by user_id; re-pointing a merged person's ids).
CREATE INDEX np_analytics_person_map_person_idx ON np_analytics_person_map (source_account_id, person_id);

-- Web session fragments: one row per (site, web session, UTC hour, bot flag): what that session did in that hour
-- (its first and last page views, the page views, its visitor and per dimension value the page views that carried
-- it). Kept by the aggregator from the dirty hours (store/web_rollup.py); every /api/* web read groups the fragments
-- of its range by session (store/web.py), the hours still dirty and the partial hours at the range's edges read raw.
-- spans: the fragment's session has fragments in more than one UTC day or with both bot flags (read one by one,
-- never summed per day).
CREATE TABLE np_analytics_web_sessions (
    source_account_id text        NOT NULL DEFAULT 'primary',
    site              text        NOT NULL,
    hour              timestamptz NOT NULL,
    session_id        text,
    is_bot            boolean     NOT NULL,
    visitor           text,
    first_ts          timestamptz NOT NULL,
    last_ts           timestamptz NOT NULL,
    views             integer     NOT NULL,
    entry             text,
    exit              text,
    vals              text[]      NOT NULL,  -- dimension values, each prefixed by its one-letter code
    cnts              integer[]   NOT NULL,  -- page views per value of vals
    spans             boolean     NOT NULL DEFAULT false
);
CREATE INDEX np_analytics_web_sessions_site_hour_idx ON np_analytics_web_sessions (source_account_id, site, hour);
-- the aggregator: fragments of claimed hours; the sessions of those fragments
CREATE INDEX np_analytics_web_sessions_hour_idx ON np_analytics_web_sessions (source_account_id, hour);
CREATE INDEX np_analytics_web_sessions_session_idx ON np_analytics_web_sessions (source_account_id, site, session_id)
    WHERE session_id IS NOT NULL;
-- reads: the spanning fragments of a range
CREATE INDEX np_analytics_web_sessions_spans_idx ON np_analytics_web_sessions (source_account_id, site, hour)
    WHERE spans;

-- Web statistics per site and UTC day (store/web_daily.py): per (site, day, bot flag, code, value) the page views
-- and sessions of the day's closed sessions (codes: store/web_rollup.py's dimensions; 'H' hour of the day; 'e'
-- entry, 'x' exit page; '*' every page view of the day, sessions, bounces, seconds, sviews).
CREATE TABLE np_analytics_web_daily (
    source_account_id text    NOT NULL DEFAULT 'primary',
    site              text    NOT NULL,
    day               date    NOT NULL,
    is_bot            boolean NOT NULL,
    code              text    NOT NULL,
    value             text,  -- NULL: a session's entry or exit page view without a path
    views             bigint  NOT NULL DEFAULT 0,
    sessions          bigint  NOT NULL DEFAULT 0,
    bounces           bigint  NOT NULL DEFAULT 0,
    seconds           float8  NOT NULL DEFAULT 0,
    sviews            bigint  NOT NULL DEFAULT 0
);
CREATE INDEX np_analytics_web_daily_site_day_idx ON np_analytics_web_daily (source_account_id, site, day, code);
CREATE INDEX np_analytics_web_daily_day_idx ON np_analytics_web_daily (source_account_id, day);

-- Per (site, day, bot flag): the distinct visitors of the day's closed sessions and sessionless page views (raw ids,
-- resolved to persons when read; and their HyperLogLog sketch) and the durations of its closed sessions, sorted,
-- with per duration bucket (np_analytics_duration_bucket) the sessions in it (bn) and where its values start (bpos).
CREATE TABLE np_analytics_web_day_stats (
    source_account_id text       NOT NULL DEFAULT 'primary',
    site              text       NOT NULL,
    day               date       NOT NULL,
    is_bot            boolean    NOT NULL,
    visitors          text[]     NOT NULL,  -- the distinct visitors (raw ids, sorted: persons are resolved when read)
    sketch            bytea      NOT NULL,  -- a HyperLogLog sketch of those ids (store/hll.py: 2^14 registers)
    ms                bigint[]   NOT NULL,  -- the durations of the day's closed sessions, in milliseconds, ascending
    n                 integer[]  NOT NULL,  -- the sessions of each duration
    bn                integer[]  NOT NULL,  -- sessions per duration bucket
    bpos              integer[]  NOT NULL,  -- 1-based start of each bucket's values in ms/n (then the length + 1)
    PRIMARY KEY (source_account_id, site, day, is_bot)
);
CREATE INDEX np_analytics_web_day_stats_day_idx ON np_analytics_web_day_stats (source_account_id, day);

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

-- Exactly-once without a unique index entry per stored event: the message ids the drain stored in the last
-- ANALYTICS_DEDUPE_WINDOW (store/message_ids.py), written in the same statement as the events. It replaces the
-- unique (message_id, ts) index of every partition, which 0101_events_indexes.py drops (after seeding this table
-- with the ids of the last two days' events).
CREATE TABLE np_analytics_message_ids (
    source_account_id text        NOT NULL DEFAULT 'primary',
    message_id        uuid        NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, message_id)
);
CREATE INDEX np_analytics_message_ids_received_idx ON np_analytics_message_ids USING brin (received_at);

-- Per (account, event name, UTC hour, distinct id): the sorted times of the events of that name the id sent in that
-- hour (bots and events without a distinct id left out), at most 4096 per row (chunk). Funnels and sessions read it
-- (store/event_times.py). No primary key: one non-unique (account, event, hour) index serves the reads and the
-- aggregator's replacement of a claimed hour's rows (under a transaction-level advisory lock).
CREATE TABLE np_analytics_event_times (
    source_account_id text NOT NULL DEFAULT 'primary',
    event             text NOT NULL,
    hour              timestamptz NOT NULL,
    u                 text COLLATE "C" NOT NULL,
    chunk             integer NOT NULL DEFAULT 0,
    ts                timestamptz[] NOT NULL
);
CREATE INDEX np_analytics_event_times_event_hour_idx ON np_analytics_event_times (source_account_id, event, hour);

-- Session durations of a day indexed by bucket (np_analytics_web_day_stats.bn/bpos), so a median over many days
-- reads only the bucket it falls in (store/web.py).
CREATE FUNCTION np_analytics_duration_bucket(ms bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN width_bucket(ms, '{1000,2000,3000,4000,5000,6000,7000,8000,9000,10000,11000,12000,13000,14000,15000,16000,17000,18000,19000,20000,21000,22000,23000,24000,25000,26000,27000,28000,29000,30000,31000,32000,33000,34000,35000,36000,37000,38000,39000,40000,41000,42000,43000,44000,45000,46000,47000,48000,49000,50000,51000,52000,53000,54000,55000,56000,57000,58000,59000,60000,70000,80000,90000,100000,110000,120000,130000,140000,150000,160000,170000,180000,190000,200000,210000,220000,230000,240000,250000,260000,270000,280000,290000,300000,310000,320000,330000,340000,350000,360000,370000,380000,390000,400000,410000,420000,430000,440000,450000,460000,470000,480000,490000,500000,510000,520000,530000,540000,550000,560000,570000,580000,590000,600000,660000,720000,780000,840000,900000,960000,1020000,1080000,1140000,1200000,1260000,1320000,1380000,1440000,1500000,1560000,1620000,1680000,1740000,1800000,1860000,1920000,1980000,2040000,2100000,2160000,2220000,2280000,2340000,2400000,2460000,2520000,2580000,2640000,2700000,2760000,2820000,2880000,2940000,3000000,3060000,3120000,3180000,3240000,3300000,3360000,3420000,3480000,3540000,3600000,3660000,3720000,3780000,3840000,3900000,3960000,4020000,4080000,4140000,4200000,4260000,4320000,4380000,4440000,4500000,4560000,4620000,4680000,4740000,4800000,4860000,4920000,4980000,5040000,5100000,5160000,5220000,5280000,5340000,5400000,5460000,5520000,5580000,5640000,5700000,5760000,5820000,5880000,5940000,6000000,6060000,6120000,6180000,6240000,6300000,6360000,6420000,6480000,6540000,6600000,6660000,6720000,6780000,6840000,6900000,6960000,7020000,7080000,7140000,7200000,9000000,10800000,12600000,14400000,16200000,18000000,19800000,21600000,23400000,25200000,27000000,28800000,30600000,32400000,34200000,36000000,37800000,39600000,41400000,43200000,45000000,46800000,48600000,50400000,52200000,54000000,55800000,57600000,59400000,61200000,63000000,64800000,66600000,68400000,70200000,72000000,73800000,75600000,77400000,79200000,81000000,82800000,84600000,86400000}'::bigint[]);

-- Sessions per bucket and the start of each bucket's values in the sorted arrays ms/n (then the length + 1).
CREATE FUNCTION np_analytics_duration_index(ms bigint[], n integer[], OUT bn integer[], OUT bpos integer[])
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    WITH per AS (
        SELECT np_analytics_duration_bucket(u.m) AS k, sum(u.c)::integer AS c, count(*)::integer AS d
        FROM unnest(ms, n) AS u(m, c) GROUP BY 1
    ), allk AS (
        SELECT g.k, coalesce(p.c, 0) AS c, coalesce(p.d, 0) AS d
        FROM generate_series(0, np_analytics_duration_bucket(9223372036854775807)) AS g(k) LEFT JOIN per p USING (k)
    )
    SELECT array_agg(c ORDER BY k), array_agg(1 + s - d ORDER BY k) || (1 + coalesce(cardinality(ms), 0))
    FROM (SELECT k, c, d, sum(d) OVER (ORDER BY k) AS s FROM allk) AS f
$$;

-- Identity linking with bounded work per link: a person holds at most max_ids distinct ids (a link past it is
-- refused), a merge re-points the smaller person into the larger, and alias(u, d) merges d's person unless it is
-- identified (PostHog's rule). Returns the refused links as {"identified": n, "linked": n, "cap": n}. The plain-Python
-- definition is tests/queries_support.py: ref_persons.
CREATE FUNCTION np_analytics_link_ids(ops jsonb, max_ids integer) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    op record;
    account text;
    target text;
    current_person text;
    loser text;
    winner text;
    size_target integer;
    size_current integer;
    known text[] := '{}';  -- (account, user id) pairs identified earlier in this call, as length-prefixed keys
    refused_identified integer := 0;
    refused_linked integer := 0;
    refused_cap integer := 0;
BEGIN
    FOR account IN SELECT DISTINCT o->>'a' FROM jsonb_array_elements(ops) AS o ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('np_analytics_person_map:' || account, 0));
    END LOOP;
    FOR op IN
        SELECT o->>'k' AS k, o->>'a' AS a, o->>'u' AS u, o->>'d' AS d
        FROM jsonb_array_elements(ops) WITH ORDINALITY AS t(o, n) ORDER BY n
    LOOP
        IF op.u IS NULL THEN
            CONTINUE;
        END IF;
        SELECT coalesce(max(m.person_id), op.u) INTO target
        FROM np_analytics_person_map m WHERE m.source_account_id = op.a AND m.distinct_id = op.u;
        IF op.k = 'identify' THEN
            known := known || (length(op.a) || ':' || op.a || op.u);
            IF op.d IS NULL OR op.d = op.u OR op.d = target THEN
                CONTINUE;
            END IF;
            IF EXISTS (SELECT 1 FROM np_analytics_person_map m
                       WHERE m.source_account_id = op.a AND (m.distinct_id = op.d OR m.person_id = op.d))
               OR EXISTS (SELECT 1 FROM np_analytics_users s WHERE s.source_account_id = op.a AND s.user_id = op.d)
               OR (length(op.a) || ':' || op.a || op.d) = ANY(known) THEN
                refused_linked := refused_linked + 1;
                CONTINUE;
            END IF;
            SELECT 1 + count(*) INTO size_target FROM (
                SELECT 1 FROM np_analytics_person_map m
                WHERE m.source_account_id = op.a AND m.person_id = target LIMIT max_ids) AS x;
            IF size_target + 1 > max_ids THEN
                refused_cap := refused_cap + 1;
                CONTINUE;
            END IF;
            INSERT INTO np_analytics_person_map (source_account_id, distinct_id, person_id)
            VALUES (op.a, op.d, target);
        ELSIF op.k = 'alias' THEN
            IF op.d IS NULL OR op.d = op.u THEN
                CONTINUE;
            END IF;
            SELECT coalesce(max(m.person_id), op.d) INTO current_person
            FROM np_analytics_person_map m WHERE m.source_account_id = op.a AND m.distinct_id = op.d;
            IF current_person = target THEN
                CONTINUE;
            END IF;
            -- the previous id's person is identified: one of its ids is a known user (at most max_ids probes)
            IF EXISTS (SELECT 1 FROM np_analytics_users s
                       WHERE s.source_account_id = op.a AND s.user_id = current_person)
               OR (length(op.a) || ':' || op.a || current_person) = ANY(known)
               OR EXISTS (SELECT 1 FROM np_analytics_person_map m
                          WHERE m.source_account_id = op.a AND m.person_id = current_person
                            AND ((length(op.a) || ':' || op.a || m.distinct_id) = ANY(known)
                                 OR EXISTS (SELECT 1 FROM np_analytics_users s
                                            WHERE s.source_account_id = op.a AND s.user_id = m.distinct_id))) THEN
                refused_identified := refused_identified + 1;
                CONTINUE;
            END IF;
            SELECT 1 + count(*) INTO size_target FROM (
                SELECT 1 FROM np_analytics_person_map m
                WHERE m.source_account_id = op.a AND m.person_id = target LIMIT max_ids) AS x;
            SELECT 1 + count(*) INTO size_current FROM (
                SELECT 1 FROM np_analytics_person_map m
                WHERE m.source_account_id = op.a AND m.person_id = current_person LIMIT max_ids) AS x;
            IF size_target + size_current > max_ids THEN
                refused_cap := refused_cap + 1;
                CONTINUE;
            END IF;
            IF size_current <= size_target THEN
                loser := current_person;
                winner := target;
            ELSE
                loser := target;
                winner := current_person;
            END IF;
            UPDATE np_analytics_person_map SET person_id = winner, linked_at = now()
            WHERE source_account_id = op.a AND person_id = loser;
            INSERT INTO np_analytics_person_map (source_account_id, distinct_id, person_id)
            VALUES (op.a, loser, winner);
        END IF;
    END LOOP;
    RETURN jsonb_build_object('identified', refused_identified, 'linked', refused_linked, 'cap', refused_cap);
END;
$$;

-- The secret token's explicit identity operations: merge two persons (also two identified ones, which alias and
-- identify never merge) and split one distinct id off its person (undo a link), under the account's advisory lock of
-- np_analytics_link_ids and within max_ids rows. An id is known when it has a map row, is a person's root, is a user
-- of an identify, or has an event. The plain-Python definition is tests/queries_support.py: ref_persons.
CREATE FUNCTION np_analytics_known_id(account text, id text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM np_analytics_person_map m
                   WHERE m.source_account_id = account AND m.distinct_id = id COLLATE "C")
        OR EXISTS (SELECT 1 FROM np_analytics_person_map m
                   WHERE m.source_account_id = account AND m.person_id = id COLLATE "C")
        OR EXISTS (SELECT 1 FROM np_analytics_users s WHERE s.source_account_id = account AND s.user_id = id)
        OR EXISTS (SELECT 1 FROM np_analytics_events e
                   WHERE coalesce(e.user_id, e.anonymous_id) = id AND e.source_account_id = account);
$$;

-- merge(into, from): the whole person of `from` joins the person of `into` (whose root stays the person id).
-- Returns {"outcome": "merged" | "same" | "cap" | "unknown", "person_id", "moved" (ids re-pointed), "size"}.
CREATE FUNCTION np_analytics_merge_persons(account text, into_id text, from_id text, max_ids integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    target text;
    source text;
    size_target integer;
    size_source integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('np_analytics_person_map:' || account, 0));
    IF NOT np_analytics_known_id(account, into_id) THEN
        RETURN jsonb_build_object('outcome', 'unknown', 'distinct_id', into_id);
    END IF;
    IF NOT np_analytics_known_id(account, from_id) THEN
        RETURN jsonb_build_object('outcome', 'unknown', 'distinct_id', from_id);
    END IF;
    SELECT coalesce(max(m.person_id), into_id) INTO target
    FROM np_analytics_person_map m WHERE m.source_account_id = account AND m.distinct_id = into_id COLLATE "C";
    SELECT coalesce(max(m.person_id), from_id) INTO source
    FROM np_analytics_person_map m WHERE m.source_account_id = account AND m.distinct_id = from_id COLLATE "C";
    SELECT 1 + count(*) INTO size_target FROM (
        SELECT 1 FROM np_analytics_person_map m
        WHERE m.source_account_id = account AND m.person_id = target LIMIT max_ids) AS x;
    IF target = source THEN
        RETURN jsonb_build_object('outcome', 'same', 'person_id', target, 'moved', 0, 'size', size_target);
    END IF;
    SELECT 1 + count(*) INTO size_source FROM (
        SELECT 1 FROM np_analytics_person_map m
        WHERE m.source_account_id = account AND m.person_id = source LIMIT max_ids) AS x;
    IF size_target + size_source > max_ids THEN
        RETURN jsonb_build_object('outcome', 'cap', 'person_id', target, 'moved', 0,
                                  'size', size_target + size_source);
    END IF;
    UPDATE np_analytics_person_map SET person_id = target, linked_at = now()
    WHERE source_account_id = account AND person_id = source;
    INSERT INTO np_analytics_person_map (source_account_id, distinct_id, person_id) VALUES (account, source, target);
    RETURN jsonb_build_object('outcome', 'merged', 'person_id', target, 'moved', size_source,
                              'size', size_target + size_source);
END;
$$;

-- split(id): id leaves its person and is its own person again. When id is the person's root, the remaining ids
-- keep one person whose new root is the smallest of them in byte order (COLLATE "C"): deterministic, whatever
-- the order of the links that built the person.
-- Returns {"outcome": "split" | "alone" | "cap" | "unknown", "person_id" (the remaining ids' person, null when
-- alone), "moved" (ids re-pointed to a new root)}.
CREATE FUNCTION np_analytics_split_person(account text, id text, max_ids integer) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    person text;
    new_root text;
    size_person integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('np_analytics_person_map:' || account, 0));
    IF NOT np_analytics_known_id(account, id) THEN
        RETURN jsonb_build_object('outcome', 'unknown', 'distinct_id', id);
    END IF;
    DELETE FROM np_analytics_person_map m WHERE m.source_account_id = account AND m.distinct_id = id COLLATE "C"
    RETURNING m.person_id INTO person;
    IF person IS NOT NULL THEN
        RETURN jsonb_build_object('outcome', 'split', 'person_id', person, 'moved', 0);
    END IF;
    SELECT count(*) INTO size_person FROM (
        SELECT 1 FROM np_analytics_person_map m
        WHERE m.source_account_id = account AND m.person_id = id COLLATE "C" LIMIT max_ids) AS x;
    IF size_person = 0 THEN
        RETURN jsonb_build_object('outcome', 'alone', 'person_id', NULL, 'moved', 0);
    END IF;
    IF size_person >= max_ids THEN
        RETURN jsonb_build_object('outcome', 'cap', 'person_id', id, 'moved', 0);
    END IF;
    SELECT min(m.distinct_id) INTO new_root FROM np_analytics_person_map m
    WHERE m.source_account_id = account AND m.person_id = id COLLATE "C";
    DELETE FROM np_analytics_person_map WHERE source_account_id = account AND distinct_id = new_root;
    UPDATE np_analytics_person_map SET person_id = new_root, linked_at = now()
    WHERE source_account_id = account AND person_id = id COLLATE "C";
    RETURN jsonb_build_object('outcome', 'split', 'person_id', new_root, 'moved', size_person - 1);
END;
$$;

-- Jobs that read every stored event, run after the migrations in bounded, resumable batches by the service's leader
-- (nself_analytics/pipeline/backfill.py): each batch commits its work and its new position together.
-- 'rollups_1_2' builds the rollups 1.2 added (event times, web session fragments and days with UTM term/content) for
-- the events stored before the upgrade: one UTC day per batch, newest first, each rebuilt as the aggregator rebuilds
-- a claimed hour, in the transaction that moves the position. Until it is finished, reads of those rollups treat
-- every hour of [lo, position) as dirty (position NULL: not begun, no upper end), so they read raw events for what is
-- not backfilled and stay exact meanwhile. lo is the start of the oldest partition when this migration ran (none:
-- nothing to do, finished at once); hours: the (account, hour) pairs rebuilt so far.
CREATE TABLE np_analytics_backfills (
    name         text        PRIMARY KEY,
    lo           timestamptz,
    position     timestamptz,
    started_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    batches      integer     NOT NULL DEFAULT 0,
    hours        bigint      NOT NULL DEFAULT 0
);
INSERT INTO np_analytics_backfills (name, lo, finished_at)
SELECT 'rollups_1_2', b.lo, CASE WHEN b.lo IS NULL THEN now() END
FROM (SELECT min(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')::timestamptz) AS lo
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'np_analytics_events'::regclass) AS b;
