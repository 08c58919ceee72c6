"""The plugin skeleton: settings, hooks through pluggy and the console script, migrations, health,
embedded services, graceful shutdown."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from nself_analytics import __version__
from nself_analytics.config import ConfigError, Settings, parse_duration
from nself_analytics.host import hookspecs, plugin
from nself_analytics.host.cli import plugin_manager
from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.embedded_redis import EmbeddedRedis
from nself_analytics.host.migrate import apply_migrations

from .conftest import SECRET, WRITE_KEY, free_port, pg_execute, start_service, stop_service, wait_healthy

BASE_ENV = {"ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY}


# --- settings ---------------------------------------------------------------------------------

def test_settings_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({**BASE_ENV, "ANALYTICS_DATA_DIR": str(tmp_path)})
    assert (s.port, s.retention_days, s.aggregate_interval, s.queue_buffer, s.batch_size) == (3206, 90, 300, 10000, 500)
    assert (s.quota_enabled, s.sample_rate, s.ip_hash) == (False, 1.0, True)
    assert s.database_url is None and s.redis_url is None
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_settings_parse_values(tmp_path: Path) -> None:
    s = Settings.from_env({**BASE_ENV, "ANALYTICS_DATA_DIR": str(tmp_path), "ANALYTICS_AGGREGATE_INTERVAL": "30s",
                           "ANALYTICS_SAMPLE_RATE": "0.25", "ANALYTICS_QUOTA_ENABLED": "true",
                           "ANALYTICS_IP_HASH": "false", "PORT": "4000", "REDIS_HOST": "r.local",
                           "REDIS_PORT": "6380", "REDIS_PASSWORD": "pw", "ANALYTICS_WRITE_KEYS": "a_key1, b_key2"})
    assert s.aggregate_interval == 30 and s.sample_rate == 0.25 and s.quota_enabled and not s.ip_hash
    assert s.port == 4000 and s.redis_url == "redis://:pw@r.local:6380/0"
    assert s.write_keys == ("a_key1", "b_key2")
    assert parse_duration("2h") == 7200 and parse_duration("7d") == 604800


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ANALYTICS_SAMPLE_RATE", "2"),
        ("ANALYTICS_SAMPLE_RATE", "half"),
        ("ANALYTICS_AGGREGATE_INTERVAL", "soon"),
        ("ANALYTICS_AGGREGATE_INTERVAL", "0s"),
        ("ANALYTICS_PORT", "70000"),
        ("ANALYTICS_PORT", "0"),
        ("PORT", "http"),
        ("ANALYTICS_RETENTION_DAYS", "-1"),
        ("ANALYTICS_QUEUE_BUFFER", "lots"),
        ("ANALYTICS_BATCH_SIZE", "0"),
        ("ANALYTICS_QUOTA_ENABLED", "maybe"),
        ("ANALYTICS_IP_HASH", "2"),
        ("ANALYTICS_LOG_FORMAT", "xml"),
        ("ANALYTICS_SECRET_TOKEN", "short"),
        ("REDIS_PORT", "x"),
        ("ANALYTICS_WEBHOOK_TIMEOUT", "10m"),
        ("ANALYTICS_WEBHOOK_RETRY_BASE", "soon"),
        ("ANALYTICS_WEBHOOK_RETRY_FOR", "0s"),
        ("ANALYTICS_DEDUPE_WINDOW", "1h"),
        ("ANALYTICS_DEDUPE_WINDOW", "400d"),
        ("ANALYTICS_DEDUPE_WINDOW", "forever"),
    ],
)
def test_settings_errors_name_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    env = {**BASE_ENV, "ANALYTICS_DATA_DIR": str(tmp_path), variable: value}
    if variable == "REDIS_PORT":
        env["REDIS_HOST"] = "localhost"
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.variable == variable
    assert variable in str(info.value)
    if variable != "ANALYTICS_SECRET_TOKEN":
        assert value in str(info.value)


def test_secrets_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings.from_env({"ANALYTICS_DATA_DIR": str(tmp_path)})
    second = Settings.from_env({"ANALYTICS_DATA_DIR": str(tmp_path)})
    assert first.secret_token == second.secret_token and len(first.secret_token) >= 24
    assert first.write_keys == second.write_keys and first.secret_token not in first.write_keys
    assert oct((tmp_path / "secrets.env").stat().st_mode & 0o777) == "0o600"


def test_bad_variable_stops_start(tmp_path: Path) -> None:
    env = {**os.environ, **BASE_ENV, "ANALYTICS_DATA_DIR": str(tmp_path), "ANALYTICS_SAMPLE_RATE": "2"}
    result = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "start"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ANALYTICS_SAMPLE_RATE" in result.stderr and "'2'" in result.stderr


# --- host contract ----------------------------------------------------------------------------

def test_every_hookspec_has_docstring_and_impl() -> None:
    specs = {name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "nself_spec")}
    assert specs == {"install", "build", "start"}
    for name in specs:
        assert getattr(hookspecs, name).__doc__
        assert hasattr(getattr(plugin, name), "nself_impl")


def test_plugin_found_through_entry_point() -> None:
    pm = plugin_manager()
    names = [pm.get_name(p) for p in pm.get_plugins()]
    assert "analytics" in names
    assert pm.get_plugin("analytics") is plugin


def test_install_and_build_hooks_through_pluggy(stores: Any, tmp_path: Path) -> None:
    pm = plugin_manager()
    env = {**BASE_ENV, "ANALYTICS_DATA_DIR": str(tmp_path), "DATABASE_URL": stores.database_url}
    [installed] = pm.hook.install(env=env)
    assert installed["analytics"]["port"] == 3206 and (tmp_path).is_dir()
    [built] = pm.hook.build(env=env)
    assert built == {"analytics": {"applied": []}}  # the session already migrated these stores


def _schema(database_url: str) -> list[tuple[Any, ...]]:
    return pg_execute(database_url, """
        SELECT table_name, column_name, data_type, column_default FROM information_schema.columns
        WHERE table_name LIKE 'np_analytics_%%' AND table_name NOT LIKE 'np_analytics_events_p%%'
        ORDER BY 1, 2""") + pg_execute(database_url, """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'np_analytics_%%'
        AND tablename NOT LIKE 'np_analytics_events_p%%' ORDER BY 1, 2""")


def test_console_script_build_twice_on_embedded_postgres(tmp_path: Path) -> None:
    """A fresh data folder: `build` starts the embedded server, migrates, stops; again changes nothing."""
    env = {**os.environ, **BASE_ENV, "ANALYTICS_DATA_DIR": str(tmp_path), "ANALYTICS_LOG_FORMAT": "console"}
    env.pop("DATABASE_URL", None)
    first = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "build"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == [{"analytics": {"applied": ["0001_initial", *json.loads(first.stdout)[0]
                                                                    ["analytics"]["applied"][1:]]}}]
    pg = EmbeddedPostgres(tmp_path)
    assert not pg.is_running()  # build leaves no server behind
    url = pg.start()
    try:
        before = _schema(url)
        tables = {row[0] for row in before}
        assert {"np_analytics_events", "np_analytics_users", "np_analytics_aggregates", "np_analytics_funnels",
                "np_analytics_quotas"} <= tables
        assert pg_execute(url, "SELECT partstrat FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
                               " WHERE c.relname = 'np_analytics_events'") == [("r",)]
    finally:
        pg.stop()
    second = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "build"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and json.loads(second.stdout) == [{"analytics": {"applied": []}}]
    url = pg.start()
    try:
        assert _schema(url) == before
    finally:
        pg.stop()


def test_migrations_idempotent(stores: Any) -> None:
    before = _schema(stores.database_url)
    assert apply_migrations(stores.database_url) == []  # nothing left to apply
    assert _schema(stores.database_url) == before


def test_every_table_has_source_account_id(stores: Any) -> None:
    rows = pg_execute(stores.database_url, """
        SELECT t.table_name FROM information_schema.tables t WHERE t.table_name LIKE 'np_analytics_%%'
        AND t.table_name NOT LIKE 'np_analytics_events_p%%' AND t.table_name <> 'np_analytics_yoyo_migration'
        AND t.table_name NOT LIKE '%%yoyo%%'
        AND t.table_name <> 'np_analytics_backfills'  -- the state of the upgrade's backfills, not an account's data
        AND t.table_name <> 'np_analytics_privacy_salt'  -- the install's one salt of erased ids' hashes
        AND t.table_name <> 'np_analytics_drain_ranges'  -- the queue's stored entry ranges (every account's entries)
        AND NOT EXISTS (SELECT 1 FROM information_schema.columns c
        WHERE c.table_name = t.table_name AND c.column_name = 'source_account_id'
        AND c.column_default LIKE '''primary''%%')""")
    assert rows == []


# --- embedded services ------------------------------------------------------------------------

def test_embedded_redis_restart_keeps_data(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        client.xadd("s", {"k": "v"})
        client.close()
        server.stop()
        assert not server.is_running()
        assert server.start() == url  # same port again
        client = redis.Redis.from_url(url)
        assert client.xlen("s") == 1
        assert (tmp_path / "redis" / "appendonly.aof").stat().st_size > 0  # AOF on (CONFIG is denied to the app)
        client.close()
    finally:
        server.stop()
    assert not server.is_running()


def test_embedded_postgres_restart_keeps_data(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    url = server.start()
    try:
        pg_execute(url, "CREATE TABLE kept (x int)")
        pg_execute(url, "INSERT INTO kept VALUES (42)")
        server.stop()
        assert not server.is_running()
        assert server.start() == url
        assert pg_execute(url, "SELECT x FROM kept") == [(42,)]
    finally:
        server.stop()
    assert not server.is_running()


# --- the running service ----------------------------------------------------------------------

TOKEN = {"Authorization": f"Bearer {SECRET}"}


async def test_health_reports_stores(client: Any) -> None:
    response = await client.get("/analytics/health", headers=TOKEN)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "success" and body["healthy"] is True
    assert body["postgres"]["reachable"] and body["redis"]["reachable"]
    assert body["queue_depth"] == 0 and body["aggregate_lag_seconds"] == 0
    assert response.headers["X-Request-Id"]


async def test_health_reports_unreachable_redis(make_client: Any, settings: Settings) -> None:
    broken = settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = await make_client(broken)
    response = await client.get("/analytics/health", headers=TOKEN)
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "error" and body["redis"]["reachable"] is False and body["postgres"]["reachable"]
    assert body["redis"]["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {WRITE_KEY}"}])
async def test_health_without_the_token_says_only_up_or_down(make_client: Any, settings: Settings,
                                                             headers: dict[str, str]) -> None:
    client = await make_client(settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    response = await client.get("/analytics/health", headers=headers)
    assert response.status == 503
    assert await response.json() == {"status": "error", "healthy": False, "postgres": {"reachable": True},
                                     "redis": {"reachable": False}, "message": "a store is unreachable"}


async def test_unknown_route_is_json_404(client: Any) -> None:
    response = await client.get("/analytics/nope")
    assert response.status == 404
    assert (await response.json())["status"] == "error"


def test_start_embedded_then_sigterm_stops_everything(tmp_path: Path) -> None:
    """`start --migrate` with no URLs runs its own stores; SIGTERM stops the app and both stores, data kept."""
    port = free_port()
    env = {**os.environ, **BASE_ENV, "ANALYTICS_DATA_DIR": str(tmp_path), "ANALYTICS_PORT": str(port),
           "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_LOG_FORMAT": "json"}
    for key in ("DATABASE_URL", "REDIS_URL", "REDIS_HOST"):
        env.pop(key, None)
    process = start_service(env, tmp_path / "service.log", migrate=True)
    try:
        body = wait_healthy(f"http://127.0.0.1:{port}")
        assert body["postgres"]["reachable"] and body["redis"]["reachable"]
        assert EmbeddedPostgres(tmp_path).is_running() and EmbeddedRedis(tmp_path).is_running()
    finally:
        code = stop_service(process, signal.SIGTERM)
    assert code == 0
    assert not EmbeddedPostgres(tmp_path).is_running() and not EmbeddedRedis(tmp_path).is_running()
    lines = (tmp_path / "service.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines if line.startswith("{")]
    assert "started" in events and "stopping" in events and events[-1] == "stopped"
    assert (tmp_path / "postgres" / "PG_VERSION").exists() and (tmp_path / "redis").is_dir()


def test_manifest_lists_hooks_variables_and_tables() -> None:
    import re

    import yaml

    root = Path(__file__).resolve().parent.parent
    manifest = yaml.safe_load((root / "plugin.yaml").read_text())
    assert (manifest["name"], manifest["version"], manifest["port"]) == ("analytics", __version__, 3206)
    for hook in ("install", "build", "start"):
        path = root / manifest["hooks"][hook]
        assert path.is_file() and os.access(path, os.X_OK)
    read = set(re.findall(r'"((?:ANALYTICS|REDIS)_[A-Z_]+|DATABASE_URL|PORT)"',
                          (root / "nself_analytics" / "config.py").read_text()))
    assert read - {"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "PORT"} <= set(manifest["env"])
    assert {"np_analytics_events", "np_analytics_users", "np_analytics_aggregates", "np_analytics_funnels",
            "np_analytics_quotas"} <= set(manifest["tables"])
