"""Quota rules (np_analytics_quotas) and their recorded violations (np_analytics_quota_violations).

A rule applies to a user when its ``segment`` is contained in the user's traits
(``traits @> segment``; a user with no profile has ``{}``, so only rules with an empty segment
apply). Rules are read from Postgres on every check, so a change takes effect at once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiopg

__all__ = [
    "create_rule",
    "delete_rule",
    "get_rule",
    "list_rules",
    "list_violations",
    "matching_rules",
    "record_violation",
    "update_rule",
]

_COLUMNS = 'id, event, segment, "limit", period, created_at, updated_at'

INSERT = f"""
INSERT INTO np_analytics_quotas (source_account_id, event, segment, "limit", period)
VALUES (%(account)s, %(event)s, %(segment)s::jsonb, %(limit)s, %(period)s)
RETURNING {_COLUMNS}
"""
UPDATE = f"""
UPDATE np_analytics_quotas
SET event = %(event)s, segment = %(segment)s::jsonb, "limit" = %(limit)s, period = %(period)s, updated_at = now()
WHERE source_account_id = %(account)s AND id = %(id)s
RETURNING {_COLUMNS}
"""
SELECT_ONE = f"SELECT {_COLUMNS} FROM np_analytics_quotas WHERE source_account_id = %(account)s AND id = %(id)s"
SELECT_ALL = f"""
SELECT {_COLUMNS} FROM np_analytics_quotas
WHERE source_account_id = %(account)s AND (%(event)s::text IS NULL OR event = %(event)s::text)
ORDER BY id LIMIT %(limit)s
"""
DELETE = "DELETE FROM np_analytics_quotas WHERE source_account_id = %(account)s AND id = %(id)s RETURNING id"

MATCHING = f"""
SELECT {", ".join("q." + c.strip() for c in _COLUMNS.split(","))}
FROM np_analytics_quotas q
LEFT JOIN np_analytics_users u ON u.source_account_id = q.source_account_id AND u.user_id = %(user_id)s
WHERE q.source_account_id = %(account)s AND q.event = %(event)s
  AND coalesce(u.traits, '{{}}'::jsonb) @> q.segment
ORDER BY q.id
"""

# The rules that apply to each (event, user) pair of a drained batch, segments matched against traits.
MATCHING_PAIRS = """
SELECT p.event, p.user_id, q.id, q."limit", q.period
FROM jsonb_to_recordset(%(pairs)s::jsonb) AS p(event text, user_id text)
JOIN np_analytics_quotas q ON q.source_account_id = %(account)s AND q.event = p.event
LEFT JOIN np_analytics_users u ON u.source_account_id = q.source_account_id AND u.user_id = p.user_id
WHERE coalesce(u.traits, '{}'::jsonb) @> q.segment
"""

# The first crossing per (rule, user, period) is kept; later ones change nothing. A first crossing writes the
# quota.exceeded outbox rows of the account's webhooks in the same statement (the same transaction).
INSERT_VIOLATION = """
WITH v AS (
    INSERT INTO np_analytics_quota_violations (source_account_id, quota_id, user_id, period_start, used, "limit")
    VALUES (%(account)s, %(quota_id)s, %(user_id)s, %(period_start)s, %(used)s, %(limit)s)
    ON CONFLICT (quota_id, user_id, period_start) DO NOTHING
    RETURNING id, source_account_id, quota_id, user_id, period_start, used, "limit"
), hooked AS (
    INSERT INTO np_analytics_webhook_deliveries (id, source_account_id, webhook_id, event, dedupe_key, payload)
    SELECT gen_random_uuid(), v.source_account_id, w.id, 'quota.exceeded', 'quota:' || v.id,
           jsonb_build_object('violation_id', v.id, 'quota_id', v.quota_id, 'event', q.event, 'period', q.period,
                              'segment', q.segment, 'user_id', v.user_id, 'period_start', v.period_start,
                              'used', v.used, 'limit', v."limit")
    FROM v JOIN np_analytics_quotas q ON q.id = v.quota_id
    JOIN np_analytics_webhooks w ON w.source_account_id = v.source_account_id AND w.active
         AND 'quota.exceeded' = ANY (w.events)
    ON CONFLICT (webhook_id, dedupe_key) DO NOTHING
)
SELECT id FROM v
"""
SELECT_VIOLATIONS = """
SELECT v.id, v.quota_id, q.event, v.user_id, v.period_start, q.period, v.used, v."limit", v.created_at
FROM np_analytics_quota_violations v JOIN np_analytics_quotas q ON q.id = v.quota_id
WHERE v.source_account_id = %(account)s
  AND (%(user_id)s::text IS NULL OR v.user_id = %(user_id)s::text)
  AND (%(quota_id)s::bigint IS NULL OR v.quota_id = %(quota_id)s::bigint)
