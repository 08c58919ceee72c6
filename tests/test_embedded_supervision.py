"""The embedded stores are supervised (issue 21 item 6): a start stops the stores an earlier service left running in
its data folder, an embedded Redis killed with SIGKILL under a live service is restarted (/health shows it, /track
answers 202 again, nothing is lost), and a service killed with SIGKILL takes its stores with it."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg2

from nself_analytics.host.children import is_alive
from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.embedded_redis import EmbeddedRedis

from .conftest import SECRET, WRITE_KEY, free_port, start_service, wait_for, wait_healthy


def _call(url: str, body: Any = None, token: str = SECRET) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return 0, {}


def _batch(base: str, ids: list[str]) -> int:
    body = {"batch": [{"type": "track", "event": "kept", "userId": "u", "messageId": i} for i in ids]}
    return _call(f"{base}/analytics/batch", body, WRITE_KEY)[0]


def _stored(database_url: str) -> int:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(DISTINCT message_id), count(*) FROM np_analytics_events WHERE event = 'kept'")
            distinct, total = cur.fetchone()
            return int(distinct) if distinct == total else -1
    finally:
        conn.close()


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def test_embedded_stores_are_restarted_and_never_outlive_the_service(tmp_path: Path) -> None:
    # stores of this data folder left running by an earlier service (orphans): the start must stop them
    orphans = EmbeddedPostgres(tmp_path), EmbeddedRedis(tmp_path)
    for store in orphans:
        store.start()
    orphan_pids = [store.process.pid for store in orphans if store.process is not None]
    port = free_port()
    env = {**os.environ, "ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY,
           "ANALYTICS_DATA_DIR": str(tmp_path), "ANALYTICS_PORT": str(port), "ANALYTICS_HOST": "127.0.0.1",
           "ANALYTICS_LOG_FORMAT": "json"}
    for key in ("DATABASE_URL", "REDIS_URL", "REDIS_HOST"):
        env.pop(key, None)
    process = start_service(env, tmp_path / "service.log", migrate=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        assert all(store.process is not None and store.process.poll() is not None for store in orphans)
        redis_pid, postgres_pid = EmbeddedRedis(tmp_path).pid(), _postmaster(tmp_path)
        assert redis_pid not in orphan_pids and postgres_pid not in orphan_pids and redis_pid is not None
        status, body = _call(f"{base}/analytics/health")
        assert status == 200 and body["tasks"]["embedded-redis"]["state"] == "running"
        assert body["tasks"]["embedded-postgres"]["restarts"] == 0

        before = [str(uuid.uuid4()) for _ in range(50)]
        assert _batch(base, before) == 202
        os.kill(redis_pid, signal.SIGKILL)

        def restarted() -> dict[str, Any] | None:
            status, body = _call(f"{base}/analytics/health")
            task = body.get("tasks", {}).get("embedded-redis", {})
            return task if status == 200 and task.get("restarts", 0) >= 1 and task["state"] == "running" else None

        task = wait_for(restarted, timeout=60)
        assert task["last_error"].startswith("exited with code")
        after = [str(uuid.uuid4()) for _ in range(50)]
        wait_for(lambda: _batch(base, after) == 202, timeout=30)  # answers 202 again, without a human
        database_url = EmbeddedPostgres(tmp_path).url()
        wait_for(lambda: _stored(database_url) == 100, timeout=60)  # nothing lost, nothing doubled
        new_redis = EmbeddedRedis(tmp_path).pid()
        assert new_redis is not None and new_redis != redis_pid
    finally:
        process.send_signal(signal.SIGKILL)  # no graceful stop: the stores must stop with the service anyway
        process.wait(timeout=30)
    wait_for(lambda: not is_alive(postgres_pid) and not is_alive(new_redis), timeout=60)
