"""Schema migrations with yoyo: ``build`` applies every pending file of ``migrations/``.

The files live in the repository's ``migrations/`` folder (new ones are added there, never into the package);
a wheel or sdist installs them as data under ``<prefix>/share/nself-analytics/migrations`` (setup.cfg
``data_files``), found through the installed distribution's file list, so an installed package needs no
checkout. A checkout (or an editable install) is recognized by ``plugin.yaml`` beside ``migrations/``.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import structlog
from yoyo import get_backend, read_migrations

__all__ = ["apply_migrations", "migrations_dir", "pending_migrations", "unknown_migrations"]

log = structlog.get_logger("nself_analytics.host.migrate")

DISTRIBUTION = "nself-analytics"
INSTALLED_SUBDIR = ("share", "nself-analytics", "migrations")


def migrations_dir() -> Path:
    """The folder of the migration files: the checkout's, else the one the installed distribution holds."""
    root = Path(__file__).resolve().parents[2]
    if (root / "plugin.yaml").is_file() and (root / "migrations").is_dir():
        return root / "migrations"
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if tuple(file.parts[-4:-1]) == INSTALLED_SUBDIR and file.name.endswith(".sql"):
            return Path(str(file.locate())).resolve().parent
    raise FileNotFoundError(f"no migrations: neither {root / 'migrations'} nor an installed {DISTRIBUTION} with "
                            f"{'/'.join(INSTALLED_SUBDIR)}")


def _backend(database_url: str) -> Any:
    # yoyo picks psycopg2 for postgresql:// (the driver aiopg uses too)
    return get_backend(database_url, migration_table="np_analytics_yoyo_migration")


def apply_migrations(database_url: str) -> list[str]:
    """Apply pending migrations under yoyo's lock; return the ids applied (empty when up to date)."""
    backend = _backend(database_url)
    migrations = read_migrations(str(migrations_dir()))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    applied = [m.id for m in pending]
    log.info("migrations_applied", count=len(applied), ids=applied)
    return applied


def pending_migrations(database_url: str) -> list[str]:
    """Ids of the migrations not yet applied (start refuses to run behind them: host/lifecycle.py)."""
    backend = _backend(database_url)
    return [m.id for m in backend.to_apply(read_migrations(str(migrations_dir())))]


def unknown_migrations(database_url: str) -> int:
    """How many applied migrations this version does not have: the database was built by a newer version, whose
    schema this code may misread (start refuses it: host/lifecycle.py). yoyo records a migration by a hash of its id."""
    backend = _backend(database_url)
    known = {m.hash for m in read_migrations(str(migrations_dir()))}
    return sum(1 for applied in backend.get_applied_migration_hashes() if applied not in known)
