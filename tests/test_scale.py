"""Scale-out on the real stores: one leader across processes (advisory lock), ANALYTICS_WORKERS processes
on one port, a graceful stop of all of them by SIGTERM to the parent."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from nself_analytics.ingest.redis_keys import DRAIN_GROUP, STREAM_KEY
from nself_analytics.pipeline.leader import Leadership

from .clock_support import days_ago, iso
from .conftest import Stores, pg_execute, start_service, wait_for, wait_healthy
from .scale_support import alive, children_of, fresh_stores, health, post_batch, service_env

# a deadline against a hang only, not a measured time
HANG_GUARD = 30


async def test_one_leader_and_a_takeover_within_seconds(settings: Any) -> None:
    key = 7_000_001  # not the service's key: a worker of another test may hold that one
    candidates = [Leadership(settings.database_url, key=key, retry=0.2) for _ in range(3)]
    try:
        for candidate in candidates:
            await candidate.attempt()
        assert [c.held for c in candidates] == [True, False, False]
        # the holder dies: its backend goes (as when its process is SIGKILLed, the server ends the session)
        pg_execute(settings.database_url, "SELECT pg_terminate_backend(pid) FROM pg_locks "
                   "WHERE locktype = 'advisory' AND objid = %s AND granted", (key,))
        stop = asyncio.Event()
        runs = [asyncio.create_task(c.run(stop)) for c in candidates]
        # one standby takes over on one of its retries (every 0.2 s); the deadline guards against a hang only
        await asyncio.to_thread(wait_for, lambda: sum(c.held for c in candidates[1:]) == 1, HANG_GUARD, 0.05)
        # the dead holder's next check finds its connection gone: it leads no more
        await asyncio.to_thread(wait_for, lambda: not candidates[0].held, 5, 0.05)
        assert sum(c.held for c in candidates) == 1 and not candidates[0].held
        stop.set()
        await asyncio.gather(*runs)
        assert not any(c.held for c in candidates)
        assert pg_execute(settings.database_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                          "AND objid = %s", (key,)) == [(0,)]
    finally:
        for candidate in candidates:
            await candidate.release()


@pytest.fixture
def workers_service(stores: Stores, tmp_path: Path) -> Iterator[tuple[Any, str, str, str]]:
    database_url, redis_url = fresh_stores(stores, "analytics_workers")
    env, base_url = service_env(database_url, redis_url, tmp_path, ANALYTICS_WORKERS="2")
    process = start_service(env, tmp_path / "service.log")
    try:
        wait_healthy(base_url)
        yield process, base_url, database_url, redis_url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _processes(base_url: str, tries: int = 40) -> dict[int, bool]:
    """pid -> leader, of the workers that answered ``tries`` health checks on new connections."""
    seen: dict[int, bool] = {}
    for _ in range(tries):
        process = health(base_url)["process"]
        seen[process["pid"]] = process["leader"]
    return seen


def test_workers_share_the_port_with_one_leader_and_stop_together(workers_service: Any) -> None:
    process, base_url, database_url, redis_url = workers_service
    workers = children_of(process.pid)
    assert len(workers) == 2
    wait_for(lambda: set(_processes(base_url)) == workers, 20, 0.2)  # both answer on the one port
    wait_for(lambda: sum(_processes(base_url).values()) == 1, 10, 0.2)
    # each worker drains with its own consumers
    consumers = redis.Redis.from_url(redis_url, decode_responses=True).xinfo_consumers(STREAM_KEY, DRAIN_GROUP)
    assert {int(c["name"].split("-")[-3]) for c in consumers} == workers

    # the leader dies: its parent starts another worker, and one of the workers leads again within seconds
    leader = next(pid for pid, leads in _processes(base_url).items() if leads)
    os.kill(leader, signal.SIGKILL)
    # the deadlines guard against a hang only (how fast is bench/'s to measure)
    wait_for(lambda: len(children_of(process.pid) - {leader}) == 2, HANG_GUARD, 0.1)
    wait_for(lambda: sum(_processes(base_url, 10).values()) == 1, HANG_GUARD, 0.2)

    # accepted events, then SIGTERM to the parent: every worker stops after draining, nothing is left behind
    run = uuid.uuid4().hex[:8]
    for b in range(10):
        assert post_batch(base_url, [{"type": "track", "event": "scaled", "userId": f"u{b}-{i}",
                                      "messageId": f"{run}-{b}-{i}"} for i in range(50)]) == 202
    workers = children_of(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not [pid for pid in workers if alive(pid)]
    assert pg_execute(database_url, "SELECT count(*) FROM np_analytics_events WHERE event = 'scaled'") == [(500,)]


def _pending_of(client: redis.Redis, pid: int) -> int:
    try:
        consumers = client.xinfo_consumers(STREAM_KEY, DRAIN_GROUP)
    except redis.ResponseError:
        return 0
    return sum(int(c["pending"]) for c in consumers if f"-{pid}-" in c["name"])


def test_three_instances_store_every_event_once_through_a_sigkill(stores: Stores, tmp_path: Path) -> None:
    """/batch spread over 3 instances on one Redis and one Postgres; one is caught holding undrained
    entries, SIGKILLed and restarted: each accepted event is stored once, its entries are taken over by the
    others, and the aggregates count each event once."""
    database_url, redis_url = fresh_stores(stores, "analytics_three")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    instances = []
    for i in range(3):
        env, base_url = service_env(database_url, redis_url, tmp_path / f"i{i}", ANALYTICS_WORKERS="1")
        instances.append([env, base_url, start_service(env, tmp_path / f"i{i}.log")])
    try:
        for _env, base_url, _process in instances:
            wait_healthy(base_url)
        run = uuid.uuid4().hex[:8]
        accepted: set[str] = set()
        sent: list[int] = []

        def send(batch_no: int) -> None:
            sent.append(batch_no)
            ids = [f"{run}-{batch_no}-{i}" for i in range(50)]
            messages = [{"type": "track", "event": "spread", "userId": f"u{batch_no % 7}", "messageId": m,
                         "timestamp": iso(days_ago(17))} for m in ids]
            for attempt in range(3):  # an instance that is down: the client retries the same batch elsewhere
                if post_batch(instances[(batch_no + attempt) % 3][1], messages) == 202:
                    accepted.update(ids)
                    return

        for b in range(30):
            send(b)
        victim = instances[1][2]
        caught = 0
        for b in range(30, 90):  # freeze the victim until it holds entries it read and did not acknowledge
            send(b)
            victim.send_signal(signal.SIGSTOP)
            caught = _pending_of(client, victim.pid)
            if caught:
                break
            victim.send_signal(signal.SIGCONT)
        assert caught, "the victim never held undrained entries"
        victim.kill()
        victim.wait(timeout=30)
        for b in range(90, 120):
            send(b)
        instances[1][2] = start_service(instances[1][0], tmp_path / "i1-again.log")
        wait_healthy(instances[1][1])
        for b in range(120, 150):
            send(b)
        expected = len(accepted)
        assert expected == len(sent) * 50  # a batch refused by the dead instance was accepted by another

        def stored() -> tuple[int, int]:
            [(rows, distinct)] = pg_execute(database_url, "SELECT count(*), count(DISTINCT message_id) "
                                            "FROM np_analytics_events WHERE event = 'spread'")
            return int(rows), int(distinct)

        wait_for(lambda: stored()[0] >= expected and client.xlen(STREAM_KEY) == 0, 60, 0.3)
        assert stored() == (expected, expected)
        assert _pending_of(client, victim.pid) == 0  # the killed instance's entries were taken over
        wait_for(lambda: pg_execute(database_url, "SELECT coalesce(sum(count), 0) FROM np_analytics_aggregates "
                                    "WHERE event = 'spread' AND granularity = 'hour'") == [(expected,)], 30, 0.3)
        leaders = [health(base_url)["process"]["leader"] for _env, base_url, _process in instances]
        assert sum(leaders) == 1
    finally:
        for _env, _base_url, process in instances:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait(timeout=30)
