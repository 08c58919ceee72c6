"""The keeper of the embedded stores: restarts an embedded PostgreSQL or Redis that died (kill -9, a crash), with
capped exponential backoff, in the process that started them (the service's main process).

A thread, not an asyncio task: the stores are children of the main process, which with ANALYTICS_WORKERS > 1 serves
no requests (its workers do). It checks every CHECK_SECONDS; each store is a task named ``embedded-postgres`` /
``embedded-redis`` with the states of pipeline/supervisor.py (``running``, ``failing``, ``stopped``), published in the
data folder (``store_tasks.json``), which every serving process's /health shows under ``tasks``. A store restarted
here is a child of this thread, which lives as long as the service (host/children.py: the parent-death signal).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

import structlog

from ..pipeline.supervisor import BACKOFF_CAP_SECONDS, TaskState, write_external_tasks

__all__ = ["StoreKeeper"]

log = structlog.get_logger("nself_analytics.host.store_keeper")

CHECK_SECONDS = 0.5
FIRST_BACKOFF_SECONDS = 0.5
# Published at least this often while nothing changes (last_success moves on).
PUBLISH_SECONDS = 5.0


class Store(Protocol):
    def is_running(self) -> bool: ...

    def exit_code(self) -> int | None: ...

    def start(self) -> str: ...


class StoreKeeper(threading.Thread):
    def __init__(self, data_dir: Path, stores: dict[str, Store], *, check: float = CHECK_SECONDS) -> None:
        super().__init__(name="store-keeper", daemon=True)
        self.data_dir = data_dir
        self.stores = stores
        self.check = check
        self.states = {name: TaskState(name, started_at=time.time(), last_success=time.time()) for name in stores}
        self._failures = dict.fromkeys(stores, 0)
        self._next_try = dict.fromkeys(stores, 0.0)
        self._halt = threading.Event()
        self._published = 0.0

    def run(self) -> None:
        self._publish()
        while not self._halt.wait(self.check):
            changed = False
            for name, store in self.stores.items():
                try:
                    changed |= self._keep(name, store)
                except Exception as exc:  # the keeper itself never dies: logged, and tried again
                    log.error("store_keeper_failed", store=name, error=str(exc)[:300], exc_info=exc)
            if changed or time.monotonic() - self._published > PUBLISH_SECONDS:
                self._publish()

    def _keep(self, name: str, store: Store) -> bool:
        state = self.states[name]
        if store.is_running():
            state.last_success = time.time()
            if state.state == "failing":
                log.info("embedded_store_restarted", store=name, restarts=state.restarts)
                state.state, state.failing_since, self._failures[name] = "running", None, 0
                return True
            return False
        if time.monotonic() < self._next_try[name]:
            return False
        if state.state != "failing":
            state.last_error = f"exited with code {store.exit_code()}"
            log.error("embedded_store_died", store=name, error=state.last_error)
            state.state, state.failing_since = "failing", time.time()
        state.restarts += 1
        self._failures[name] += 1
        delay = min(FIRST_BACKOFF_SECONDS * 2 ** (self._failures[name] - 1), BACKOFF_CAP_SECONDS)
        self._next_try[name] = time.monotonic() + delay
        try:
            store.start()
        except Exception as exc:
            state.last_error = f"{type(exc).__name__}: {str(exc).strip()}"[:500]
            log.error("embedded_store_restart_failed", store=name, error=state.last_error, retry_in=delay)
        return True

    def _publish(self) -> None:
        self._published = time.monotonic()
        try:
            write_external_tasks(self.data_dir, list(self.states.values()))
        except OSError as exc:
            log.warning("store_tasks_unwritten", error=str(exc)[:200])

    def halt(self) -> None:
        """Stop watching (before the stores are stopped on purpose); the published states say ``stopped``."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)
        for state in self.states.values():
            state.state = "stopped"
        self._publish()
