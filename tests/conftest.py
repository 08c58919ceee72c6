"""Test harness: real PostgreSQL and Redis (the embedded ones, unless TEST_DATABASE_URL/TEST_REDIS_URL
are set), cleaned before each test; aiohttp clients on the real app factory; a live service process."""

from __future__ import annotations

import os

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import redis
from aiohttp import web

from nself_analytics.config import Settings
from nself_analytics.host.app import create_root_app
from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.embedded_redis import EmbeddedRedis
from nself_analytics.host.migrate import apply_migrations
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.store.partitions import forget_partitions
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .integrations_support import DAY, EVENTS, HITS, SITE, api, web_data
from .tiers_support import by_cost, tier_of

SECRET = "sk_test_secret_token_0123456789"
WRITE_KEY = "wk_test_write_key"
TABLES = (
    "np_analytics_events, np_analytics_users, np_analytics_aggregates, np_analytics_aggregate_dirty, "
    "np_analytics_activity, np_analytics_seen, np_analytics_event_times, np_analytics_web_sessions, "
    "np_analytics_person_map, np_analytics_web_session_events, "
    "np_analytics_web_daily, np_analytics_web_day_stats, np_analytics_web_day_sessions, np_analytics_web_hour_stats, "
    "np_analytics_message_ids, "
    "np_analytics_funnels, np_analytics_quota_violations, np_analytics_quotas, "
    "np_analytics_webhooks, np_analytics_webhook_deliveries, np_analytics_alerts, np_analytics_alert_checks, "
    "np_analytics_notifications, np_analytics_suppressions, np_analytics_erasures, np_analytics_audit, "
    "np_analytics_reports, np_analytics_event_outbox, np_analytics_drain_ranges"
)


