"""The supervisor of a process's background loops: every loop runs under it, none can die silently.

A loop is a *step* called again and again: ``supervisor.loop(name, step)`` for continuous work (a drainer, the
webhook sender, leader election), where ``step()`` does one round and returns the seconds to wait before the next;
``supervisor.every(name, seconds, job, leader_only=True)`` for a periodic job (the aggregator, maintenance), run
only while this process leads (pipeline/leader.py) when ``leader_only``. Any exception a step raises (any type) is
logged with its traceback, the task is marked ``failing`` and the step is called again after a capped exponential
backoff (BACKOFF_BASE_SECONDS doubling to BACKOFF_CAP_SECONDS); a step that returns marks it ``running`` with its
``last_success``. ``stop()`` ends every task and logs (never drops) what a task raised while stopping.

Each task's state (``running``, ``failing``, ``stopped``), last success, restarts and last error are what
``/health`` shows under ``tasks`` (``snapshot``); ``unhealthy`` says why the process is not healthy: a task
failing for more than FAILING_LIMIT_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog

from ..store.tx import statement_timeouts

__all__ = ["FAILING_LIMIT_SECONDS", "STORE_TASKS_FILE", "Supervisor", "TaskState", "external_tasks",
           "write_external_tasks"]

log = structlog.get_logger("nself_analytics.pipeline.supervisor")

BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 30.0
# A task failing for longer than this makes /health answer 503.
FAILING_LIMIT_SECONDS = 300.0
# How often a leader-only job checks whether this process leads now.
LEADER_CHECK_SECONDS = 1.0

Step = Callable[[], Awaitable[float]]

# The states of tasks run outside the serving processes (the embedded stores' keeper of host/store_keeper.py, in the
# process that started the stores), in the data folder: /health shows them with this process's tasks.
STORE_TASKS_FILE = "store_tasks.json"


class TaskState(msgspec.Struct):
    """What /health shows of one background task (times are Unix seconds)."""

    name: str
    state: str = "running"  # running | failing | stopped
    leader_only: bool = False
    started_at: float = 0.0
    last_success: float | None = None
    failing_since: float | None = None
    restarts: int = 0
    last_error: str | None = None
    detail: dict[str, Any] = msgspec.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


class Supervisor:
    """Runs named steps as asyncio tasks, restarts them with backoff, and records their states."""

    def __init__(self, leads: Callable[[], bool] = lambda: True, *, base: float = BACKOFF_BASE_SECONDS,
                 cap: float = BACKOFF_CAP_SECONDS) -> None:
        self.leads = leads
        self.base = base
        self.cap = cap
        self.stop_event = asyncio.Event()
        self.states: dict[str, TaskState] = {}
        self._steps: dict[str, Step] = {}
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def loop(self, name: str, step: Step, *, leader_only: bool = False,
             on_stop: Callable[[], Awaitable[None]] | None = None) -> TaskState:
        """Declare a continuous loop: ``step()`` does one round and returns the seconds until the next."""
        if name in self.states:
            raise ValueError(f"a background task named {name!r} exists already")
        self.states[name] = TaskState(name, leader_only=leader_only, started_at=time.time())
        self._steps[name] = step
        if on_stop is not None:
            self._on_stop.append(on_stop)
        if self._tasks:  # declared after start: run it now
            self._tasks.append(asyncio.create_task(self._run(name), name=name))
        return self.states[name]

    def every(self, name: str, seconds: float, job: Callable[[], Awaitable[Any]], *,
              leader_only: bool = True) -> TaskState:
        """Declare a periodic job: ``job()`` every ``seconds`` (only while this process leads, if ``leader_only``),
        under statement_timeouts (a statement ended by its timeout raises StatementTimeout, not CancelledError)."""

        async def step() -> float:
            if leader_only and not self.leads():
                return LEADER_CHECK_SECONDS
            async with statement_timeouts():
                await job()
            return seconds

        return self.loop(name, step, leader_only=leader_only)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(name), name=name) for name in self._steps]

    def succeeded(self, name: str) -> None:
        state = self.states[name]
        state.last_success = time.time()
        if state.state == "failing":
            log.info("task_recovered", task=name, restarts=state.restarts)
        state.state, state.failing_since = "running", None

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), seconds)

    async def _run(self, name: str) -> None:
        state, step = self.states[name], self._steps[name]
        failures = 0
        while not self.stop_event.is_set():
            try:
                wait = await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any type: logged with its traceback, and the loop restarts
                failures += 1
                delay = min(self.base * 2 ** (failures - 1), self.cap)
                now = time.time()
                state.state = "failing"
                state.failing_since = state.failing_since or now
                state.restarts += 1
                state.last_error = f"{type(exc).__name__}: {str(exc).strip()}"[:500]
                log.error("task_failed", task=name, error=state.last_error, restarts=state.restarts,
                          retry_in=round(delay, 3), exc_info=exc)
                await self._wait(delay)
                continue
            failures = 0
            self.succeeded(name)
            await self._wait(wait)
        state.state = "stopped"

    async def stop(self) -> None:
        """Stop every task; log (never drop) what a task or a clean-up raised."""
        self.stop_event.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, result in zip(self._tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("task_stop_failed", task=task.get_name(), error=str(result)[:300], exc_info=result)
        for clean_up in self._on_stop:
            try:
                await clean_up()
            except Exception as exc:
                log.error("task_cleanup_failed", error=str(exc)[:300], exc_info=exc)
        for state in self.states.values():
            state.state = "stopped"

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: state.as_json() for name, state in self.states.items()}

    def unhealthy(self, now: float | None = None) -> list[str]:
        """Tasks failing for longer than FAILING_LIMIT_SECONDS."""
        now = time.time() if now is None else now
        return [name for name, state in self.states.items()
                if state.state == "failing" and state.failing_since is not None
                and now - state.failing_since > FAILING_LIMIT_SECONDS]


def write_external_tasks(data_dir: Path, states: list[TaskState]) -> None:
    """Publish the states of tasks run outside the serving processes (atomically: a reader sees old or new)."""
    path = Path(data_dir) / STORE_TASKS_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(msgspec.json.encode({state.name: state for state in states}))
    os.replace(temporary, path)


def external_tasks(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The states :func:`write_external_tasks` published (none when there is no such file or it is unreadable)."""
    try:
        found = msgspec.json.decode((Path(data_dir) / STORE_TASKS_FILE).read_bytes(), type=dict[str, TaskState])
    except (OSError, msgspec.DecodeError):
        return {}
    return {name: state.as_json() for name, state in found.items()}
