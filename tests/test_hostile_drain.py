"""Hostile input against the drain: an entry Postgres refuses for any reason about its data is isolated and
dead-lettered with the error text, its batch-mates are stored; a lost connection retries the whole batch; the
dead-letter stream is bounded, shown by /health, and driven by ``nself-analytics dead-letters``."""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest

from nself_analytics.ingest.redis_keys import DEAD_LETTER_KEY, DROPPED_KEY, STREAM_KEY
from nself_analytics.pipeline import deadletters
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .conftest import SECRET, pg_execute, wait_for

FULL_TOKEN = {"Authorization": f"Bearer {SECRET}"}  # /health shows queue figures to a token of every account


def _entry(tag: str, **fields: Any) -> str:
    now = datetime.now(UTC) - timedelta(minutes=1)
    return json.dumps({"type": "track", "event": tag, "user_id": "u", "ts": now.isoformat(),
                       "message_id": str(uuid.uuid4()), **fields})


def _stored(settings: Any, tag: str) -> int:
    return int(pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_events WHERE event = %s",
                          (tag,))[0][0])


async def _fill(r: Any, payloads: list[str]) -> None:
    for payload in payloads:
        await r.xadd(STREAM_KEY, {"e": payload})


async def test_program_limit_error_is_isolated_not_retried_forever(client: Any, settings: Any) -> None:
    """ProgramLimitExceeded (an index row too large, SQLSTATE 54000) is an OperationalError in psycopg2, yet it is
    about the data: the entry goes to the dead letters, the 20 others are stored in the same drain."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    huge_name = "".join(random.choices(string.ascii_letters + string.digits, k=9000))  # incompressible
    payloads = [_entry("ok54") for _ in range(10)] + [_entry(huge_name)] + [_entry("ok54") for _ in range(10)]
    await _fill(r, payloads)
    assert await Drainer(sub[PG_POOL], r, settings).drain_until_empty() == 21
    assert _stored(settings, "ok54") == 20
    dead = await deadletters.listing(r, limit=10)
    assert len(dead) == 1
    assert "ProgramLimitExceeded" in dead[0].error and "index row" in dead[0].error
    assert json.loads(dead[0].payload)["event"] == huge_name
    assert await r.xlen(STREAM_KEY) == 0


async def test_every_data_error_kind_is_split_out(client: Any, settings: Any) -> None:
    """Out-of-range number, bad uuid, null event, unreadable JSON, missing ts: each is set aside alone, with the
    reason (the record Struct refuses them before Postgres sees them)."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    bad = [_entry("okk", screen_width=99999), _entry("okk", message_id="nope"), _entry("okk", event=None),
           "{not json", json.dumps({"type": "track", "event": "okk"})]
    await _fill(r, [_entry("okk") for _ in range(5)] + bad + [_entry("okk") for _ in range(5)])
    assert await Drainer(sub[PG_POOL], r, settings).drain_until_empty() == 15
    assert _stored(settings, "okk") == 10
    letters = await deadletters.listing(r, limit=10)
    assert sorted(letter.payload for letter in letters) == sorted(bad)
    assert all(letter.error.startswith("unreadable queue entry: ") and len(letter.error) > 30 for letter in letters)


