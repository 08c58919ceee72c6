"""Webhook subscriptions (np_analytics_webhooks) and their outbox (np_analytics_webhook_deliveries).

An outbox row is written in the transaction that writes the fact it reports (the facts task's round over the
event outbox for ``event.tracked`` and ``funnel.completed``: pipeline/facts.py; the violation insert for
``quota.exceeded``), so a fact is never stored without its delivery. ``(webhook_id, dedupe_key)`` is
unique: a fact written again (a retried drain batch) enqueues once. The sender claims due rows with a
lease (``next_attempt_at`` moves past the send's timeout), so a sender that dies mid-send leaves the row
to be sent again: delivery is at least once, and the delivery id lets a receiver drop repeats.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiopg

from .identity import EVENT_PERSON, EVENT_PERSON_JOIN, person_of_param

__all__ = [
    "claim_due",
    "count_webhooks",
    "create_webhook",
    "delete_webhook",
    "enqueue",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "mark_delivered",
    "mark_failed",
    "prune_log",
    "subscribed_funnels",
    "update_webhook",
    "user_step_events",
]

_COLUMNS = "id, url, events, event_names, active, created_at, updated_at"

INSERT = f"""
INSERT INTO np_analytics_webhooks (source_account_id, url, events, event_names, secret, active)
VALUES (%(account)s, %(url)s, %(events)s, %(event_names)s, %(secret)s, %(active)s)
RETURNING {_COLUMNS}
"""
# Fields left NULL keep their value (PATCH).
UPDATE = f"""
UPDATE np_analytics_webhooks SET
    url = coalesce(%(url)s, url),
    events = coalesce(%(events)s::text[], events),
    event_names = coalesce(%(event_names)s::text[], event_names),
    secret = coalesce(%(secret)s, secret),
    active = coalesce(%(active)s, active),
    updated_at = now()