ORDER BY v.created_at DESC, v.id DESC LIMIT %(limit)s
"""


def _rule(row: tuple[Any, ...]) -> dict[str, Any]:
    rid, event, segment, limit, period, created_at, updated_at = row
    return {"id": rid, "event": event, "segment": segment, "limit": limit, "period": period,
            "created_at": created_at.isoformat(), "updated_at": updated_at.isoformat()}


async def _one(conn: aiopg.Connection, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        row: tuple[Any, ...] | None = await cur.fetchone()
        return row


async def create_rule(conn: aiopg.Connection, *, account: str, event: str, segment: dict[str, Any], limit: int,
                      period: str) -> dict[str, Any]:
    row = await _one(conn, INSERT, {"account": account, "event": event, "segment": json.dumps(segment),
                                    "limit": limit, "period": period})
    assert row is not None
    return _rule(row)


async def update_rule(conn: aiopg.Connection, rule_id: int, *, account: str, event: str, segment: dict[str, Any],
                      limit: int, period: str) -> dict[str, Any] | None:
    row = await _one(conn, UPDATE, {"id": rule_id, "account": account, "event": event,
                                    "segment": json.dumps(segment), "limit": limit, "period": period})
    return _rule(row) if row else None


async def get_rule(conn: aiopg.Connection, account: str, rule_id: int) -> dict[str, Any] | None:
    row = await _one(conn, SELECT_ONE, {"account": account, "id": rule_id})
    return _rule(row) if row else None


async def delete_rule(conn: aiopg.Connection, account: str, rule_id: int) -> bool:
    return await _one(conn, DELETE, {"account": account, "id": rule_id}) is not None


async def list_rules(conn: aiopg.Connection, account: str, event: str | None = None,
                     limit: int = 1000) -> list[dict[str, Any]]:
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ALL, {"account": account, "event": event, "limit": limit})
        return [_rule(row) for row in await cur.fetchall()]


async def matching_rules(conn: aiopg.Connection, *, account: str, event: str, user_id: str) -> list[dict[str, Any]]:
    """The rules for ``event`` whose segment the user's traits contain."""
    async with conn.cursor() as cur:
        await cur.execute(MATCHING, {"account": account, "event": event, "user_id": user_id})
        return [_rule(row) for row in await cur.fetchall()]


async def rules_for_pairs(conn: aiopg.Connection, *, account: str,
                          pairs: list[tuple[str, str]]) -> list[tuple[str, str, int, int, str]]:
    """(event, user_id, rule id, limit, period) for every rule applying to one of the (event, user) pairs."""
    payload = json.dumps([{"event": e, "user_id": u} for e, u in pairs])
    async with conn.cursor() as cur:
        await cur.execute(MATCHING_PAIRS, {"account": account, "pairs": payload})
        return [tuple(row) for row in await cur.fetchall()]


async def record_violation(conn: aiopg.Connection, *, account: str, quota_id: int, user_id: str,
                           period_start: datetime, used: int, limit: int) -> bool:
    """Record a crossing; True when it is the first of this rule, user and period."""
    row = await _one(conn, INSERT_VIOLATION, {"account": account, "quota_id": quota_id, "user_id": user_id,
                                              "period_start": period_start, "used": used, "limit": limit})
    return row is not None


async def list_violations(conn: aiopg.Connection, *, account: str, user_id: str | None = None,
                          quota_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    async with conn.cursor() as cur:
        await cur.execute(SELECT_VIOLATIONS, {"account": account, "user_id": user_id, "quota_id": quota_id,
                                              "limit": limit})
        rows = await cur.fetchall()
    return [{"id": vid, "quota_id": qid, "event": event, "user_id": uid, "period": period,
             "period_start": period_start.isoformat(), "used": used, "limit": limit_,
             "created_at": created_at.isoformat()}
            for vid, qid, event, uid, period_start, period, used, limit_, created_at in rows]
