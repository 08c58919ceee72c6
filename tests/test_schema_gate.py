"""Migrations run in `build`; `start` serves only a current schema (issue 23 item 1).

`start` on a database whose schema is behind (1.1.1's, or a new empty one) refuses at once: exit code 2, one line
naming the command to run, nothing applied. `start --migrate` (what hooks/start runs) applies them first, as the old
start did; ANALYTICS_MIGRATE_ON_START is the same switch for the nself CLI's environment.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nself_analytics.host.migrate import migrations_dir, pending_migrations

from .conftest import SECRET, drop_databases, free_port, pg_execute, stop_service, wait_healthy
from .test_hostile_startup import _env, _fails_fast
from .test_upgrade_schema import CONSOLIDATED, LATER, RELEASE_1_1_1, migrate, sibling

PENDING = [*CONSOLIDATED, *LATER]


def _applied(database_url: str) -> list[str]:
    return [m for (m,) in pg_execute(database_url, "SELECT migration_id FROM np_analytics_yoyo_migration "
                                                   "ORDER BY migration_id")]


def test_start_refuses_a_1_1_1_schema_and_names_build(stores: Any, tmp_path: Path) -> None:
    database_url = sibling(stores.database_url, "gate_1_1_1")
    migrate(database_url, RELEASE_1_1_1)
    record = _fails_fast(_env(tmp_path, database_url, stores.redis_url, free_port()), "run `nself-analytics build`")
    assert f"{len(PENDING)} migrations pending: {', '.join(PENDING)}" in record["message"]
    assert "--migrate" in record["message"]
    assert pending_migrations(database_url) == PENDING  # start changed nothing
    assert _applied(database_url) == ["0001_initial", "0002_activity", "0003_event_ts_covering"]


def test_start_refuses_an_empty_database(stores: Any, tmp_path: Path) -> None:
    database_url = sibling(stores.database_url, "gate_empty")
    record = _fails_fast(_env(tmp_path, database_url, stores.redis_url, free_port()), "nself-analytics build")
    assert f"{3 + len(PENDING)} migrations pending" in record["message"]
    assert pg_execute(database_url, "SELECT to_regclass('np_analytics_events')") == [(None,)]


def test_start_migrate_upgrades_1_1_1_then_serves(stores: Any, tmp_path: Path) -> None:
    """start --migrate on a 1.1.1 database with events: migrated, serving, and its leader runs the backfill to the
    end (/health says so, the log has each batch, the event times exist)."""
    database_url = sibling(stores.database_url, "gate_migrate")
    migrate(database_url, RELEASE_1_1_1)
    today = datetime.now(UTC).date()
    for day in (today - timedelta(days=1), today):
        pg_execute(database_url, f"CREATE TABLE np_analytics_events_p{day:%Y%m%d} PARTITION OF np_analytics_events "
                                 f"FOR VALUES FROM ('{day}') TO ('{day + timedelta(days=1)}')")
    pg_execute(database_url, "INSERT INTO np_analytics_events (ts, message_id, event, user_id) "
                             "SELECT now() - n * interval '20 minutes', gen_random_uuid(), 'e', 'u' || n % 3 "
                             "FROM generate_series(1, 60) AS n")
    port = free_port()
    env = _env(tmp_path, database_url, stores.redis_url.rsplit("/", 1)[0] + "/5", port)
    with (tmp_path / "service.log").open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "nself_analytics.host.cli", "start", "--migrate"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_healthy(base)["healthy"] is True
        assert pending_migrations(database_url) == []
        deadline = time.monotonic() + 60
        while not (progress := _health(base)["backfills"])[0]["finished"] and time.monotonic() < deadline:
            time.sleep(0.2)
        # one batch per day from the newest partition (the leader's maintenance may have created days ahead first)
        assert progress[0]["finished"] is True and progress[0]["batches"] >= 2, progress
        assert pg_execute(database_url, "SELECT count(*) > 0 FROM np_analytics_event_times") == [(True,)]
    finally:
        assert stop_service(process, signal.SIGTERM) == 0
    batches = [json.loads(line) for line in (tmp_path / "service.log").read_text().splitlines()
               if line.startswith("{") and '"backfill_batch"' in line]
    assert [b["batches"] for b in batches] == list(range(1, len(batches) + 1)) and batches[-1]["finished"] is True
    assert batches[-1]["hours"] >= 20  # cumulative (account, hour) pairs: 60 events 20 minutes apart


def _health(base: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{base}/analytics/health", headers={"Authorization": f"Bearer {SECRET}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)  # type: ignore[no-any-return]


def test_build_then_start_serves(stores: Any, tmp_path: Path) -> None:
    """The two-step upgrade: `build` applies what `start` refused, then `start` (no flag) serves."""
    database_url = sibling(stores.database_url, "gate_build")
    migrate(database_url, RELEASE_1_1_1)
    port = free_port()
    env = _env(tmp_path, database_url, stores.redis_url.rsplit("/", 1)[0] + "/6", port)
    built = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "build"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert json.dumps({"applied": PENDING})[1:-1] in built.stdout
    with (tmp_path / "service.log").open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "nself_analytics.host.cli", "start"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}")["healthy"] is True
    finally:
        assert stop_service(process, signal.SIGTERM) == 0


def test_migrate_on_start_must_be_a_boolean(stores: Any, tmp_path: Path) -> None:
    env = _env(tmp_path, stores.database_url, stores.redis_url, free_port(), ANALYTICS_MIGRATE_ON_START="sometimes")
    result = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "start"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ANALYTICS_MIGRATE_ON_START" in result.stdout + result.stderr


def test_migrate_takes_no_value() -> None:
    result = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "start", "--migrate=yes"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--migrate" in result.stderr


@pytest.fixture(autouse=True)
def _drop_databases(stores: Any) -> Any:
    yield
    drop_databases(stores, "gate_1_1_1", "gate_empty", "gate_migrate", "gate_build")


def test_start_refuses_a_schema_newer_than_this_version(stores: Any, tmp_path: Path) -> None:
    """A database a newer version migrated (an applied migration this code does not have) is refused by start, also
    with --migrate, one line naming the way out; nothing is applied or undone."""
    database_url = sibling(stores.database_url, "gate_newer")
    migrate(database_url, migrations_dir())
    pg_execute(database_url, "INSERT INTO np_analytics_yoyo_migration (migration_hash, migration_id, applied_at_utc) "
                             "VALUES (encode(sha256('9999_from_the_future'::bytea), 'hex'), '9999_from_the_future', "
                             "now())")
    before = _applied(database_url)
    for migrate_on_start in ("false", "true"):
        env = _env(tmp_path, database_url, stores.redis_url, free_port(), ANALYTICS_MIGRATE_ON_START=migrate_on_start)
        record = _fails_fast(env, "the database schema is newer than this version (1 applied migration(s)")
        assert "restore a backup" in record["message"]
    assert _applied(database_url) == before
