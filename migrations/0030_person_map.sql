-- Identity: which person each distinct id (an event's user_id, else its anonymous_id) belongs to.
-- Stored rows keep the raw distinct id; reads resolve it through this map (store/persons.py), so a link
-- that arrives after the events applies to them too. Only linked ids have a row: an id without one is
-- its own person. The map is flat: a person_id never has a row of its own (it is a root).
-- Written by the drain (identify with an anonymous id, alias) through np_analytics_link_ids below, in the
-- same transaction as the batch's events. Rules: see np_analytics_link_ids and README "Identity".
-- depends: 0003_event_ts_covering

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

-- Apply link operations in order: a JSON array of {"a": account, "k": "identify" | "alias", "u": user id,
-- "d": the other id (identify: the anonymous id, may be null; alias: the previous id)}.
-- identify(u, d): d joins u's person, unless d is already linked (to anyone) or is itself a known user
--   (it was the user id of an identify, or other ids belong to it): PostHog's rule, two known users are
--   never merged by identify. An identify without d only marks u as known.
-- alias(u, d): d (and every id of d's person) joins u's person: the explicit merge, also of two known
--   users; refused when d is already linked to another person (a first link is never moved).
-- Returns the number of refused links. Links of one account are serialized by an advisory lock taken in
-- account order, before the batch's row locks (the drain runs this first), so drainers cannot deadlock.
CREATE FUNCTION np_analytics_link_ids(ops jsonb) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    op record;
    account text;
    target text;
    current_person text;
    known text[] := '{}';  -- (account, user id) pairs identified earlier in this call, as length-prefixed keys
    refused integer := 0;
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
                refused := refused + 1;
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
            IF current_person <> op.d THEN
                refused := refused + 1;
                CONTINUE;
            END IF;
            UPDATE np_analytics_person_map SET person_id = target, linked_at = now()
            WHERE source_account_id = op.a AND person_id = op.d;
            INSERT INTO np_analytics_person_map (source_account_id, distinct_id, person_id)
            VALUES (op.a, op.d, target);
        END IF;
    END LOOP;
    RETURN refused;
END;
$$;
