"""The suppression list of erased ids (migration 0102) and the audit log of the erasures.

An id is never stored here: only ``hex(sha256(salt LF account LF id))`` (:func:`id_hash`, the same as the SQL
function ``np_analytics_id_hash``), with the install's salt of ``np_analytics_privacy_salt``. The drain's batch
statement drops suppressed ids with :func:`suppressed_sql` (store/events.py); the ingest service checks a Redis
copy of the hashes (ingest/suppressed.py), which the leader keeps equal to this table.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import aiopg
import msgspec

__all__ = ["AuditRow", "Suppression", "add", "all_hashes", "audit", "id_hash", "lift", "listing", "salt",
           "suppressed_sql"]


class Suppression(msgspec.Struct, frozen=True):
    """One suppressed id: its hash (never the id), the erasure job that suppressed it, and when."""

    id_hash: str
    job_id: str | None
    created_at: datetime


class AuditRow(msgspec.Struct, frozen=True):
    at: datetime
    actor: str
    action: str
    job_id: str | None
    subject_hash: str | None
    detail: dict[str, Any]


def id_hash(salt_text: str, account: str, distinct_id: str) -> str:
    """The suppression key of ``distinct_id`` in ``account`` (equal to SQL ``np_analytics_id_hash``)."""
    return hashlib.sha256(f"{salt_text}\n{account}\n{distinct_id}".encode("utf-8", "surrogatepass")).hexdigest()


def suppressed_sql(account: str, ids: tuple[str, ...], salt_sql: str = "(SELECT salt FROM np_analytics_privacy_salt)"
                   ) -> str:
    """SQL true when one of the SQL expressions ``ids`` (NULLs ignored) is suppressed in SQL ``account``; the salt
    read once per statement when ``salt_sql`` names a CTE column."""
    hashes = ", ".join(f"encode(sha256(convert_to({salt_sql} || E'\\n' || {account} || E'\\n' || {i}, 'UTF8')), "
                       "'hex')" for i in ids)
    return (f"EXISTS (SELECT 1 FROM np_analytics_suppressions sp WHERE sp.source_account_id = {account} "
            f"AND sp.id_hash IN ({hashes}))")


async def salt(conn: aiopg.Connection) -> str:
    async with conn.cursor() as cur:
        await cur.execute("SELECT salt FROM np_analytics_privacy_salt")
        (value,) = await cur.fetchone()
    return str(value)


async def add(cur: aiopg.Cursor, account: str, ids: list[str], job_id: str) -> int:
    """Suppress ``ids`` of ``account`` (inside the caller's transaction); return how many were new."""
    await cur.execute("""
        INSERT INTO np_analytics_suppressions (source_account_id, id_hash, job_id)
        SELECT %(account)s, np_analytics_id_hash(%(account)s, i), %(job)s FROM unnest(%(ids)s::text[]) AS i
        ON CONFLICT DO NOTHING""", {"account": account, "ids": ids, "job": job_id})
    return int(cur.rowcount)


async def lift(conn: aiopg.Connection, account: str, distinct_id: str, actor: str) -> bool:
    """Lift the suppression of ``distinct_id`` (audited); False when it was not suppressed."""
    async with conn.cursor() as cur:
        await cur.execute("""
            WITH gone AS (
                DELETE FROM np_analytics_suppressions
                WHERE source_account_id = %(account)s AND id_hash = np_analytics_id_hash(%(account)s, %(id)s)
                RETURNING id_hash, job_id
            ), logged AS (
                INSERT INTO np_analytics_audit (source_account_id, actor, action, job_id, subject_hash)
                SELECT %(account)s, %(actor)s, 'suppression_lifted', job_id, id_hash FROM gone
            )
            SELECT count(*) FROM gone""", {"account": account, "id": distinct_id, "actor": actor})
        (count,) = await cur.fetchone()
    return bool(count)


async def listing(conn: aiopg.Connection, account: str, limit: int, offset: int) -> tuple[list[Suppression], int]:
    """The account's suppressions, newest first, and their total."""
    async with conn.cursor() as cur:
        await cur.execute("""
            SELECT id_hash, job_id::text, created_at FROM np_analytics_suppressions WHERE source_account_id = %(a)s
            ORDER BY created_at DESC, id_hash LIMIT %(limit)s OFFSET %(offset)s""",
                          {"a": account, "limit": limit, "offset": offset})
        rows = [Suppression(*row) for row in await cur.fetchall()]
        await cur.execute("SELECT count(*) FROM np_analytics_suppressions WHERE source_account_id = %(a)s",
                          {"a": account})
        (total,) = await cur.fetchone()
    return rows, int(total)


async def all_hashes(conn: aiopg.Connection) -> list[str]:
    """Every suppressed hash of every account (the Redis copy the ingest service checks)."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT id_hash FROM np_analytics_suppressions ORDER BY id_hash")
        return [h for (h,) in await cur.fetchall()]


async def audit(cur: aiopg.Cursor, *, account: str, actor: str, action: str, job_id: str | None,
                subject_hash: str | None, detail: dict[str, Any] | None = None) -> None:
    await cur.execute("""
        INSERT INTO np_analytics_audit (source_account_id, actor, action, job_id, subject_hash, detail)
        VALUES (%(account)s, %(actor)s, %(action)s, %(job)s, %(subject)s, %(detail)s::jsonb)""",
                      {"account": account, "actor": actor, "action": action, "job": job_id, "subject": subject_hash,
                       "detail": json.dumps(detail or {})})


async def audit_log(conn: aiopg.Connection, account: str, limit: int = 100) -> list[AuditRow]:
    async with conn.cursor() as cur:
        await cur.execute("""
            SELECT at, actor, action, job_id::text, subject_hash, detail FROM np_analytics_audit
            WHERE source_account_id = %(a)s ORDER BY id DESC LIMIT %(limit)s""", {"a": account, "limit": limit})
        return [AuditRow(*row) for row in await cur.fetchall()]
