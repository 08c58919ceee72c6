"""Writes of the drain: events (set-based), dirty hours, user profiles, identity links.

Exactly once: a batch the drain read fresh from the stream records the runs of stream entries it stored
(np_analytics_drain_ranges, store/drain_ranges.py) in the same statement, and its events go in with no per-event
check (client retries were de-duplicated by the enqueue script); redelivered entries claim their entries' ranges
first and are stored once per account and message id inside the de-duplication window (np_analytics_message_ids,
written by the same statement), as is every write outside the drain's fresh path (tests, imports by hand).

A batch is written by ONE statement (data-modifying CTEs), so it is one round trip and its own
transaction: the events, the dirty hours, the user upserts and the event outbox rows (read by the facts
task, pipeline/facts.py: webhooks, funnel completions, quota crossings) commit together or not at all.
A batch carrying identity links (identify with an anonymous id, alias) applies them first, in the same
transaction (store/identity.py): a redelivered batch finds its links made and changes nothing. The
recordset's columns are the fields of ``model.record.EventRecord``; columns named by hand go through
``column()``, so a misspelled one fails when this module is imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiopg
import msgspec
import structlog

from ..model.record import EVENT_COLUMNS, EventRecord, IdentifyRecord, column, select_list
from .drain_ranges import FENCE, RANGES_CTE
from .identity import apply_links
from .suppressions import suppressed_sql
from .tx import statement_timeouts, transaction

__all__ = ["DEFAULT_MAX_IDS", "EVENT_COLUMNS", "Selection", "write_claimed", "write_payload"]

log = structlog.get_logger("nself_analytics.store")

_COLS = ", ".join(EVENT_COLUMNS)
_RECORD = ", ".join(f"{name} {sqltype}" for name, sqltype in EVENT_COLUMNS.items())
_VALUES = select_list(EventRecord)
_ACCOUNT, _TS, _MESSAGE_ID = column("source_account_id"), column("ts"), column("message_id")
_KEY = f"coalesce({_ACCOUNT}, 'primary'), {_MESSAGE_ID}"  # the de-duplication key of a stored event
_ENCODER = msgspec.json.Encoder()
DEFAULT_MAX_IDS = 500  # Settings.max_ids_per_person's default

# Erased ids (migration 0102): a row of the batch carrying a suppressed id (user id, anonymous id, an alias's
# previous id) is dropped here, so a message queued before its id was erased never lands (the erasure job waits for
# the transactions older than its suppression, store/erasure.py); the salt is read once per statement, and nothing
# is hashed while the list is empty.
_SUPPRESSION = """salt AS MATERIALIZED (SELECT salt FROM np_analytics_privacy_salt),
any_suppressed AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM np_analytics_suppressions) AS on_)"""
_SALT = "(SELECT salt FROM salt)"
_ROW_SUPPRESSED = suppressed_sql(f"coalesce(r.{_ACCOUNT}, 'primary')", (
    f"r.{column('user_id')}", f"r.{column('anonymous_id')}",
    f"CASE WHEN r.{column('type')} = 'alias' THEN r.{column('properties')}->>'previous_id' END"), _SALT)
_USER_SUPPRESSED = suppressed_sql("r.source_account_id", ("r.user_id",), _SALT)
_ANON_SUPPRESSED = suppressed_sql("r.source_account_id", ("x",), _SALT)

# Traits merge left to right; traits_once fill only the names the user has none of (PostHog's $set_once);
# first_seen/last_seen widen. Rows arrive pre-merged per user; a suppressed user id or anonymous id is left out.
_USER_ROWS = """jsonb_to_recordset(%(users)s::jsonb)
     AS r(source_account_id text, user_id text, traits jsonb, traits_once jsonb, anonymous_ids text[],
          first_seen timestamptz, last_seen timestamptz)"""
_UPSERT_USERS = f"""
INSERT INTO np_analytics_users AS u (source_account_id, user_id, traits, anonymous_ids, first_seen, last_seen)
SELECT r.source_account_id, r.user_id, coalesce(r.traits_once, '{{}}'::jsonb) || coalesce(r.traits, '{{}}'::jsonb),
       coalesce(ARRAY(SELECT x FROM unnest(r.anonymous_ids) AS x
                      WHERE NOT (SELECT on_ FROM any_suppressed) OR NOT {_ANON_SUPPRESSED}), '{{}}'),
       r.first_seen, r.last_seen
