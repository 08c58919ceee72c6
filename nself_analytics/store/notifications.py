"""The outbox of chat and email notifications (np_analytics_notifications); webhooks have their own
(store/webhooks.py).

A row is written by the statement that decides to notify (an alert's check: store/alerts.py ``record_check``), with
a unique ``dedupe_key``, so a fact written twice notifies once. The sender (pipeline/notify/outbox.py) claims due
rows with a lease (``next_attempt_at`` moves past the send's timeout): a sender dying mid-send leaves them due
again. ``source`` names the producer (``alert``; reports may add theirs).
"""

from __future__ import annotations

import json
from typing import Any

import aiopg

__all__ = ["claim_due", "enqueue", "list_for", "mark_failed", "mark_sent", "prune"]

ENQUEUE = """
INSERT INTO np_analytics_notifications (source_account_id, source, dedupe_key, channel, target, payload)
VALUES (%(account)s, %(source)s, %(dedupe_key)s, %(channel)s, %(target)s, %(payload)s::jsonb)
ON CONFLICT (dedupe_key) DO NOTHING
"""
CLAIM_DUE = """
UPDATE np_analytics_notifications SET next_attempt_at = now() + make_interval(secs => %(lease)s)
WHERE id IN (SELECT id FROM np_analytics_notifications WHERE status = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, source_account_id, channel, target, payload, attempts
"""
MARK_SENT = "UPDATE np_analytics_notifications SET status = 'sent', attempts = attempts + 1, sent_at = now(), " \
            "last_error = NULL WHERE id = %(id)s"
MARK_FAILED = """
UPDATE np_analytics_notifications SET attempts = attempts + 1, last_error = %(error)s,
    next_attempt_at = now() + make_interval(secs => %(delay)s),
    status = CASE WHEN attempts + 1 >= %(max_attempts)s THEN 'failed' ELSE 'pending' END
WHERE id = %(id)s RETURNING status
"""
LIST_FOR = """
SELECT id, channel, target, status, attempts, last_error, created_at, sent_at FROM np_analytics_notifications
WHERE source_account_id = %(account)s AND dedupe_key LIKE %(prefix)s ORDER BY id DESC LIMIT %(limit)s
"""
PRUNE = """
DELETE FROM np_analytics_notifications
WHERE status <> 'pending' AND created_at < now() - make_interval(days => %(days)s)
"""


async def enqueue(conn: aiopg.Connection, *, account: str, source: str, dedupe_key: str, channel: str, target: str,
                  payload: dict[str, Any]) -> None:
    async with conn.cursor() as cur:
        await cur.execute(ENQUEUE, {"account": account, "source": source, "dedupe_key": dedupe_key,
                                    "channel": channel, "target": target,
                                    "payload": json.dumps(payload, separators=(",", ":"))})


async def claim_due(conn: aiopg.Connection, *, limit: int, lease: float) -> list[dict[str, Any]]:
    async with conn.cursor() as cur:
        await cur.execute(CLAIM_DUE, {"limit": limit, "lease": lease})
        rows = await cur.fetchall()
    return [{"id": nid, "account": account, "channel": channel, "target": target, "payload": payload,
             "attempts": attempts} for nid, account, channel, target, payload, attempts in rows]


async def mark_sent(conn: aiopg.Connection, notification_id: int) -> None:
    async with conn.cursor() as cur:
        await cur.execute(MARK_SENT, {"id": notification_id})


async def mark_failed(conn: aiopg.Connection, notification_id: int, *, error: str, delay: float,
                      max_attempts: int) -> str:
    """Record a failed attempt; return the new status (``pending`` to retry, ``failed`` when given up)."""
    async with conn.cursor() as cur:
        await cur.execute(MARK_FAILED, {"id": notification_id, "error": error[:500], "delay": delay,
                                        "max_attempts": max_attempts})
        row = await cur.fetchone()
    return str(row[0]) if row else "failed"


async def list_for(conn: aiopg.Connection, *, account: str, prefix: str, limit: int) -> list[dict[str, Any]]:
    """The notifications whose dedupe key starts with ``prefix`` (an alert's: ``alert:<id>:``), newest first."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    async with conn.cursor() as cur:
        await cur.execute(LIST_FOR, {"account": account, "prefix": escaped + "%", "limit": limit})
        rows = await cur.fetchall()
    return [{"id": nid, "channel": channel, "target": target, "status": status, "attempts": attempts,
             "last_error": error, "created_at": created.isoformat(), "sent_at": sent.isoformat() if sent else None}
            for nid, channel, target, status, attempts, error, created, sent in rows]


async def prune(conn: aiopg.Connection, days: int) -> int:
    """Delete settled notifications older than ``days``; return how many."""
    async with conn.cursor() as cur:
        await cur.execute(PRUNE, {"days": days})
        return int(cur.rowcount)
