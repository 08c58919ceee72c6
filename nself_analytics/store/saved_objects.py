"""The statements every saved object of an account shares (alerts, report subscriptions): a row of a table with
``source_account_id``, ``id``, ``name``, ``spec`` (jsonb), ``enabled`` and its own state columns.

A :class:`SavedTable` is declared once per table by its store module (store/alerts.py, store/scheduled_reports.py)
with the table's name as a constant (never input) and the function that turns a row into a dict; its statements
are built from those constants at import time and take every value as a parameter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiopg

__all__ = ["SavedTable", "iso", "one"]

Row = tuple[Any, ...]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def one(conn: aiopg.Connection, sql: str, params: dict[str, Any]) -> Row | None:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        row: Row | None = await cur.fetchone()
        return row


def _spec(spec: dict[str, Any]) -> str:
    return json.dumps(spec, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class SavedTable:
    """One table of saved objects: ``table`` and ``columns`` are constants of the store module; ``row`` maps a
    selected row (``columns`` in order) to its dict; ``on_update`` is extra ``SET`` assignments of an update (a
    constant SQL fragment that may read ``%(spec)s``)."""

    table: str
    columns: str
    row: Callable[[Row], dict[str, Any]]
    on_update: str = ""
    sql: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table, columns, scope = self.table, self.columns, "source_account_id = %(account)s"
        object.__setattr__(self, "sql", {
            "insert": f"INSERT INTO {table} (source_account_id, name, spec, enabled) "
                      f"VALUES (%(account)s, %(name)s, %(spec)s::jsonb, %(enabled)s) RETURNING {columns}",
            "update": f"UPDATE {table} SET name = %(name)s, spec = %(spec)s::jsonb, enabled = %(enabled)s, "
                      f"updated_at = now(){self.on_update} WHERE {scope} AND id = %(id)s RETURNING {columns}",
            "one": f"SELECT {columns} FROM {table} WHERE {scope} AND id = %(id)s",
            "all": f"SELECT {columns} FROM {table} WHERE {scope} ORDER BY id LIMIT %(limit)s",
            "count": f"SELECT count(*) FROM {table} WHERE {scope}",
            "delete": f"DELETE FROM {table} WHERE {scope} AND id = %(id)s RETURNING id",
            "due": f"SELECT source_account_id, {columns} FROM {table} WHERE enabled ORDER BY id LIMIT %(limit)s",
        })

    async def create(self, conn: aiopg.Connection, *, account: str, name: str, spec: dict[str, Any],
                     enabled: bool) -> dict[str, Any]:
        row = await one(conn, self.sql["insert"], {"account": account, "name": name, "spec": _spec(spec),
                                                   "enabled": enabled})
        assert row is not None
        return self.row(row)

    async def update(self, conn: aiopg.Connection, object_id: int, *, account: str, name: str, spec: dict[str, Any],
                     enabled: bool) -> dict[str, Any] | None:
        row = await one(conn, self.sql["update"], {"id": object_id, "account": account, "name": name,
                                                   "spec": _spec(spec), "enabled": enabled})
        return self.row(row) if row else None

    async def get(self, conn: aiopg.Connection, account: str, object_id: int) -> dict[str, Any] | None:
        row = await one(conn, self.sql["one"], {"account": account, "id": object_id})
        return self.row(row) if row else None

    async def listed(self, conn: aiopg.Connection, account: str, limit: int = 1000) -> list[dict[str, Any]]:
        async with conn.cursor() as cur:
            await cur.execute(self.sql["all"], {"account": account, "limit": limit})
            return [self.row(row) for row in await cur.fetchall()]

    async def count(self, conn: aiopg.Connection, account: str) -> int:
        row = await one(conn, self.sql["count"], {"account": account})
        return int(row[0]) if row else 0

    async def delete(self, conn: aiopg.Connection, account: str, object_id: int) -> bool:
        """True when the object (and what cascades from it) was deleted."""
        return await one(conn, self.sql["delete"], {"account": account, "id": object_id}) is not None

    async def due(self, conn: aiopg.Connection, limit: int) -> list[dict[str, Any]]:
        """The enabled objects of every account, each with its ``account``."""
        async with conn.cursor() as cur:
            await cur.execute(self.sql["due"], {"limit": limit})
            return [{"account": row[0], **self.row(row[1:])} for row in await cur.fetchall()]