WHERE source_account_id = %(account)s AND id = %(id)s
RETURNING {_COLUMNS}
"""
SELECT_ONE = f"SELECT {_COLUMNS} FROM np_analytics_webhooks WHERE source_account_id = %(account)s AND id = %(id)s"
SELECT_ALL = f"""
SELECT {_COLUMNS} FROM np_analytics_webhooks WHERE source_account_id = %(account)s ORDER BY id LIMIT %(limit)s
"""
COUNT = "SELECT count(*) FROM np_analytics_webhooks WHERE source_account_id = %(account)s"
DELETE = "DELETE FROM np_analytics_webhooks WHERE source_account_id = %(account)s AND id = %(id)s RETURNING id"

SELECT_DELIVERIES = """
SELECT id, event, status, attempts, last_status, last_error, payload, created_at, next_attempt_at, delivered_at
FROM np_analytics_webhook_deliveries
WHERE source_account_id = %(account)s AND webhook_id = %(webhook_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY created_at DESC, id LIMIT %(limit)s
"""

# One outbox row per active webhook of the account subscribed to the event.
ENQUEUE = """
INSERT INTO np_analytics_webhook_deliveries (id, source_account_id, webhook_id, event, dedupe_key, payload)
SELECT gen_random_uuid(), w.source_account_id, w.id, %(event)s, %(dedupe_key)s, %(payload)s::jsonb
FROM np_analytics_webhooks w
WHERE w.source_account_id = %(account)s AND w.active AND %(event)s = ANY (w.events)
ON CONFLICT (webhook_id, dedupe_key) DO NOTHING
"""

# The saved funnels of accounts with an active funnel.completed webhook (usually none: one cheap query a batch).
SUBSCRIBED_FUNNELS = """
SELECT f.source_account_id, f.id, f.name, f.steps, f.window_seconds
FROM np_analytics_funnels f
WHERE f.source_account_id = ANY (%(accounts)s::text[])
  AND EXISTS (SELECT 1 FROM np_analytics_webhooks w WHERE w.source_account_id = f.source_account_id
              AND w.active AND 'funnel.completed' = ANY (w.events))
ORDER BY f.id LIMIT %(limit)s
"""

# The step events of one person (the funnel's actor: the person of the user id, else anonymous id, so steps
# done anonymously before an identify count; store/identity.py; bots left out) up to an instant.
USER_STEP_EVENTS = f"""
SELECT e.event, e.ts FROM np_analytics_events e {EVENT_PERSON_JOIN}
WHERE e.source_account_id = %(account)s AND e.event = ANY (%(steps)s::text[])
  AND e.ts >= %(since)s AND e.ts <= %(until)s AND NOT e.is_bot
  AND {EVENT_PERSON} = {person_of_param("user")}
ORDER BY e.ts LIMIT %(limit)s
"""

# Due deliveries of active webhooks, leased for ``lease`` seconds (a sender dying mid-send leaves them due again), fair
# across accounts and webhooks: at most ``per_webhook`` in flight per webhook (``in_flight``: {webhook id: deliveries
# this sender sends now}), and claimed round-robin (each account's first, then each account's second, ...; within an
# account each webhook's first, then second, ...), never in one global order that a dead receiver's backlog can head.
CLAIM_DUE = """
WITH due AS (
    SELECT x.id, x.source_account_id, x.webhook_id, x.next_attempt_at,
           row_number() OVER (PARTITION BY x.webhook_id ORDER BY x.next_attempt_at, x.id) AS rank_in_hook
    FROM np_analytics_webhook_deliveries x JOIN np_analytics_webhooks y ON y.id = x.webhook_id AND y.active
    WHERE x.status = 'pending' AND x.next_attempt_at <= now()
), slots AS (
    SELECT d.*, row_number() OVER (PARTITION BY d.source_account_id ORDER BY d.rank_in_hook, d.next_attempt_at,
                                   d.id) AS rank_in_account
    FROM due d
    WHERE d.rank_in_hook <= %(per_webhook)s - coalesce((%(in_flight)s::jsonb ->> d.webhook_id::text)::int, 0)
), picked AS (
    SELECT id FROM slots ORDER BY rank_in_account, next_attempt_at, id LIMIT %(limit)s
)
UPDATE np_analytics_webhook_deliveries d
SET next_attempt_at = now() + make_interval(secs => %(lease)s)
FROM np_analytics_webhooks w
WHERE w.id = d.webhook_id AND d.id IN (
    SELECT x.id FROM np_analytics_webhook_deliveries x
    WHERE x.id IN (SELECT id FROM picked) AND x.status = 'pending' AND x.next_attempt_at <= now()
    FOR UPDATE OF x SKIP LOCKED
)
RETURNING d.id, d.webhook_id, d.source_account_id, d.event, d.payload, d.attempts, d.created_at, w.url, w.secret
"""
MARK_DELIVERED = """
UPDATE np_analytics_webhook_deliveries
SET status = 'delivered', attempts = attempts + 1, last_status = %(last_status)s, last_error = NULL,
    delivered_at = now()
WHERE id = %(id)s
"""
# Retried after ``delay`` seconds, unless that is past the retry horizon: then given up ('failed').
MARK_FAILED = """
UPDATE np_analytics_webhook_deliveries
SET attempts = attempts + 1, last_status = %(last_status)s, last_error = %(error)s,
    next_attempt_at = now() + make_interval(secs => %(delay)s),
    status = CASE WHEN now() + make_interval(secs => %(delay)s) > created_at + make_interval(secs => %(horizon)s)
                  THEN 'failed' ELSE 'pending' END
WHERE id = %(id)s
RETURNING status
"""


# Settled deliveries (delivered or failed) leave the log after the raw-event retention.
PRUNE_LOG = """
DELETE FROM np_analytics_webhook_deliveries
WHERE status <> 'pending' AND created_at < now() - make_interval(days => %(days)s)
"""


def _hook(row: tuple[Any, ...]) -> dict[str, Any]:
    hid, url, events, event_names, active, created_at, updated_at = row
    return {"id": hid, "url": url, "events": list(events), "event_names": list(event_names), "active": active,
            "created_at": created_at.isoformat(), "updated_at": updated_at.isoformat()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def _one(conn: aiopg.Connection, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        row: tuple[Any, ...] | None = await cur.fetchone()
        return row


async def create_webhook(conn: aiopg.Connection, *, account: str, url: str, events: list[str],
                         event_names: list[str], secret: str, active: bool = True) -> dict[str, Any]:
    row = await _one(conn, INSERT, {"account": account, "url": url, "events": events, "event_names": event_names,
                                    "secret": secret, "active": active})
    assert row is not None
    return _hook(row)


async def update_webhook(conn: aiopg.Connection, webhook_id: int, *, account: str, url: str | None = None,
                         events: list[str] | None = None, event_names: list[str] | None = None,
                         secret: str | None = None, active: bool | None = None) -> dict[str, Any] | None:
    row = await _one(conn, UPDATE, {"id": webhook_id, "account": account, "url": url, "events": events,
                                    "event_names": event_names, "secret": secret, "active": active})
    return _hook(row) if row else None


async def get_webhook(conn: aiopg.Connection, account: str, webhook_id: int) -> dict[str, Any] | None:
    row = await _one(conn, SELECT_ONE, {"account": account, "id": webhook_id})
    return _hook(row) if row else None


async def list_webhooks(conn: aiopg.Connection, account: str, limit: int = 1000) -> list[dict[str, Any]]:
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ALL, {"account": account, "limit": limit})
        return [_hook(row) for row in await cur.fetchall()]


async def count_webhooks(conn: aiopg.Connection, account: str) -> int:
    row = await _one(conn, COUNT, {"account": account})
    return int(row[0]) if row else 0


async def delete_webhook(conn: aiopg.Connection, account: str, webhook_id: int) -> bool:
    """True when a webhook (and its delivery log) was deleted."""
    return await _one(conn, DELETE, {"account": account, "id": webhook_id}) is not None


async def list_deliveries(conn: aiopg.Connection, *, account: str, webhook_id: int, status: str | None,
                          limit: int) -> list[dict[str, Any]]:
    async with conn.cursor() as cur:
        await cur.execute(SELECT_DELIVERIES, {"account": account, "webhook_id": webhook_id, "status": status,
                                              "limit": limit})
        rows = await cur.fetchall()
    return [{"id": str(did), "event": event, "status": status_, "attempts": attempts, "last_status": last_status,
             "last_error": last_error, "payload": payload, "created_at": _iso(created_at),
             "next_attempt_at": _iso(next_at) if status_ == "pending" else None, "delivered_at": _iso(delivered_at)}
            for did, event, status_, attempts, last_status, last_error, payload, created_at, next_at, delivered_at
            in rows]


async def enqueue(conn: aiopg.Connection, *, account: str, event: str, dedupe_key: str,
                  payload: dict[str, Any]) -> None:
    """An outbox row for every active webhook of ``account`` subscribed to ``event`` (once per dedupe key)."""
    async with conn.cursor() as cur:
        await cur.execute(ENQUEUE, {"account": account, "event": event, "dedupe_key": dedupe_key,
                                    "payload": json.dumps(payload, separators=(",", ":"))})


async def subscribed_funnels(conn: aiopg.Connection, accounts: list[str], limit: int) -> list[dict[str, Any]]:
    """Saved funnels of the accounts that have an active ``funnel.completed`` webhook."""
    async with conn.cursor() as cur:
        await cur.execute(SUBSCRIBED_FUNNELS, {"accounts": accounts, "limit": limit})
        rows = await cur.fetchall()
    return [{"account": account, "id": fid, "name": name, "steps": steps, "window_seconds": window}
            for account, fid, name, steps, window in rows]


async def user_step_events(conn: aiopg.Connection, *, account: str, user: str, steps: list[str], since: datetime,
                           until: datetime, limit: int) -> list[tuple[str, datetime]]:
    async with conn.cursor() as cur:
        await cur.execute(USER_STEP_EVENTS, {"account": account, "user": user, "steps": sorted(set(steps)),
                                             "since": since, "until": until, "limit": limit})
        return [(event, ts) for event, ts in await cur.fetchall()]


async def claim_due(conn: aiopg.Connection, *, limit: int, lease: float, per_webhook: int = 1_000_000,
                    in_flight: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """Up to ``limit`` due deliveries, fairly across accounts and webhooks (CLAIM_DUE), leased for ``lease`` s."""
    async with conn.cursor() as cur:
        await cur.execute(CLAIM_DUE, {"limit": limit, "lease": lease, "per_webhook": per_webhook,
                                      "in_flight": json.dumps({str(k): v for k, v in (in_flight or {}).items()})})
        rows = await cur.fetchall()
    return [{"id": str(did), "webhook_id": hid, "account": account, "event": event, "payload": payload,
             "attempts": attempts, "created_at": created_at, "url": url, "secret": secret}
            for did, hid, account, event, payload, attempts, created_at, url, secret in rows]


async def mark_delivered(conn: aiopg.Connection, delivery_id: str, last_status: int) -> None:
    async with conn.cursor() as cur:
        await cur.execute(MARK_DELIVERED, {"id": delivery_id, "last_status": last_status})


async def prune_log(conn: aiopg.Connection, days: int) -> int:
    """Delete settled deliveries older than ``days``; return how many."""
    async with conn.cursor() as cur:
        await cur.execute(PRUNE_LOG, {"days": days})
        return int(cur.rowcount)


async def mark_failed(conn: aiopg.Connection, delivery_id: str, *, last_status: int | None, error: str,
                      delay: float, horizon: float) -> str:
    """Record a failed attempt; return the new status (``pending`` to retry, ``failed`` when given up)."""
    row = await _one(conn, MARK_FAILED, {"id": delivery_id, "last_status": last_status, "error": error[:500],
                                         "delay": delay, "horizon": horizon})
    return str(row[0]) if row else "failed"
