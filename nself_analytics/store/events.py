"""Writes of the drain: events (set-based, idempotent on message id), dirty hours, user profiles,
identity links.

A batch is written by ONE statement (data-modifying CTEs), so it is one round trip and its own
transaction: the events, the dirty hours, the user upserts and the ``event.tracked`` webhook outbox rows
commit together or not at all. A batch carrying identity links (identify with an anonymous id, alias)
applies them first, in the same transaction (store/persons.py): a redelivered batch finds its links made
and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiopg
import structlog

from .persons import apply_links
from .tx import transaction

__all__ = ["EVENT_COLUMNS", "write_batch", "write_payload"]

log = structlog.get_logger("nself_analytics.store")

# Column name -> SQL type, in the order of the recordset; queue payload keys are these names.
EVENT_COLUMNS: dict[str, str] = {
    "ts": "timestamptz",
    "message_id": "uuid",
    "source_account_id": "text",
    "type": "text",
    "event": "text",
    "user_id": "text",
    "anonymous_id": "text",
    "session_id": "text",
    "site": "text",
    "path": "text",
    "referrer": "text",
    "device": "text",
    "browser": "text",
    "os": "text",
    "language": "text",
    "country": "text",
    "screen_width": "smallint",
    "is_bot": "boolean",
    "ip_hash": "text",
    "properties": "jsonb",
    "context": "jsonb",
}
_COLS = ", ".join(EVENT_COLUMNS)
_RECORD = ", ".join(f"{name} {sqltype}" for name, sqltype in EVENT_COLUMNS.items())

_EVENT_VALUES = """ts, message_id, coalesce(source_account_id, 'primary'), coalesce(type, 'track'), event, user_id,
       anonymous_id, session_id, site, path, referrer, device, browser, os, language, country, screen_width,
       coalesce(is_bot, false), ip_hash, properties, context"""

# Traits merge left to right; first_seen/last_seen widen. Rows arrive pre-merged per user.
_UPSERT_USERS = """
INSERT INTO np_analytics_users AS u (source_account_id, user_id, traits, anonymous_ids, first_seen, last_seen)
SELECT coalesce(r.source_account_id, 'primary'), r.user_id, coalesce(r.traits, '{}'::jsonb),
       coalesce(r.anonymous_ids, '{}'), r.first_seen, r.last_seen
FROM jsonb_to_recordset(%(users)s::jsonb)
     AS r(source_account_id text, user_id text, traits jsonb, anonymous_ids text[], first_seen timestamptz,
          last_seen timestamptz)
ORDER BY 1, 2  -- rows locked in one order: concurrent drainers cannot deadlock
ON CONFLICT (source_account_id, user_id) DO UPDATE SET
    traits = u.traits || EXCLUDED.traits,
    anonymous_ids = ARRAY(SELECT DISTINCT x FROM unnest(u.anonymous_ids || EXCLUDED.anonymous_ids) AS x),
    first_seen = least(u.first_seen, EXCLUDED.first_seen),
    last_seen = greatest(u.last_seen, EXCLUDED.last_seen)
"""

# One statement: the events (the count of new ones is its result), the hours they dirty, the user upserts.
WRITE_BATCH = f"""
WITH batch AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(%(events)s::jsonb) AS r({_RECORD})
), inserted AS (
    INSERT INTO np_analytics_events ({_COLS})
    SELECT {_EVENT_VALUES} FROM batch
    ON CONFLICT (message_id, ts) DO NOTHING
    RETURNING source_account_id, message_id, ts, type, event, user_id, anonymous_id, site, path, properties
), hooked AS (
    -- event.tracked outbox rows for the new events whose name a webhook of their account lists
    INSERT INTO np_analytics_webhook_deliveries (id, source_account_id, webhook_id, event, dedupe_key, payload)
    SELECT gen_random_uuid(), i.source_account_id, w.id, 'event.tracked', i.message_id::text,
           jsonb_build_object('message_id', i.message_id, 'type', i.type, 'event', i.event, 'timestamp', i.ts,
                              'user_id', i.user_id, 'anonymous_id', i.anonymous_id, 'site', i.site, 'path', i.path,
                              'properties', coalesce(i.properties, '{{}}'::jsonb))
    FROM inserted i JOIN np_analytics_webhooks w ON w.source_account_id = i.source_account_id AND w.active
         AND 'event.tracked' = ANY (w.events) AND i.event = ANY (w.event_names)
    ON CONFLICT (webhook_id, dedupe_key) DO NOTHING
), dirty AS (
    INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
    SELECT DISTINCT coalesce(source_account_id, 'primary'),
           date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    FROM batch
    ORDER BY 1, 2  -- rows locked in one order: concurrent drainers cannot deadlock
    -- DO UPDATE (a no-op) takes the row lock, so an aggregator claiming this hour waits for our commit
    ON CONFLICT (source_account_id, hour) DO UPDATE SET marked_at = np_analytics_aggregate_dirty.marked_at
), users AS ({_UPSERT_USERS})
SELECT count(*) FROM inserted
"""


def _merge_identifies(identifies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (account, user) in arrival order, so one statement never touches a row twice."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for item in identifies:
        key = (item.get("source_account_id") or "primary", item["user_id"])
        row = merged.get(key)
        if row is None:
            merged[key] = {
                "source_account_id": key[0], "user_id": key[1], "traits": dict(item.get("traits") or {}),
                "anonymous_ids": [item["anonymous_id"]] if item.get("anonymous_id") else [],
                "first_seen": item["ts"], "last_seen": item["ts"],
            }
            continue
        row["traits"].update(item.get("traits") or {})
        if item.get("anonymous_id") and item["anonymous_id"] not in row["anonymous_ids"]:
            row["anonymous_ids"].append(item["anonymous_id"])
        row["first_seen"] = min(row["first_seen"], item["ts"])
        row["last_seen"] = max(row["last_seen"], item["ts"])
    return list(merged.values())


async def write_batch(conn: aiopg.Connection, events: Sequence[dict[str, Any]],
                      identifies: Sequence[dict[str, Any]], links: Sequence[dict[str, Any]] = ()) -> int:
    """Write one drained batch in one transaction; return the number of events newly stored."""
    return await write_payload(conn, json.dumps(events, separators=(",", ":")), identifies, links)


async def write_payload(conn: aiopg.Connection, events_json: str, identifies: Sequence[dict[str, Any]],
                        links: Sequence[dict[str, Any]] = ()) -> int:
    """:func:`write_batch` with the events already as one JSON array (the drain joins the stream payloads).

    ``links``: the batch's identity link operations in stream order (``persons.link_ops``)."""
    users = json.dumps(_merge_identifies(identifies), separators=(",", ":")) if identifies else "[]"
    params = {"events": events_json, "users": users}
    if not links:
        async with conn.cursor() as cur:  # autocommit connection: the single statement is its own transaction
            await cur.execute(WRITE_BATCH, params)
            (inserted,) = await cur.fetchone()
        return int(inserted)
    async with transaction(conn) as cur:
        # links first: their advisory locks are taken before any row lock of the batch statement
        refused = await apply_links(cur, json.dumps(list(links), separators=(",", ":")))
        await cur.execute(WRITE_BATCH, params)
        (inserted,) = await cur.fetchone()
    if refused:
        log.info("person_links_refused", count=refused, links=len(links))
    return int(inserted)
