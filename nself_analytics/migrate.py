"""Schema migrations with yoyo: ``build`` applies every pending file of ``migrations/``."""

from __future__ import annotations

from pathlib import Path

import structlog
from yoyo import get_backend, read_migrations

__all__ = ["MIGRATIONS_DIR", "apply_migrations", "pending_migrations"]

log = structlog.get_logger("nself_analytics.migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _backend(database_url: str):  # type: ignore[no-untyped-def]
    # yoyo picks psycopg2 for postgresql:// (the driver aiopg uses too)
    return get_backend(database_url, migration_table="np_analytics_yoyo_migration")


def apply_migrations(database_url: str) -> list[str]:
    """Apply pending migrations under yoyo's lock; return the ids applied (empty when up to date)."""
    backend = _backend(database_url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    applied = [m.id for m in pending]
    log.info("migrations_applied", count=len(applied), ids=applied)
    return applied


def pending_migrations(database_url: str) -> list[str]:
    """Ids of the migrations not yet applied."""
    backend = _backend(database_url)
    return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))]
