"""ANALYTICS_READ_DATABASE_URL: a real streaming replica of the test's PostgreSQL (pg_basebackup -R);
analytical reads go there and match the primary's; /health reports the replica's lag."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.migrate import apply_migrations
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .conftest import TABLES, pg_execute, wait_for

# a day inside the retention window (older events are not stored)
DAY = (datetime.now(UTC) - timedelta(days=5)).date()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A small primary of its own (a base backup of the shared test server would copy every test's data)
    and a streaming replica of it: their URLs, migrated."""
    primary = EmbeddedPostgres(tmp_path_factory.mktemp("primary"))
    replica = EmbeddedPostgres(tmp_path_factory.mktemp("replica"))
    try:
        primary_url = primary.start()
        apply_migrations(primary_url)
        replica.start_replica_of("127.0.0.1", primary.port, "postgres", primary.password)
        yield primary_url, urlunsplit(urlsplit(replica.url())._replace(path=urlsplit(primary_url).path))
    finally:
        replica.stop()
        primary.stop()


@pytest.fixture
def on_pair(settings: Any, pair: tuple[str, str]) -> Any:
    """Settings on the pair's primary (tables emptied), and the replica's URL."""
    primary_url, replica_url = pair
    pg_execute(primary_url, f"TRUNCATE {TABLES}")
    return settings.with_(database_url=primary_url), replica_url


def _caught_up(replica_url: str, primary_url: str) -> bool:
    [(lsn,)] = pg_execute(primary_url, "SELECT pg_current_wal_lsn()::text")
    try:
        [(done,)] = pg_execute(replica_url, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))
    except psycopg2.Error:
        return False
    return bool(done)


async def test_reads_go_to_the_replica_and_match(make_client: Any, auth: Any, on_pair: Any) -> None:
    settings, replica_url = on_pair
    assert pg_execute(replica_url, "SELECT pg_is_in_recovery()") == [(True,)]
    reader = await make_client(settings.with_(read_database_url=replica_url))
    primary = await make_client(settings)
    app = reader.app[ANALYTICS_APP]

    async def drain() -> int:
        return await Drainer(app[PG_POOL], app[REDIS], settings).drain_until_empty()

    async def track(event: str, n: int) -> None:
        batch = [{"type": "track", "event": event, "userId": f"u{i % 5}", "timestamp": f"{DAY}T10:00:00Z"}
                 for i in range(n)]
        assert (await reader.post("/analytics/batch", headers=auth["write"], json={"batch": batch})).status == 202

    async def metrics(client: Any) -> Any:
        response = await client.get(f"/analytics/metrics?events=signup&start_date={DAY - timedelta(days=1)}"
                                    f"&end_date={DAY + timedelta(days=1)}", headers=auth["secret"])
        assert response.status == 200
        return await response.json()

    await track("signup", 12)
    await drain()
    await asyncio.to_thread(wait_for, lambda: _caught_up(replica_url, settings.database_url), 30, 0.1)
    first = await metrics(reader)
    assert first == await metrics(primary) and "12" in str(first)

    # replay paused: new events are on the primary only, and the reader does not see them: it reads the replica
    pg_execute(replica_url, "SELECT pg_wal_replay_pause()")
    try:
        await track("signup", 5)
        await drain()
        assert await metrics(reader) == first
        assert await metrics(primary) != first
        health = await (await reader.get("/analytics/health", headers=auth["secret"])).json()
        assert health["replica"]["reachable"] is True and health["replica"]["in_recovery"] is True
        assert health["replica"]["lag_seconds"] is not None
    finally:
        pg_execute(replica_url, "SELECT pg_wal_replay_resume()")
    await asyncio.to_thread(wait_for, lambda: _caught_up(replica_url, settings.database_url), 30, 0.1)
    assert await metrics(reader) == await metrics(primary)

    async def lag() -> Any:
        return (await (await reader.get("/analytics/health", headers=auth["secret"])).json())["replica"]["lag_seconds"]

    # caught up, the health shows no lag (the primary's background writes can put it a few ms behind for a moment)
    for _ in range(100):  # a hang guard of about 10 s
        if (seen := await lag()) == 0:
            break
        await asyncio.sleep(0.1)
    assert seen == 0


async def test_writes_and_saved_objects_stay_on_the_primary(make_client: Any, auth: Any, on_pair: Any) -> None:
    """A funnel saved through a reader is read back at once (the primary), though the replica is paused."""
    settings, replica_url = on_pair
    reader = await make_client(settings.with_(read_database_url=replica_url))
    pg_execute(replica_url, "SELECT pg_wal_replay_pause()")
    try:
        created = await reader.post("/analytics/funnels", headers=auth["secret"],
                                    json={"name": "f", "steps": ["a", "b"]})
        assert created.status == 201, await created.text()
        funnel_id = (await created.json())["funnel"]["id"]
        fetched = await reader.get(f"/analytics/funnels/{funnel_id}", headers=auth["secret"])
        assert fetched.status == 200
    finally:
        pg_execute(replica_url, "SELECT pg_wal_replay_resume()")