FROM {_USER_ROWS}
WHERE NOT (SELECT on_ FROM any_suppressed) OR NOT {_USER_SUPPRESSED}
ORDER BY 1, 2  -- rows locked in one order: concurrent drainers cannot deadlock
ON CONFLICT (source_account_id, user_id) DO UPDATE SET
    -- the once-only traits under the user's, the new ones over both (EXCLUDED holds them merged: read them apart)
    traits = coalesce((SELECT coalesce(r.traits_once, '{{}}'::jsonb) || u.traits || coalesce(r.traits, '{{}}'::jsonb)
                       FROM {_USER_ROWS}
                       WHERE r.source_account_id = u.source_account_id AND r.user_id = u.user_id),
                      u.traits || EXCLUDED.traits),
    anonymous_ids = ARRAY(SELECT DISTINCT x FROM unnest(u.anonymous_ids || EXCLUDED.anonymous_ids) AS x),
    first_seen = least(u.first_seen, EXCLUDED.first_seen),
    last_seen = greatest(u.last_seen, EXCLUDED.last_seen)
"""

# The statement of a batch: the events (the count of new ones is its result), the hours they dirty, the user upserts.
# ``dedupe``: the events go in only for message ids not stored inside the de-duplication window (a redelivered entry,
# a retry inside the window: np_analytics_message_ids); without it (a batch the drain read fresh from the stream,
# whose client retries the enqueue script de-duplicated) the events go in as they are, and ``extra`` adds CTEs (the
# batch's stream ranges, store/drain_ranges.py) to the same statement.
_FRESH_IDS = f"""fresh AS (
    -- the message ids not stored inside the de-duplication window (migration 0080): their rows go in below;
    -- a concurrent drainer holding the same id makes this wait for its commit, then skip the id
    INSERT INTO np_analytics_message_ids (source_account_id, message_id)
    SELECT DISTINCT {_KEY} FROM batch
    ORDER BY 1, 2  -- rows locked in one order: concurrent drainers cannot deadlock
    ON CONFLICT DO NOTHING
    RETURNING source_account_id, message_id
), """
_NEW_ROWS = f"""
        -- one row per new id: duplicates inside the batch keep their earliest time
        SELECT DISTINCT ON ({_KEY}) * FROM batch WHERE ({_KEY}) IN (SELECT * FROM fresh) ORDER BY {_KEY}, {_TS}"""


def _batch_sql(dedupe: bool, extra: str = "") -> str:
    return f"""
