"""Start-up fails fast and clearly (one line, exit code 2) before any background task; SIGTERM always ends the
process within 10 seconds, during start-up, while serving, with reads and a queue in flight."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import redis

from nself_analytics.host.migrate import apply_migrations
from nself_analytics.host.startup import SHUTDOWN_SECONDS

from .conftest import SECRET, WRITE_KEY, _sibling_database, free_port, pg_execute, wait_for, wait_healthy

# a deadline against a hang only: the service's own watchdog ends a stop at startup.SHUTDOWN_SECONDS (exit 1,
# shutdown_timeout; tested below), so a process still running at this deadline is stuck. Not a measured time.
HANG_GUARD = 3 * SHUTDOWN_SECONDS


def pg_count(database_url: str, sql: str) -> int:
    return int(pg_execute(database_url, sql)[0][0])


def _env(tmp_path: Path, database_url: str, redis_url: str, port: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "ANALYTICS_PORT": str(port),
            "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_DATA_DIR": str(tmp_path / "data"),
            "ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY, **extra}


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "nself_analytics.host.cli", "start"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _fails_fast(env: dict[str, str], expected: str) -> dict[str, Any]:
    """Exit 2 with one line, before anything started (no worker_started, no traceback): fast by what it does,
    whatever the box's speed (bench/ measures times)."""
    process = _start(env)
    output, _ = process.communicate(timeout=HANG_GUARD)
    assert process.returncode == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output  # one clear line: no traceback, no "worker_started"
    record = json.loads(lines[0])
    assert record["event"] == "startup_failed" and expected in record["message"], record
    return record


def test_port_in_use_exits_2_with_one_line(stores: Any, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        _fails_fast(_env(tmp_path, stores.database_url, stores.redis_url, port), f"port {port}")


def test_postgres_unreachable_exits_2_with_one_line(stores: Any, tmp_path: Path) -> None:
    _fails_fast(_env(tmp_path, "postgresql://postgres@127.0.0.1:1/x", stores.redis_url, free_port()),
                "PostgreSQL at 127.0.0.1:1 is unreachable")


def test_redis_unreachable_exits_2_with_one_line(stores: Any, tmp_path: Path) -> None:
    _fails_fast(_env(tmp_path, stores.database_url, "redis://127.0.0.1:1/0", free_port()),
                "Redis at 127.0.0.1:1 is unreachable")


def test_second_start_on_a_held_data_folder_exits_2(live_service: Any) -> None:
    """The issue's second `start` while one runs: it used to log worker_started, then die on EADDRINUSE or hang."""
    env = {**live_service.env, "ANALYTICS_PORT": str(free_port())}
    record = _fails_fast(env, "service.lock")
    assert "another nself-analytics" in record["message"]
    assert wait_healthy(live_service.base_url)["healthy"] is True  # the first one is untouched


def _own_stores(stores: Any, name: str, db: int) -> tuple[str, str]:
    database_url = _sibling_database(stores.database_url, name)
    apply_migrations(database_url)
    redis_url = urlunsplit(urlsplit(stores.redis_url)._replace(path=f"/{db}"))
    redis.Redis.from_url(redis_url).flushdb()
    return database_url, redis_url


def test_sigterm_during_start_up_ends_within_10s(stores: Any, tmp_path: Path) -> None:
    database_url, redis_url = _own_stores(stores, "analytics_sigterm_a", 3)
    process = _start(_env(tmp_path, database_url, redis_url, free_port()))
    time.sleep(0.5)  # a point inside start-up (imports, checks, migrations): the delay is the test's input
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=HANG_GUARD)
    # a stop of its own, not the watchdog's (that one ends the process at SHUTDOWN_SECONDS with exit 1)
    assert process.returncode in (0, -signal.SIGTERM), output[-2000:]
    assert "shutdown_timeout" not in output


def test_sigterm_with_slow_reads_and_a_full_queue_ends_within_10s(stores: Any, tmp_path: Path) -> None:
    database_url, redis_url = _own_stores(stores, "analytics_sigterm_b", 4)
    port = free_port()
    process = _start(_env(tmp_path, database_url, redis_url, port, ANALYTICS_QUERY_TIMEOUT="5m"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        body = json.dumps({"batch": [{"type": "track", "event": "q", "userId": f"u{i}"} for i in range(100)]})
        for _ in range(20):
            request = urllib.request.Request(f"{base}/analytics/batch", data=body.encode(), method="POST",
                                             headers={"Authorization": f"Bearer {WRITE_KEY}",
                                                      "Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=10).close()
        lock = psycopg2.connect(database_url)  # every /metrics read now waits (5 min statement timeout)
        lock.cursor().execute("LOCK TABLE np_analytics_aggregates IN ACCESS EXCLUSIVE MODE")
        readers = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        for sock in readers:
            sock.sendall(f"GET /analytics/metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\n\r\n"
                         .encode())
        wait_for(lambda: pg_count(database_url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                                                "'Lock' AND query LIKE '%%np_analytics_aggregates%%'"), 10, 0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=HANG_GUARD)
        # it ended while the reads still waited on the lock (held until here; their statement timeout is 5
        # minutes) and the queue was full, and by a stop of its own, not the watchdog's (exit 1, shutdown_timeout)
        assert process.returncode in (0, -signal.SIGTERM), output[-2000:]
        assert "shutdown_timeout" not in output
        for sock in readers:
            sock.close()
        lock.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_watchdog_ends_a_stuck_stop_with_exit_1() -> None:
    """What bounds every stop at SHUTDOWN_SECONDS: armed by the first stop signal, the watchdog ends a process
    that has not ended by then (here after 0.2 s), with exit 1 and one error line."""
    code = ("import time\nfrom nself_analytics.host.startup import Watchdog\n"
            "Watchdog(0.2).arm()\ntime.sleep(HANG)\n").replace("HANG", str(HANG_GUARD))
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD)
    assert process.returncode == 1, process.stdout + process.stderr
    assert "shutdown_timeout" in process.stdout + process.stderr
