"""Helpers of the scale-out tests: service processes on a database and a Redis db of their own."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from nself_analytics.host.migrate import apply_migrations

from .conftest import SECRET, WRITE_KEY, Stores, _sibling_database, free_port

# Redis db of these tests (the in-process tests use 0, the live service 1, the fuzzing the first free from 2).
SCALE_REDIS_DB = 12


def fresh_stores(stores: Stores, name: str) -> tuple[str, str]:
    """A migrated database ``name`` and an empty Redis db beside the test servers: their URLs."""
    database_url = _sibling_database(stores.database_url, name)
    apply_migrations(database_url)
    redis_url = urlunsplit(urlsplit(stores.redis_url)._replace(path=f"/{SCALE_REDIS_DB}"))
    redis.Redis.from_url(redis_url).flushdb()
    return database_url, redis_url


def service_env(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> tuple[dict[str, str], str]:
    """The environment of one service instance on a free port, and its base URL."""
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "ANALYTICS_PORT": str(port),
        "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_SECRET_TOKEN": SECRET,
        "ANALYTICS_WRITE_KEYS": WRITE_KEY, "ANALYTICS_AGGREGATE_INTERVAL": "1s", "ANALYTICS_RECLAIM_IDLE": "2s",
        **extra,
    }
    return env, f"http://127.0.0.1:{port}"


def health(base_url: str) -> dict[str, Any]:
    """/health with the token, on a new connection (so SO_REUSEPORT may pick any worker)."""
    request = urllib.request.Request(f"{base_url}/analytics/health", headers={"Authorization": f"Bearer {SECRET}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.load(response))


def post_batch(base_url: str, messages: list[dict[str, Any]]) -> int:
    """POST /batch; the status (0 when the instance could not be reached)."""
    body = json.dumps({"batch": messages}).encode()
    request = urllib.request.Request(f"{base_url}/analytics/batch", data=body, method="POST", headers={
        "Authorization": f"Bearer {WRITE_KEY}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def children_of(pid: int) -> set[int]:
    """Live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
