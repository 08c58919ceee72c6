"""Saved funnel definitions (np_analytics_funnels), per source account."""

from __future__ import annotations

import json
from typing import Any

import aiopg

__all__ = ["create_funnel", "delete_funnel", "get_funnel", "list_funnels"]

_COLUMNS = "id, name, steps, window_seconds, breakdown, created_at, updated_at"

INSERT = f"""
INSERT INTO np_analytics_funnels (source_account_id, name, steps, window_seconds, breakdown)
VALUES (%(account)s, %(name)s, %(steps)s::jsonb, %(window_seconds)s, %(breakdown)s)
RETURNING {_COLUMNS}
"""
SELECT_ONE = f"SELECT {_COLUMNS} FROM np_analytics_funnels WHERE source_account_id = %(account)s AND id = %(id)s"
SELECT_ALL = f"""
SELECT {_COLUMNS} FROM np_analytics_funnels WHERE source_account_id = %(account)s ORDER BY id LIMIT %(limit)s
"""
DELETE = "DELETE FROM np_analytics_funnels WHERE source_account_id = %(account)s AND id = %(id)s RETURNING id"


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    fid, name, steps, window_seconds, breakdown, created_at, updated_at = row
    return {"id": fid, "name": name, "steps": steps, "window_seconds": window_seconds, "breakdown": breakdown,
            "created_at": created_at.isoformat(), "updated_at": updated_at.isoformat()}


async def create_funnel(conn: aiopg.Connection, *, account: str, name: str, steps: list[str], window_seconds: int,
                        breakdown: str | None) -> dict[str, Any]:
    """Store a definition; return it as stored."""
    async with conn.cursor() as cur:
        await cur.execute(INSERT, {"account": account, "name": name, "steps": json.dumps(steps),
                                   "window_seconds": window_seconds, "breakdown": breakdown})
        return _row(await cur.fetchone())


async def get_funnel(conn: aiopg.Connection, account: str, funnel_id: int) -> dict[str, Any] | None:
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ONE, {"account": account, "id": funnel_id})
        row = await cur.fetchone()
    return _row(row) if row else None


async def list_funnels(conn: aiopg.Connection, account: str, limit: int = 1000) -> list[dict[str, Any]]:
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ALL, {"account": account, "limit": limit})
        return [_row(row) for row in await cur.fetchall()]


async def delete_funnel(conn: aiopg.Connection, account: str, funnel_id: int) -> bool:
    """True when a definition was deleted."""
    async with conn.cursor() as cur:
        await cur.execute(DELETE, {"account": account, "id": funnel_id})
        return await cur.fetchone() is not None
