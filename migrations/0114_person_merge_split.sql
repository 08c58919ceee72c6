-- The secret token's explicit identity operations (issue 21 item 2): merge two persons (also two identified ones,
-- which alias and identify never merge) and split one distinct id off its person (undo a link). Reads resolve ids
-- through np_analytics_person_map when they run, so every figure follows at once.
-- Both take the account's advisory lock of np_analytics_link_ids (0113), so they serialize with the drain's links,
-- and both touch at most max_ids rows (ANALYTICS_MAX_IDS_PER_PERSON): a merge past the cap is refused; a split of
-- a root whose person holds more ids than the cap (data of an older release) is refused too.
-- An id is known when it has a map row, is a person's root, is a user of an identify, or has an event.
-- The plain-Python definition is tests/queries_support.py: ref_persons (kinds "merge" and "split").
-- depends: 0113_identity_bounded

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
