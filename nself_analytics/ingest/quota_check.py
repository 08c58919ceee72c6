"""The quota check: which rules apply to a user and event, and how much of each the user has used.

Usage comes from the per-user Redis counters the ingest script increments on each accepted track
(only when ANALYTICS_QUOTA_ENABLED=true), for the period bucket holding ``now``. A rule allows the
action while ``used < limit``; when several rules apply, all must allow it and the one with the
least remaining is reported. Every denying rule records its first crossing per user and period.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiopg
import redis.asyncio as aioredis
import structlog

from ..store import quotas
from .counter_keys import counter_key, period_bounds

__all__ = ["check_quota", "record_crossings"]

log = structlog.get_logger("nself_analytics.ingest.quota_check")


async def check_quota(conn: aiopg.Connection, client: aioredis.Redis, *, account: str, user_id: str, event: str,
                      now: datetime) -> dict[str, Any]:
    """The check result: ``allowed``, ``used``, ``limit``, ``remaining``, ``resets_at`` (+ each rule)."""
    rules = await quotas.matching_rules(conn, account=account, event=event, user_id=user_id)
    if not rules:
        return {"allowed": True, "used": None, "limit": None, "remaining": None, "resets_at": None,
                "period": None, "quota_id": None, "rules": []}
    keys = [counter_key(rule["period"], event, now, user_id, account) for rule in rules]
    values = await client.mget(keys)
    results = []
    for rule, value in zip(rules, values, strict=True):
        used = int(value or 0)
        period_start, resets_at = period_bounds(rule["period"], now)
        assert resets_at is not None  # rule periods are minute/hour/day/month
        results.append({"quota_id": rule["id"], "period": rule["period"], "segment": rule["segment"],
                        "used": used, "limit": rule["limit"], "remaining": max(0, rule["limit"] - used),
                        "allowed": used < rule["limit"], "resets_at": resets_at.isoformat(),
                        "period_start": period_start})
    for result in results:
        if not result["allowed"]:
            first = await quotas.record_violation(conn, account=account, quota_id=result["quota_id"],
                                                  user_id=user_id, period_start=result["period_start"],
                                                  used=result["used"], limit=result["limit"])
            if first:
                log.info("quota_exceeded", quota_id=result["quota_id"], user_id=user_id, used=result["used"])
    for result in results:
        result["period_start"] = result["period_start"].isoformat()
    worst = min(results, key=lambda r: (r["remaining"], r["limit"], r["quota_id"]))
    return {"allowed": all(r["allowed"] for r in results), "used": worst["used"], "limit": worst["limit"],
            "remaining": worst["remaining"], "resets_at": worst["resets_at"], "period": worst["period"],
            "quota_id": worst["quota_id"], "rules": results}


async def record_crossings(conn: aiopg.Connection, client: aioredis.Redis, *, account: str,
                           pairs: set[tuple[str, str]], now: datetime) -> int:
    """After a drained batch: record the first crossing (usage above the limit) of every rule that applies
    to one of its (event, user) pairs, whether or not anyone called /quota/check. Returns crossings recorded."""
    rules = await quotas.rules_for_pairs(conn, account=account, pairs=sorted(pairs))
    if not rules:
        return 0
    values = await client.mget([counter_key(period, event, now, user_id, account)
                                for event, user_id, _id, _limit, period in rules])
    recorded = 0
    for (_event, user_id, rule_id, limit, period), value in zip(rules, values, strict=True):
        used = int(value or 0)
        if used > limit:
            period_start, _resets_at = period_bounds(period, now)
            if await quotas.record_violation(conn, account=account, quota_id=rule_id, user_id=user_id,
                                             period_start=period_start, used=used, limit=limit):
                recorded += 1
                log.info("quota_exceeded", quota_id=rule_id, user_id=user_id, used=used)
    return recorded
