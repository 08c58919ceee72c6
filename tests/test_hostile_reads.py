"""Reads cannot starve writes: slow reads time out on the server, run on their own pool, are cancelled when their
client leaves; a store that is down gives 503 with a JSON error on every endpoint."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg2
import pytest

from nself_analytics.pipeline.drain import Drainer
from nself_analytics.web.appkeys import ANALYTICS_APP, REDIS, WORKER_POOL

from .conftest import SECRET, WRITE_KEY, pg_execute, wait_for

TODAY = datetime.now(UTC).date()
RANGE = f"start_date={TODAY - timedelta(days=365)}&end_date={TODAY}"
# a deadline against a hang only (every read ends at its query timeout, the last ones after a connection frees
# up), not a measured time
HANG_GUARD = 60
SECRET_AUTH = {"Authorization": f"Bearer {SECRET}"}
WRITE_AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}
# (method, path, JSON body): one request per endpoint that reads or writes a store.
STORE_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", f"/analytics/metrics?{RANGE}", None),
    ("GET", f"/analytics/sessions?{RANGE}", None),
    ("GET", f"/analytics/funnel?{RANGE}&steps=a,b", None),
    ("GET", f"/analytics/retention?{RANGE}", None),
    ("GET", "/analytics/funnels", None),
    ("POST", "/analytics/funnels", {"name": "f", "steps": ["a", "b"]}),
    ("GET", "/analytics/funnels/1", None),
    ("DELETE", "/analytics/funnels/1", None),
    ("GET", "/analytics/quotas", None),
    ("POST", "/analytics/quotas", {"event": "e", "limit": 5, "period": "day"}),
    ("GET", "/analytics/quotas/1", None),
    ("PUT", "/analytics/quotas/1", {"event": "e", "limit": 5, "period": "day"}),
    ("DELETE", "/analytics/quotas/1", None),
    ("GET", "/analytics/quotas/violations", None),
    ("GET", "/analytics/counters/e", None),
    ("GET", "/analytics/api/pageviews?site=a.test&period=7d", None),
    ("GET", "/analytics/api/pages?site=a.test&period=7d", None),
]


def _lock_aggregates(database_url: str) -> Any:
    """A connection holding an exclusive lock on the aggregates table: every /metrics read waits on it (the drain
    never touches that table)."""
    conn = psycopg2.connect(database_url)
    cur = conn.cursor()
    cur.execute("LOCK TABLE np_analytics_aggregates IN ACCESS EXCLUSIVE MODE")
    return conn


def _waiting_reads(database_url: str) -> int:
    return int(pg_execute(database_url, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                        "AND query LIKE '%%dirty_days%%' AND pid <> pg_backend_pid()")[0][0])


async def test_slow_reads_time_out_and_never_starve_the_drain(make_client: Any, settings: Any) -> None:
    client = await make_client(settings.with_(query_timeout=3.0))
    lock = await asyncio.to_thread(_lock_aggregates, settings.database_url)
    try:
        reads = [asyncio.create_task(client.get(f"/analytics/metrics?{RANGE}", headers=SECRET_AUTH))
                 for _ in range(25)]  # more than the read pool holds
        await asyncio.to_thread(wait_for, lambda: _waiting_reads(settings.database_url) >= 1, 5, 0.05)
        # meanwhile ingest, drain and health go on: their connections are not the readers'
        body = {"event": "w", "userId": "u", "messageId": str(uuid.uuid4())}
        assert (await client.post("/analytics/track", headers=WRITE_AUTH, json=body)).status == 202
        sub = client.app[ANALYTICS_APP]
        assert await Drainer(sub[WORKER_POOL], sub[REDIS], settings).drain_until_empty() == 1
        health = await client.get("/analytics/health")
        assert health.status == 200 and (await health.json())["postgres"]["reachable"] is True
        # the drain committed and /health answered while every read still waited on the lock: none had a
        # connection to give back yet (each ends only at its query timeout)
        assert not any(read.done() for read in reads)
        assert await asyncio.to_thread(_waiting_reads, settings.database_url) >= 1
        responses = await asyncio.wait_for(asyncio.gather(*reads), HANG_GUARD)
        statuses = [r.status for r in responses]
        assert statuses == [503] * 25
        first = await responses[0].json()
        assert first["status"] == "error" and "ANALYTICS_QUERY_TIMEOUT" in first["message"]
        assert responses[0].headers["Retry-After"]
        documented = (await (await client.get("/analytics/openapi.json")).json())["paths"]["/metrics"]["get"]
        assert "Retry-After" in documented["responses"]["503"]["headers"]  # the answer is in the spec
    finally:
        lock.close()
    # the pool recovered: a read answers
    assert (await client.get(f"/analytics/metrics?{RANGE}", headers=SECRET_AUTH)).status == 200


async def test_a_read_is_cancelled_on_the_server_when_its_client_leaves(client: Any, settings: Any) -> None:
    """ANALYTICS_QUERY_TIMEOUT is 30 s here: only the cancel can end the query within seconds."""
    lock = await asyncio.to_thread(_lock_aggregates, settings.database_url)
    try:
        request = asyncio.create_task(client.get(f"/analytics/metrics?{RANGE}", headers=SECRET_AUTH,
                                                 timeout=aiohttp.ClientTimeout(total=1.5)))
        await asyncio.to_thread(wait_for, lambda: _waiting_reads(settings.database_url) == 1, 1.2)  # it runs
        with pytest.raises(asyncio.TimeoutError):
            await request
        await asyncio.to_thread(wait_for, lambda: _waiting_reads(settings.database_url) == 0, 5)
    finally:
        lock.close()


async def test_postgres_down_gives_503_json_on_every_endpoint(make_client: Any, settings: Any,
                                                              own_postgres: Any) -> None:
    client = await make_client(settings.with_(database_url=own_postgres.url()))
    await asyncio.to_thread(own_postgres.stop)
    for method, path, body in STORE_ENDPOINTS:
        response = await client.request(method, path, headers=SECRET_AUTH, json=body)
        if path.startswith("/analytics/counters"):
            assert response.status == 200, path  # Redis only
            continue
        assert response.status == 503, (method, path, response.status, await response.text())
        payload = await response.json()
        assert payload["status"] == "error" and payload["message"], path
        assert response.headers["Retry-After"]
    health = await client.get("/analytics/health")
    assert health.status == 503 and (await health.json())["postgres"]["reachable"] is False


async def test_redis_down_gives_503_json_on_every_endpoint(make_client: Any, settings: Any, own_redis: Any) -> None:
    client = await make_client(settings.with_(redis_url=own_redis.url(), quota_enabled=True))
    await asyncio.to_thread(own_redis.stop)
    redis_endpoints = [
        ("POST", "/analytics/track", {"event": "e", "userId": "u"}, WRITE_AUTH),
        ("POST", "/analytics/batch", {"batch": [{"type": "track", "event": "e", "userId": "u"}]}, WRITE_AUTH),
        ("POST", "/analytics/hit", {"writeKey": WRITE_KEY, "site": "a.test", "path": "/x"}, {}),
        ("GET", "/analytics/counters/e", None, SECRET_AUTH),
    ]
    # concurrently: each waits out the client's reconnect backoff (about 5 s) before giving up
    responses = await asyncio.gather(*(client.request(method, path, headers=headers, json=body)
                                       for method, path, body, headers in redis_endpoints))
    for (method, path, _body, _headers), response in zip(redis_endpoints, responses, strict=True):
        assert response.status == 503, (method, path, response.status, await response.text())
        payload = await response.json()
        assert payload["status"] == "error" and payload["message"], path
    health = await client.get("/analytics/health")
    assert health.status == 503 and (await health.json())["redis"]["reachable"] is False


def test_no_handler_takes_a_pool_connection_itself() -> None:
    """Handlers query through pools.reading / pools.writing (statement timeout, cancel, 503 mapping); only /health
    touches pools directly, so no request can take the worker's connections."""
    from pathlib import Path

    api = Path(__file__).resolve().parent.parent / "nself_analytics" / "api"
    offenders = [p.name for p in api.glob("*.py")
                 if p.name != "health.py" and any(word in p.read_text() for word in (".acquire(", "PG_POOL",
                                                                                      "WORKER_POOL", "READ_POOL"))]
    assert offenders == []
