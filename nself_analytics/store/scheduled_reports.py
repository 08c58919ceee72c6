"""Scheduled report subscriptions (np_analytics_reports).

A period is sent once: ``claim_period`` moves ``last_period_start`` forward in the transaction that writes the
period's notifications (store/notifications.py), with a condition that only one claimer of a period can meet, so
N instances (or a retried job) send it once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiopg

from .tx import transaction

__all__ = ["claim_period", "count_reports", "create_report", "delete_report", "due_reports", "get_report",
           "list_reports", "update_report"]

_COLUMNS = "id, name, spec, enabled, last_period_start, last_sent_at, created_at, updated_at"

INSERT = f"""
INSERT INTO np_analytics_reports (source_account_id, name, spec, enabled)
VALUES (%(account)s, %(name)s, %(spec)s::jsonb, %(enabled)s) RETURNING {_COLUMNS}
"""
UPDATE = f"""
UPDATE np_analytics_reports SET name = %(name)s, spec = %(spec)s::jsonb, enabled = %(enabled)s, updated_at = now()
WHERE source_account_id = %(account)s AND id = %(id)s RETURNING {_COLUMNS}
"""
SELECT_ONE = f"SELECT {_COLUMNS} FROM np_analytics_reports WHERE source_account_id = %(account)s AND id = %(id)s"
SELECT_ALL = f"""
SELECT {_COLUMNS} FROM np_analytics_reports WHERE source_account_id = %(account)s ORDER BY id LIMIT %(limit)s
"""
COUNT = "SELECT count(*) FROM np_analytics_reports WHERE source_account_id = %(account)s"
DELETE = "DELETE FROM np_analytics_reports WHERE source_account_id = %(account)s AND id = %(id)s RETURNING id"
DUE = f"SELECT source_account_id, {_COLUMNS} FROM np_analytics_reports WHERE enabled ORDER BY id LIMIT %(limit)s"
CLAIM = """
UPDATE np_analytics_reports SET last_period_start = %(start)s, last_sent_at = now()
WHERE id = %(id)s AND (last_period_start IS NULL OR last_period_start < %(start)s) RETURNING id
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _report(row: tuple[Any, ...]) -> dict[str, Any]:
    rid, name, spec, enabled, period, sent, created, updated = row
    return {"id": rid, "name": name, "spec": spec, "enabled": enabled, "last_period_start": _iso(period),
            "last_sent_at": _iso(sent), "created_at": _iso(created), "updated_at": _iso(updated)}


async def _one(conn: aiopg.Connection, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        row: tuple[Any, ...] | None = await cur.fetchone()
        return row


def _spec(spec: dict[str, Any]) -> str:
    return json.dumps(spec, separators=(",", ":"), sort_keys=True)


async def create_report(conn: aiopg.Connection, *, account: str, name: str, spec: dict[str, Any],
                        enabled: bool) -> dict[str, Any]:
    row = await _one(conn, INSERT, {"account": account, "name": name, "spec": _spec(spec), "enabled": enabled})
    assert row is not None
    return _report(row)


async def update_report(conn: aiopg.Connection, report_id: int, *, account: str, name: str, spec: dict[str, Any],
                        enabled: bool) -> dict[str, Any] | None:
    row = await _one(conn, UPDATE, {"id": report_id, "account": account, "name": name, "spec": _spec(spec),
                                    "enabled": enabled})
    return _report(row) if row else None


async def get_report(conn: aiopg.Connection, account: str, report_id: int) -> dict[str, Any] | None:
    row = await _one(conn, SELECT_ONE, {"account": account, "id": report_id})
    return _report(row) if row else None


async def list_reports(conn: aiopg.Connection, account: str, limit: int = 1000) -> list[dict[str, Any]]:
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ALL, {"account": account, "limit": limit})
        return [_report(row) for row in await cur.fetchall()]


async def count_reports(conn: aiopg.Connection, account: str) -> int:
    row = await _one(conn, COUNT, {"account": account})
    return int(row[0]) if row else 0


async def delete_report(conn: aiopg.Connection, account: str, report_id: int) -> bool:
    return await _one(conn, DELETE, {"account": account, "id": report_id}) is not None


async def due_reports(conn: aiopg.Connection, limit: int) -> list[dict[str, Any]]:
    """The enabled reports of every account (the scheduler decides which period each is due for)."""
    async with conn.cursor() as cur:
        await cur.execute(DUE, {"limit": limit})
        return [{"account": row[0], **_report(row[1:])} for row in await cur.fetchall()]


async def claim_period(conn: aiopg.Connection, report_id: int, start: datetime,
                       notify: Callable[[], Awaitable[None]]) -> bool:
    """Mark the period starting at ``start`` sent and write its notifications (``notify`` writes them on ``conn``)
    in one transaction; False (nothing written) when that period (or a later one) was claimed already."""
    async with transaction(conn) as cur:
        await cur.execute(CLAIM, {"id": report_id, "start": start})
        if await cur.fetchone() is None:
            return False
        await notify()
    return True
