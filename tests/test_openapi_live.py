"""schemathesis over openapi.json against a live service: no 5xx, no response outside the schema.

The fuzzing writes junk events and quota rules, so it runs its own service process on its own
database and Redis database (same servers as the other tests), leaving the shared one alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from nself_analytics.host.migrate import apply_migrations

from .conftest import (
    SECRET,
    WRITE_KEY,
    Stores,
    drop_databases,
    free_port,
    pg_execute,
    start_service,
    stop_service,
    wait_healthy,
)

ST = Path(sys.executable).with_name("st")
FUZZ_SECONDS = 420  # a fixed number of cases per operation; on a loaded 2-core box 74 operations took over 110 s


def _other_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def _other_redis_db(url: str) -> str:
    # the in-process tests use the given db and the shared live service db 1: take another one
    parts = urllib.parse.urlsplit(url)
    current = int(parts.path.strip("/") or 0)
    free = next(db for db in range(2, 16) if db != current)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{free}"))


@pytest.fixture(scope="module")
def fuzz_service(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    name = "fuzz_" + uuid.uuid4().hex[:8]
    pg_execute(stores.database_url, f"CREATE DATABASE {name}")
    redis.Redis.from_url(_other_redis_db(stores.redis_url)).flushdb()
    database_url = _other_database(stores.database_url, name)
    apply_migrations(database_url)
    data_dir = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url, "REDIS_URL": _other_redis_db(stores.redis_url),
        "ANALYTICS_PORT": str(port), "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_DATA_DIR": str(data_dir),
        "ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY, "ANALYTICS_AGGREGATE_INTERVAL": "2s",
        "ANALYTICS_QUOTA_ENABLED": "true",
    }
    process = start_service(env, data_dir / "service.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url)
        yield base_url
    finally:
        stop_service(process)
        drop_databases(stores, name)


def run_schemathesis(base_url: str, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    report = tmp_path / "report.json"
    command = [
        str(ST), "run", f"{base_url}/analytics/openapi.json",
        "--header", f"Authorization: Bearer {SECRET}",
        "--checks", "not_a_server_error,response_schema_conformance",
        "--max-examples", "12", "--seed", "20261125", "--generation-database", "none",
        "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "20",
        "--no-color", "--report", "json", "--report-json-path", str(report), *extra,
    ]
    # the API grows with every route (74 operations at the time of writing): the bound is generous, the cases fixed
    result = subprocess.run(command, capture_output=True, text=True, timeout=FUZZ_SECONDS, cwd=tmp_path)
    return result, json.loads(report.read_text()) if report.exists() else None


@pytest.mark.timeout(FUZZ_SECONDS + 60)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_service: str, tmp_path: Path) -> None:
    result, report = run_schemathesis(fuzz_service, tmp_path)
    output = result.stdout + result.stderr
    first_problem = max(0, min((i for i in (output.find("ERRORS"), output.find("FAILURES")) if i >= 0), default=0))
    assert result.returncode == 0, output[first_problem:first_problem + 8000] + "\n...\n" + output[-2500:]
    # it really exercised the whole API: every operation, thousands of generated requests
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    assert selected and tested and cases, output[-3000:]
    assert int(tested.group(1)) == int(selected.group(1)) == int(selected.group(2)) >= 60
    assert int(cases.group(1)) > 1000
    assert report is not None
    text = json.dumps(report)
    assert "/api/pageviews" in text and "/track" in text and "/hit" in text
