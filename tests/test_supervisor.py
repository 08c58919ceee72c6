"""The supervised background runtime (pipeline/supervisor.py): every task restarts after any exception, /health names
it, ingest keeps storing events exactly once, and everything recovers when the fault is removed (fault injection:
a task's step raising an unexpected exception type once, and a store error that is not a connection loss)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from nself_analytics.pipeline import runtime as runtime_module
from nself_analytics.pipeline import supervisor as supervisor_module
from nself_analytics.pipeline.runtime import WORKER, Worker
from nself_analytics.pipeline.supervisor import Supervisor
from nself_analytics.web.appkeys import ANALYTICS_APP

from .conftest import pg_execute


async def until(predicate: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def health(client: Any, auth: Any) -> tuple[int, dict[str, Any]]:
    response = await client.get("/analytics/health", headers=auth["secret"])
    return response.status, await response.json()


async def track(client: Any, auth: Any, tag: str, n: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    response = await client.post("/analytics/batch", headers=auth["write"], json={"batch": [
        {"type": "track", "event": tag, "userId": f"u{i}", "messageId": ids[i]} for i in range(n)]})
    assert response.status == 202, await response.text()
    return ids


async def sql(database_url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """pg_execute off the event loop: the worker runs in this loop, and a blocking call could wait on its locks."""
    return await asyncio.to_thread(pg_execute, database_url, statement, params)


async def stored(database_url: str, tag: str) -> tuple[int, int]:
    ((total, distinct),) = await sql(database_url, "SELECT count(*), count(DISTINCT message_id) FROM "
                                     "np_analytics_events WHERE event = %s", (tag,))
    return int(total), int(distinct)


def fault_once(target: Any, attribute: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make ``target.attribute`` (a coroutine function) raise RuntimeError on its next call only."""
    original = getattr(target, attribute)
    fired: list[int] = []

    async def faulty(*args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(1)
            raise RuntimeError("injected fault")
        return await original(*args, **kwargs)

    monkeypatch.setattr(target, attribute, faulty)
    return fired


@pytest.fixture
async def live(make_client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An app with its background runtime; the leader-only jobs run every 0.2 s."""
    monkeypatch.setattr(runtime_module, "MAINTAIN_INTERVAL_SECONDS", 0.2)
    monkeypatch.setattr(runtime_module, "NAME_DELETE_INTERVAL_SECONDS", 0.2)
    client = await make_client(settings.with_(aggregate_interval=0.2), worker=True)
    worker: Worker = client.app[ANALYTICS_APP][WORKER]
    await until(lambda: _true(worker.leadership.held))
    return client, worker


async def _true(value: Any) -> Any:
    return value


async def _equal(found: Any, expected: Any) -> bool:
    return bool(await found == expected)


# --- the supervisor alone ----------------------------------------------------------------------------

async def test_any_exception_restarts_the_step_with_backoff_and_is_recorded() -> None:
    calls: list[float] = []

    async def step() -> float:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise KeyError("not a store error")  # a type no loop catches on its own
        return 0.01

    supervisor = Supervisor(base=0.01, cap=0.05)
    state = supervisor.loop("demo", step)
    supervisor.start()
    await until(lambda: _true(len(calls) >= 5))
    await supervisor.stop()
    assert state.restarts == 3 and state.last_error == "KeyError: 'not a store error'"
    assert state.last_success is not None and state.state == "stopped"
    assert calls[2] - calls[1] >= 0.015  # the second delay doubled the first


async def test_failing_task_is_unhealthy_only_after_the_limit() -> None:
    async def step() -> float:
        raise ValueError("always")

    supervisor = Supervisor(base=0.01, cap=0.01)
    state = supervisor.loop("broken", step)
    supervisor.start()
    await until(lambda: _true(state.state == "failing"))
    assert supervisor.unhealthy() == []
    assert supervisor.unhealthy(now=time.time() + supervisor_module.FAILING_LIMIT_SECONDS + 1) == ["broken"]
    await supervisor.stop()
    with pytest.raises(ValueError, match="exists already"):
        supervisor.loop("broken", step)


async def test_leader_only_job_waits_for_leadership() -> None:
    leads = False
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)

    supervisor = Supervisor(lambda: leads)
    supervisor.every("periodic", 0.01, job)
    supervisor.start()
    await asyncio.sleep(0.1)
    assert runs == []
    leads = True
    await until(lambda: _true(len(runs) >= 2))
    await supervisor.stop()


# --- the runtime under /health --------------------------------------------------------------------------

async def test_health_lists_every_task(live: Any, auth: Any) -> None:
    client, _worker = live
    status, body = await health(client, auth)
    assert status == 200 and body["healthy"] is True
    assert set(body["tasks"]) >= {"drain-0", "drain-1", "leadership", "facts", "webhooks", "aggregate", "maintain",
                                  "delete_names"}
    assert {task["state"] for task in body["tasks"].values()} == {"running"}
    assert body["tasks"]["aggregate"]["leader_only"] is True and body["tasks"]["drain-0"]["leader_only"] is False
    # without the token: no task details
    anonymous = await (await client.get("/analytics/health")).json()
    assert "tasks" not in anonymous


TARGETS: dict[str, Callable[[Worker], tuple[Any, str]]] = {
    "drain-0": lambda w: (w.drainers[0], "drain_once"),
    "drain-1": lambda w: (w.drainers[1], "drain_once"),
    "leadership": lambda w: (w.leadership, "attempt"),
    "facts": lambda w: (w.facts, "run_once"),
    "webhooks": lambda w: (w.sender, "_claim"),
    "aggregate": lambda w: (w.aggregator, "run"),
    "maintain": lambda w: (runtime_module, "maintain_partitions"),
    "delete_names": lambda w: (runtime_module.name_admin, "pending_deletions"),
}


@pytest.mark.parametrize("task", sorted(TARGETS))
async def test_an_unexpected_exception_in_each_task_restarts_it(live: Any, auth: Any, settings: Any, task: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    client, worker = live
    target, attribute = TARGETS[task](worker)
    fired = fault_once(target, attribute, monkeypatch)
    tag = f"fault_{task}"
    await track(client, auth, tag, 30)

    async def named() -> dict[str, Any] | None:
        _status, body = await health(client, auth)
        state = body["tasks"][task]
        return state if state["restarts"] >= 1 else None

    state = await until(named)
    assert fired and state["last_error"] == "RuntimeError: injected fault"

    async def recovered() -> bool:
        _status, body = await health(client, auth)
        state = body["tasks"][task]
        return state["state"] == "running" and state["last_success"] > time.time() - 5 and body["healthy"]

    await until(recovered)
    await until(lambda: _equal(stored(settings.database_url, tag), (30, 30)))
    await track(client, auth, tag + "_after", 5)
    await until(lambda: _equal(stored(settings.database_url, tag + "_after"), (5, 5)))


async def test_a_renamed_rollup_table_fails_the_aggregator_until_renamed_back(live: Any, auth: Any,
                                                                             settings: Any) -> None:
    client, _worker = live
    url = settings.database_url
    await sql(url, "ALTER TABLE np_analytics_aggregates RENAME TO np_analytics_aggregates_away")
    try:
        await track(client, auth, "renamed", 12)

        async def failing() -> dict[str, Any] | None:
            _status, body = await health(client, auth)
            state = body["tasks"]["aggregate"]
            return state if state["state"] == "failing" else None

        state = await until(failing)
        assert "np_analytics_aggregates" in state["last_error"] and "UndefinedTable" in state["last_error"]
        # ingest goes on: the drain stores every event once while the aggregator fails
        await until(lambda: _equal(stored(url, "renamed"), (12, 12)))
        assert (await sql(url, "SELECT count(*) FROM np_analytics_aggregate_dirty"))[0][0] >= 1  # still dirty
    finally:
        await sql(url, "ALTER TABLE np_analytics_aggregates_away RENAME TO np_analytics_aggregates")

    async def aggregated() -> bool:
        rows = await sql(url, "SELECT coalesce(sum(count), 0) FROM np_analytics_aggregates "
                              "WHERE granularity = 'hour' AND event = 'renamed'")
        return int(rows[0][0]) == 12

    await until(aggregated, seconds=60)

    async def recovered() -> dict[str, Any] | None:  # the round that folded the hours has returned
        status, body = await health(client, auth)
        return body if status == 200 and body["tasks"]["aggregate"]["state"] == "running" else None

    body = await until(recovered)
    assert body["tasks"]["aggregate"]["restarts"] >= 1


async def test_a_task_failing_too_long_makes_health_503(live: Any, auth: Any, settings: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client, worker = live
    monkeypatch.setattr(supervisor_module, "FAILING_LIMIT_SECONDS", 0.5)
    broken = [True]
    original = worker.facts.run_once

    async def faulty() -> int:
        if broken[0]:
            raise RuntimeError("facts are broken")
        return await original()

    monkeypatch.setattr(worker.facts, "run_once", faulty)

    async def unhealthy() -> dict[str, Any] | None:
        status, body = await health(client, auth)
        return body if status == 503 else None

    body = await until(unhealthy)
    assert body["healthy"] is False and body["tasks"]["facts"]["state"] == "failing"
    assert any("facts" in problem for problem in body["problems"])
    await track(client, auth, "while_broken", 3)  # ingest is unaffected
    await until(lambda: _equal(stored(settings.database_url, "while_broken"), (3, 3)))
    broken[0] = False

    async def healthy() -> bool:
        status, _body = await health(client, auth)
        return status == 200

    await until(healthy)


async def test_a_stalled_drain_makes_health_503(live: Any, auth: Any, settings: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    client, worker = live
    from nself_analytics.api import health as health_module

    monkeypatch.setattr(health_module, "DRAIN_STALL_SECONDS", 1.0)
    gate = asyncio.Event()
    waiting: set[int] = set()
    for drainer in worker.drainers:
        original = drainer.drain_once

        async def held(*args: Any, _original: Any = original, _index: int = id(drainer), **kwargs: Any) -> int:
            waiting.add(_index)
            await gate.wait()  # a statement held by something: the round never completes
            return int(await _original(*args, **kwargs))

        monkeypatch.setattr(drainer, "drain_once", held)
    try:
        await until(lambda: _true(len(waiting) == len(worker.drainers)))  # no round in flight takes the entries
        await track(client, auth, "stalled", 4)

        async def unhealthy() -> dict[str, Any] | None:
            status, body = await health(client, auth)
            return body if status == 503 else None

        body = await until(unhealthy)
        assert any("drain made no progress" in problem for problem in body["problems"])
    finally:
        gate.set()
    await until(lambda: _equal(stored(settings.database_url, "stalled"), (4, 4)))

    async def healthy() -> bool:
        status, _body = await health(client, auth)
        return status == 200

    await until(healthy)