async def test_lost_connection_retries_the_whole_batch(client: Any, settings: Any) -> None:
    """The drain's connection is killed while its write waits (on a lock held here): nothing is dead-lettered,
    the batch stays pending, and the next drain stores all of it."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    await _fill(r, [_entry("conn") for _ in range(8)])
    drainer = Drainer(sub[PG_POOL], r, settings, name="conn-test")
    await ensure_partitions_for_today(sub)
    blocker = await asyncio.to_thread(psycopg2.connect, settings.database_url)
    await asyncio.to_thread(blocker.cursor().execute, "LOCK TABLE np_analytics_aggregate_dirty IN EXCLUSIVE MODE")
    try:
        drain = asyncio.create_task(drainer.drain_once())
        waiting = ("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND query LIKE '%%jsonb_to_recordset%%'")
        pids = await asyncio.to_thread(wait_for, lambda: pg_execute(settings.database_url, waiting), 10)
        pg_execute(settings.database_url, "SELECT pg_terminate_backend(%s)", (pids[0][0],))
        with pytest.raises(psycopg2.Error):
            await drain
    finally:
        blocker.close()
    assert await r.xlen(DEAD_LETTER_KEY) == 0
    assert _stored(settings, "conn") == 0
    assert await drainer.drain_until_empty() == 8
    assert _stored(settings, "conn") == 8


async def ensure_partitions_for_today(sub: Any) -> None:
    from nself_analytics.store.partitions import ensure_partitions

    async with sub[PG_POOL].acquire() as conn:
        await ensure_partitions(conn, [datetime.now(UTC).date()])


async def test_events_older_than_retention_are_counted_not_stored(client: Any, settings: Any, auth: Any) -> None:
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    old = (datetime.now(UTC) - timedelta(days=settings.retention_days + 2)).isoformat()
    await _fill(r, [_entry("aged", ts=old), _entry("aged", ts=old, source_account_id="acct2"), _entry("aged")])
    assert await Drainer(sub[PG_POOL], r, settings).drain_until_empty() == 3
    assert _stored(settings, "aged") == 1
    assert await r.hgetall(DROPPED_KEY) == {"primary": "1", "acct2": "1"}
    assert await r.xlen(DEAD_LETTER_KEY) == 0
    health = await (await client.get("/analytics/health", headers=FULL_TOKEN)).json()
    assert health["dropped_too_old"] == 2


async def test_dead_letters_are_bounded_and_in_health(make_client: Any, settings: Any) -> None:
    client = await make_client(settings.with_(dead_letter_max=3))
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    await _fill(r, ["{broken" + str(i) for i in range(5)] + [_entry("fine")])
    assert await Drainer(sub[PG_POOL], r, sub_settings(client)).drain_until_empty() == 6
    letters = await deadletters.listing(r, limit=10)
    assert [json_text.payload for json_text in letters] == ["{broken2", "{broken3", "{broken4"]  # oldest trimmed
    health = await (await client.get("/analytics/health", headers=FULL_TOKEN)).json()
    assert health["dead_letters"] == 3
    assert _stored(settings, "fine") == 1


def sub_settings(client: Any) -> Any:
    from nself_analytics.web.appkeys import SETTINGS

    return client.app[ANALYTICS_APP][SETTINGS]


async def test_dead_letters_expire_with_retention(client: Any, settings: Any) -> None:
    r = client.app[ANALYTICS_APP][REDIS]
    old_ms = int((datetime.now(UTC) - timedelta(days=settings.retention_days + 1)).timestamp() * 1000)
    await r.xadd(DEAD_LETTER_KEY, {"entry": "1-0", "error": "x", "e": "{}"}, id=f"{old_ms}-0")
    await r.xadd(DEAD_LETTER_KEY, {"entry": "2-0", "error": "y", "e": "{}"})
    assert await deadletters.trim_older_than(r, settings.retention_days * 86_400) == 1
    assert [letter.entry for letter in await deadletters.listing(r, limit=5)] == ["2-0"]


def _cli(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": settings.redis_url, "DATABASE_URL": settings.database_url,
           "ANALYTICS_DATA_DIR": str(settings.data_dir), "ANALYTICS_SECRET_TOKEN": settings.secret_token,
           "ANALYTICS_WRITE_KEYS": ",".join(settings.write_keys)}
    return subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "dead-letters", *args], env=env,
                          capture_output=True, text=True, timeout=60)


async def test_cli_lists_replays_and_drops(client: Any, settings: Any) -> None:
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    async with r.pipeline(transaction=True) as pipe:
        deadletters.add(pipe, "9-0", _entry("replayed", source_account_id="acct9"), "was refused once", 100)
        deadletters.add(pipe, "9-1", "{junk", "unreadable", 100)
        await pipe.execute()
    listed = [json.loads(line) for line in _cli(settings, "list").stdout.splitlines()]
    assert [(x["entry"], x["source_account_id"], x["error"]) for x in listed] == [
        ("9-0", "acct9", "was refused once"), ("9-1", "primary", "unreadable")]
    assert [json.loads(line)["entry"] for line in _cli(settings, "list", "--account", "acct9").stdout.splitlines()] \
        == ["9-0"]
    replay = _cli(settings, "replay", listed[0]["id"])
    assert replay.returncode == 0 and json.loads(replay.stdout) == {"replayed": 1}
    assert await Drainer(sub[PG_POOL], r, settings).drain_until_empty() == 1
    assert _stored(settings, "replayed") == 1
    dropped = _cli(settings, "drop")
    assert json.loads(dropped.stdout) == {"dropped": 1}
    assert await r.xlen(DEAD_LETTER_KEY) == 0


def test_cli_with_redis_unreachable_exits_2(settings: Any) -> None:
    result = _cli(settings.with_(redis_url="redis://127.0.0.1:1/0"), "list")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Redis is unavailable" in result.stderr
