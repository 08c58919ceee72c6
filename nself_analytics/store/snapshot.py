"""The SQL of ``nself-analytics backup`` and ``restore`` (host/backup.py), on a psycopg2 connection.

A backup opens a REPEATABLE READ transaction, exports its snapshot (``pg_export_snapshot``) for ``pg_dump
--snapshot`` and counts what the dump holds in that same snapshot, so the manifest's counts are the dump's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DATA_TABLES", "SnapshotFacts", "begin_snapshot", "non_empty_tables", "reset_schema", "server_version"]

# The tables whose rows make a database "in use": a restore refuses to replace them unless forced.
DATA_TABLES = ("np_analytics_events", "np_analytics_users", "np_analytics_funnels", "np_analytics_webhooks",
               "np_analytics_quotas")
_MIGRATIONS = "np_analytics_yoyo_migration"


class SnapshotFacts(dict[str, Any]):
    """snapshot (its id for pg_dump), server_version (number), schema_version (last migration), counts."""


def _exists(cur: Any, table: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    return bool(cur.fetchone()[0])


def begin_snapshot(conn: Any) -> SnapshotFacts:
    """Start the snapshot transaction on ``conn`` (keep it open while pg_dump runs) and read its facts."""
    conn.autocommit = False
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_export_snapshot(), current_setting('server_version_num')::int")
        snapshot, server_version = cur.fetchone()
        counts = {}
        for table in ("np_analytics_events", "np_analytics_users"):
            if _exists(cur, table):
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table.removeprefix("np_analytics_")] = int(cur.fetchone()[0])
        schema_version = None
        if _exists(cur, _MIGRATIONS):
            cur.execute(f"SELECT max(migration_id) FROM {_MIGRATIONS}")
            schema_version = cur.fetchone()[0]
    return SnapshotFacts(snapshot=snapshot, server_version=int(server_version), schema_version=schema_version,
                         counts=counts)


def server_version(cur: Any) -> int:
    cur.execute("SELECT current_setting('server_version_num')::int")
    return int(cur.fetchone()[0])


def non_empty_tables(cur: Any) -> list[str]:
    """The data tables of the cursor's database that hold a row (none: empty, or not built yet)."""
    found = []
    for table in DATA_TABLES:
        if _exists(cur, table):
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
            if cur.fetchone()[0]:
                found.append(table)
    return found


def reset_schema(cur: Any) -> None:
    """Drop every object of the public schema (what a restore replaces), leaving it empty."""
    cur.execute("DROP SCHEMA public CASCADE")
    cur.execute("CREATE SCHEMA public")