def pytest_configure(config: pytest.Config) -> None:
    workers = getattr(config.option, "numprocesses", None)
    if workers and hasattr(config.option, "loadscopereorder"):
        # xdist hands out files by their number of tests (so one-test files like the soak started last): keep the
        # collection's order instead, which is by cost (pytest_collection_modifyitems)
        config.option.loadscopereorder = False
    external = os.environ.get("TEST_DATABASE_URL") or os.environ.get("TEST_REDIS_URL")
    if external and workers and not hasattr(config, "workerinput"):
        # the tests own fixed Redis db numbers and database names of the servers they run on: one run per server
        raise pytest.UsageError("TEST_DATABASE_URL/TEST_REDIS_URL are shared by every xdist worker: run with -n 0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier (tests/tiers_support.py): `pytest -m unit` is the fast layer. Order the files
    longest first (tests/tiers_support.py FILE_SECONDS): the order xdist hands them to its workers."""
    for item in items:
        tier = tier_of(item)
        if not item.get_closest_marker(tier):
            item.add_marker(tier)
    items[:] = by_cost(items)


@dataclass
class Stores:
    database_url: str
    redis_url: str
    data_dir: Path
    postgres: EmbeddedPostgres | None
    redis: EmbeddedRedis | None


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    data_dir = tmp_path_factory.mktemp("stores")
    pg = rd = None
    database_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not database_url:
        pg = EmbeddedPostgres(data_dir)
        database_url = pg.start()
    if not redis_url:
        rd = EmbeddedRedis(data_dir)
        redis_url = rd.start()
    apply_migrations(database_url)
    yield Stores(database_url, redis_url, data_dir, pg, rd)
    if rd is not None:
        rd.stop()
    if pg is not None and pg.process is not None and pg.process.poll() is None:
        # the session's cluster goes with its basetemp: an immediate stop skips the shutdown checkpoint of all the
        # session wrote (seconds at the end of every worker on a busy disk)
        pg.process.send_signal(signal.SIGQUIT)
        pg.process.wait(timeout=60)
    elif pg is not None:
        pg.stop()


def pg_execute(database_url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement on a fresh connection; return its rows (empty when it returns none)."""
    conn = psycopg2.connect(database_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def drop_databases(stores: Stores, *names: str) -> None:
    """Clean-up of databases a test made: dropped on a server the session does not own (TEST_DATABASE_URL); on the
    session's own embedded cluster they stay, as it goes with the session's basetemp. DROP DATABASE makes the server
    take an immediate checkpoint of every database (seconds on a busy disk; a dashboard teardown once passed the
    120 s timeout in it), and a name used again is dropped by whoever creates it (``_sibling_database``)."""
    if stores.postgres is None:
        for name in names:
            pg_execute(stores.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _dirty_tables_sql() -> str:
    """One statement naming the tables of TABLES that hold a row or whose identity sequence was used since its
    last restart (so skipping the others changes nothing: an untouched table is empty with fresh ids)."""
    names = [name.strip() for name in TABLES.split(",")]
    probes = ", ".join(f"CASE WHEN EXISTS (SELECT FROM {name}) THEN '{name}' END" for name in names)
    listed = ", ".join(f"'{name}'" for name in names)
    return (f"SELECT t FROM unnest(ARRAY[{probes}]) AS t WHERE t IS NOT NULL "
            "UNION SELECT d.refobjid::regclass::text FROM pg_depend d JOIN pg_sequences s "
            "ON d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass "
            f"WHERE d.classid = 'pg_class'::regclass AND d.refobjid::regclass::text IN ({listed}) "
            "AND s.last_value IS NOT NULL")


DIRTY_TABLES = _dirty_tables_sql()


class Cleaner:
    """Empties what the previous test wrote, on connections kept for the session (opened again when a test has
    restarted a server): one query finds the written tables, one TRUNCATE empties only those, and Redis is
    flushed only when it holds a key."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.conn: Any = None
        self.redis: redis.Redis | None = None

    def _pg(self) -> None:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg2.connect(self.stores.database_url)
            self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute(DIRTY_TABLES)
            dirty = [row[0] for row in cur.fetchall()]
            if dirty:
                cur.execute(f"TRUNCATE {', '.join(dirty)} RESTART IDENTITY CASCADE")

    def _redis(self) -> None:
        if self.redis is None:
            self.redis = redis.Redis.from_url(self.stores.redis_url)
        if self.redis.dbsize():
            self.redis.flushdb()

    def __call__(self) -> None:
        for step in (self._pg, self._redis):
            try:
                step()
            except (psycopg2.OperationalError, psycopg2.InterfaceError, redis.ConnectionError):
                self.close()  # a test restarted a server: connect again, once
                step()
        forget_partitions()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.redis is not None:
            self.redis.close()
        self.conn = self.redis = None


@pytest.fixture(scope="session")
def cleaner(stores: Stores) -> Iterator[Cleaner]:
    cleaner = Cleaner(stores)
    yield cleaner
    cleaner.close()


@pytest.fixture
def clean(stores: Stores, cleaner: Cleaner) -> Stores:
    """Empty every table and the Redis database before the test (only the ones a test wrote to)."""
    cleaner()
    return stores


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    """A Redis server of the test's own (to stop and kill)."""
    server = EmbeddedRedis(tmp_path / "own")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Any:
    """A PostgreSQL server of the test's own, migrated (to stop and restart)."""
    server = EmbeddedPostgres(tmp_path / "own")
    apply_migrations(server.start())
    forget_partitions()
    yield server
    forget_partitions()
    server.stop()


@pytest.fixture
def settings(clean: Stores, tmp_path: Path) -> Settings:
    return Settings(
        secret_token=SECRET,
        write_keys=(WRITE_KEY,),
        data_dir=tmp_path,
        database_url=clean.database_url,
        redis_url=clean.redis_url,
        aggregate_interval=3600,
        reclaim_idle_seconds=0.5,
        log_format="console",
    )


@pytest.fixture
def make_client(aiohttp_client: Any) -> Callable[..., Any]:
    """Build a test client on the real root app (sub-app at /analytics) for given settings."""

    async def make(settings: Settings, worker: bool = False) -> Any:
        # as in production (lifecycle): a handler is cancelled when its client goes away
        return await aiohttp_client(create_root_app(settings, worker=worker),
                                    server_kwargs={"handler_cancellation": True})

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any], settings: Settings) -> Any:
    return await make_client(settings)


@pytest.fixture
def drain(client: Any, settings: Settings) -> Callable[[], Any]:
    """Drain the ingest stream into Postgres now (what the background task does on its own)."""
    subapp = client.app[ANALYTICS_APP]

    async def run() -> int:
        return await Drainer(subapp[PG_POOL], subapp[REDIS], settings, name="test-drainer").drain_until_empty()

    return run


@pytest.fixture
def auth() -> dict[str, dict[str, str]]:
    return {
        "write": {"Authorization": f"Bearer {WRITE_KEY}"},
        "secret": {"Authorization": f"Bearer {SECRET}"},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    """Serve ``app`` on a free local port while the block runs (a website of another origin, for browsers)."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


def wait_healthy(base_url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/analytics/health", timeout=2) as response:
                return dict(json.load(response))
        except Exception as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"service at {base_url} not healthy: {last}")


@dataclass
class LiveService:
    base_url: str
    port: int
    secret: str
    write_key: str
    database_url: str
    redis_url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]


def start_service(env: dict[str, str], log_path: Path, migrate: bool = False) -> subprocess.Popen[bytes]:
    """``nself-analytics start`` (``--migrate``: applying pending migrations first) as its own process."""
    with log_path.open("ab") as log_file:
        return subprocess.Popen([sys.executable, "-m", "nself_analytics.host.cli", "start",
                                 *(["--migrate"] if migrate else [])], env=env,
                                stdout=log_file, stderr=subprocess.STDOUT)


def stop_service(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    process.send_signal(sig)
    return process.wait(timeout=60)


def _sibling_database(database_url: str, name: str) -> str:
    """A fresh database ``name`` on the server of ``database_url``; its URL."""
    parts = urlsplit(database_url)
    pg_execute(database_url, f'DROP DATABASE IF EXISTS "{name}"')
    pg_execute(database_url, f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def live_service(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The real service as its own process (``nself-analytics start``) on the test servers, but in a
    database and a Redis db of its own: its drainer must not take entries of the in-process tests."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("live")
    database_url = _sibling_database(stores.database_url, "analytics_live")
    apply_migrations(database_url)
    redis_url = urlunsplit(urlsplit(stores.redis_url)._replace(path="/1"))
    redis.Redis.from_url(redis_url).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ANALYTICS_PORT": str(port),
        "ANALYTICS_HOST": "127.0.0.1",
        "ANALYTICS_DATA_DIR": str(data_dir),
        "ANALYTICS_SECRET_TOKEN": SECRET,
        "ANALYTICS_WRITE_KEYS": WRITE_KEY,
        "ANALYTICS_AGGREGATE_INTERVAL": "2s",
    }
    process = start_service(env, data_dir / "service.log")
    base_url = f"http://127.0.0.1:{port}"
    wait_healthy(base_url)
    yield LiveService(base_url, port, SECRET, WRITE_KEY, database_url, redis_url, process, env)
    if process.poll() is None:
        stop_service(process)


def wait_for(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
async def pool_conn(client: Any) -> AsyncIterator[Any]:
    """An aiopg connection from the app's pool."""
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        yield conn


@pytest.fixture(scope="session")
def report_site(live_service: LiveService) -> str:
    """Sends HITS to the live service's beacon endpoint once and waits until they are stored."""
    for path, referrer, language, session, agent, ip in HITS:
        body = json.dumps({"site": SITE, "path": path, "referrer": referrer, "language": language,
                           "session_id": session, "screen_width": 1280}).encode()
        request = urllib.request.Request(f"{live_service.base_url}/analytics/hit", data=body, method="POST",
                                         headers={"Content-Type": "text/plain", "User-Agent": agent,
                                                  "X-Forwarded-For": ip})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
    wait_for(lambda: web_data(live_service, "pageviews")["pageviews"] == len(HITS), timeout=30)
    return SITE


@pytest.fixture(scope="session")
def product_data(live_service: LiveService, report_site: str) -> str:
    """EVENTS tracked on the live service once (the MCP tests, stdio and HTTP), stored when the fixture returns."""
    sends = [("identify", {"user_id": "m1", "traits": {"plan": "pro"}}),
             ("identify", {"user_id": "m2", "traits": {"plan": "free"}}),
             *(("track", {"event": e, "user_id": u, "properties": p}) for e, u, p in EVENTS)]
    for kind, message in sends:
        body = json.dumps(message).encode()
        request = urllib.request.Request(f"{live_service.base_url}/analytics/{kind}", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {live_service.write_key}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 202)

    def stored() -> bool:
        counts = {e["event"]: e["count"] for e in api(live_service, "/events", **DAY)["data"]}
        users = {u["user_id"] for u in api(live_service, "/users")["data"]}
        return users >= {"m1", "m2"} and all(counts.get(e, 0) >= n for e, n in
                                             {"mcp_signup": 3, "mcp_purchase": 2, "play": 1, "stop": 1}.items())

    wait_for(stored, timeout=90)  # a deadline, not a target: a loaded CI box drains slower
    return report_site
