-- Identity linking with bounded work per link, whatever the shape of the links (issue 21).
-- np_analytics_link_ids(ops) re-pointed the whole person of the previous id on every alias: a chain of n aliases
-- cost O(n^2) row updates and held the drain (and every drainer waiting on the account's advisory lock).
-- np_analytics_link_ids(ops, max_ids) below:
--   * caps a person at max_ids distinct ids (ANALYTICS_MAX_IDS_PER_PERSON): a link that would grow a person past it
--     is refused, so every count and re-pointing touches at most max_ids rows;
--   * merges by re-pointing the SMALLER person into the larger one (ties: the previous id's person joins the
--     user's), so a chain c0 <- c1 <- c2 ... re-points one id per link, and an id is re-pointed O(log max_ids)
--     times in its life;
--   * follows PostHog's merge rule: alias(u, d) merges d's whole person with u's (whichever of its ids d is), unless
--     d's person is identified (one of its ids is a known user: the user id of an identify); only the secret token
--     merges two identified persons (explicitly). identify(u, d) keeps its rules (d must be unlinked, have no ids of
--     its own and not be a known user) and the cap.
-- Returns the refused links as {"identified": n, "linked": n, "cap": n}. The old one-argument function stays for
-- instances of the previous release during a rolling upgrade.
-- The plain-Python definition is tests/queries_support.py: ref_persons.
-- depends: 0112_web_utm_term_content

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