WITH {_SUPPRESSION},
raw AS MATERIALIZED (
    SELECT r.*, (SELECT on_ FROM any_suppressed) AND {_ROW_SUPPRESSED} AS suppressed_
    FROM jsonb_to_recordset(%(events)s::jsonb) AS r({_RECORD})
), batch AS MATERIALIZED (
    SELECT * FROM raw WHERE NOT suppressed_
), {_FRESH_IDS if dedupe else ""}inserted AS (
    INSERT INTO np_analytics_events ({_COLS})
    SELECT {_VALUES} FROM ({_NEW_ROWS if dedupe else " SELECT * FROM batch"}
    ) AS b
    RETURNING source_account_id, message_id, ts, type, event, user_id, anonymous_id, is_bot
), outbox AS (
    -- one narrow row per new event for the facts task (pipeline/facts.py: webhooks, funnels, quotas), which pays
    -- for the facts after the acknowledgement: nothing here depends on the number of webhooks or saved funnels
    INSERT INTO np_analytics_event_outbox (source_account_id, message_id, ts, type, event, user_id, anonymous_id,
                                           is_bot)
    SELECT source_account_id, message_id, ts, type, event, user_id, anonymous_id, is_bot FROM inserted
), dirty AS (
    INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
    SELECT DISTINCT coalesce({_ACCOUNT}, 'primary'), date_trunc('hour', {_TS} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    FROM batch
    ORDER BY 1, 2  -- rows locked in one order: concurrent drainers cannot deadlock
    -- DO UPDATE (a no-op) takes the row lock, so an aggregator claiming this hour waits for our commit
    ON CONFLICT (source_account_id, hour) DO UPDATE SET marked_at = np_analytics_aggregate_dirty.marked_at
), users AS ({_UPSERT_USERS}){", " + extra if extra else ""}
SELECT (SELECT count(*) FROM inserted),
       (SELECT coalesce(jsonb_object_agg(a, n), '{{}}'::jsonb)
        FROM (SELECT coalesce({_ACCOUNT}, 'primary') AS a, count(*) AS n FROM raw WHERE suppressed_ GROUP BY 1) AS x)
"""


WRITE_BATCH = _batch_sql(dedupe=True)
# A batch the drain read fresh from the stream, with its ranges of entry ids (store/drain_ranges.py); the second
# also records its message ids in the de-duplication window (a client retry after the enqueue script's 24 h).
WRITE_FRESH = _batch_sql(dedupe=False, extra=RANGES_CTE)
WRITE_FRESH_WINDOW = _batch_sql(dedupe=True, extra=RANGES_CTE)


class _User(msgspec.Struct):
    source_account_id: str
    user_id: str
    traits: dict[str, Any]
    traits_once: dict[str, Any]
    anonymous_ids: list[str]
    first_seen: datetime
    last_seen: datetime


def _merge_identifies(identifies: Sequence[IdentifyRecord]) -> list[_User]:
    """One row per (account, user) in arrival order, so one statement never touches a row twice."""
    merged: dict[tuple[str, str], _User] = {}
    for item in identifies:
        key = (item.source_account_id, item.user_id)
        row = merged.get(key)
        if row is None:
            merged[key] = _User(key[0], key[1], dict(item.traits), dict(item.traits_once),
                                [item.anonymous_id] if item.anonymous_id else [], item.ts, item.ts)
            continue
        row.traits.update(item.traits)
        row.traits_once = {**item.traits_once, **row.traits_once}  # the first once-only value stays
        if item.anonymous_id and item.anonymous_id not in row.anonymous_ids:
            row.anonymous_ids.append(item.anonymous_id)
        row.first_seen = min(row.first_seen, item.ts)
        row.last_seen = max(row.last_seen, item.ts)
    return list(merged.values())


def _count(into: dict[str, int] | None, dropped: dict[str, int]) -> None:
    if into is not None:
        for account, count in dropped.items():
            into[account] = into.get(account, 0) + int(count)


Selection = tuple[str, Sequence[IdentifyRecord], Sequence[dict[str, Any]]]  # events JSON, identifies, links


async def write_payload(conn: aiopg.Connection, events_json: str, identifies: Sequence[IdentifyRecord],
                        links: Sequence[dict[str, Any]] = (), *, max_ids: int = DEFAULT_MAX_IDS,
                        timeout_ms: int | None = None, suppressed: dict[str, int] | None = None,
                        refused_links: dict[str, int] | None = None,
                        ranges: tuple[Sequence[int], Sequence[int]] | None = None, window: bool = True) -> int:
    """Write one drained batch in one transaction; return the number of events newly stored. ``events_json``:
    the events as one JSON array (the drain joins the stream payloads, which are encoded EventRecords).

    ``links``: the batch's identity link operations in stream order (``persons.link_ops``); ``max_ids``: the most
    ids one person may hold. ``timeout_ms``: the server-side statement timeout of this batch's statements (the
    drain sizes it for the batch; a timeout raises ``QueryCanceled``, SQLSTATE 57014). ``suppressed``: when given,
    the events dropped for an erased id are added to it per account (the drain counts them for /health);
    ``refused_links``: likewise the identity links refused, per "<account>|<reason>" (accounts of the batch's links
    joined by "," when it links for several). ``ranges``: the batch was read fresh from the stream; (lows, highs)
    of the runs of entry keys it stores (store/drain_ranges.py) are recorded in the same statement (an exclusion
    violation, ``drain_ranges.is_stale``, says another consumer stored some of these entries: nothing is committed);
    with ``window`` false its events go in without the de-duplication window (no per-event check or index entry: a
    client retry is then de-duplicated only by the enqueue script, for 24 h)."""
    limit = "" if timeout_ms is None else f"SET LOCAL statement_timeout = {int(timeout_ms)}; "
    params = _params(events_json, identifies)
    sql = WRITE_BATCH
    if ranges is not None:
        sql = WRITE_FRESH_WINDOW if window else WRITE_FRESH
        params.update(lo=list(ranges[0]), hi=list(ranges[1]))
    if not links:
        async with statement_timeouts(), conn.cursor() as cur:  # autocommit: one implicit transaction, one trip
            await cur.execute(limit + sql, params)
            inserted, dropped = await cur.fetchone()
        _count(suppressed, dropped)
        return int(inserted)
    async with statement_timeouts(), transaction(conn) as cur:
        if limit:
            await cur.execute(limit)
        inserted = await _linked_write(cur, sql, params, links, max_ids, suppressed, refused_links)
    return inserted


async def write_claimed(conn: aiopg.Connection, keys: Sequence[int], select: Callable[[set[int]], Selection], *,
                        max_ids: int = DEFAULT_MAX_IDS, timeout_ms: int | None = None,
                        suppressed: dict[str, int] | None = None,
                        refused_links: dict[str, int] | None = None) -> int:
    """Write redelivered stream entries (keys: store/drain_ranges.py) in one transaction: claim each entry's
    one-entry range first (waiting for a transaction still storing it); ``select`` gets the keys claimed and gives
    the events JSON, identifies and links of those entries, written as :func:`write_payload` writes them with the
    de-duplication window (which catches events stored by a drain before ranges, or by hand). Entries not claimed
    were stored already. Returns the number of events newly stored."""
    async with statement_timeouts(), transaction(conn) as cur:
        if timeout_ms is not None:
            await cur.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        await cur.execute(FENCE, {"keys": list(keys)})
        claimed = {int(key) for (key,) in await cur.fetchall()}
        if not claimed:
            return 0
        events_json, identifies, links = select(claimed)
        return await _linked_write(cur, WRITE_BATCH, _params(events_json, identifies), links, max_ids, suppressed,
                                   refused_links)


def _params(events_json: str, identifies: Sequence[IdentifyRecord]) -> dict[str, Any]:
    users = _ENCODER.encode(_merge_identifies(identifies)).decode() if identifies else "[]"
    return {"events": events_json, "users": users}


async def _linked_write(cur: aiopg.Cursor, sql: str, params: dict[str, Any], links: Sequence[dict[str, Any]],
                        max_ids: int, suppressed: dict[str, int] | None,
                        refused_links: dict[str, int] | None) -> int:
    """The batch's statement inside the caller's transaction, after its identity links (if any)."""
    refused: dict[str, int] = {}
    if links:
        # links first: their advisory locks are taken before any row lock of the batch statement
        refused = await apply_links(cur, json.dumps(list(links), separators=(",", ":")), max_ids)
    await cur.execute(sql, params)
    inserted, dropped = await cur.fetchone()
    _count(suppressed, dropped)
    if refused:
        log.warning("person_links_refused", links=len(links), **refused)
        if refused_links is not None:
            accounts = ",".join(sorted({str(link.get("a")) for link in links}))
            for reason, count in refused.items():
                key = f"{accounts}|{reason}"
                refused_links[key] = refused_links.get(key, 0) + count
    return int(inserted)
