"""ANALYTICS_WORKERS processes serving one port: a parent that forks them, restarts one that dies, and
stops them all gracefully on SIGTERM/SIGINT.

Each worker process binds the port itself with SO_REUSEPORT (the kernel spreads new connections over
them) and runs the whole app: its own pools, its own drainers. Which of them runs the aggregator and the
pruner is decided by the leader lock (pipeline/leader.py), across every process of every instance. A worker dies
with its parent (Linux PR_SET_PDEATHSIG): a SIGKILLed instance leaves no process behind.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

import structlog

__all__ = ["run_workers"]

log = structlog.get_logger("nself_analytics.host.processes")

# A worker that dies sooner than this after its start counts towards a crash loop...
EARLY_DEATH_SECONDS = 10.0
# ...and this many early deaths in a row stop the instance (a port in use, a bad store URL).
MAX_EARLY_DEATHS = 3
# How long a graceful stop may take (each worker drains what is queued) before stragglers are killed: within
# startup.SHUTDOWN_SECONDS (10 s), which the parent's watchdog enforces.
STOP_TIMEOUT_SECONDS = 8.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def _share_with_workers() -> None:
    """What the parent built (modules, settings) is frozen before the workers are forked: their collections never
    scan it, so they do not write to its pages, which stay shared instead of being copied into each worker."""
    gc.collect()
    gc.freeze()


def _spawn(slot: int, serve_one: Callable[[int], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0  # the child: serve until SIGTERM, then leave without running the parent's cleanup
    try:
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the parent, which stops us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        serve_one(slot)
    except BaseException:  # whatever ends a worker, it must not return into the parent's code
        log.exception("worker_failed", slot=slot)
        code = 1
    finally:
        os._exit(code)


def run_workers(count: int, serve_one: Callable[[int], None], on_stop: Callable[[], None] | None = None) -> int:
    """Fork ``count`` workers running ``serve_one(slot)``; return 0 after a graceful stop, 1 after a crash loop.
    ``on_stop`` is called when a stop signal arrives (the caller's shutdown watchdog)."""
    children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started at)
    state = {"stopping": False, "deadline": 0.0}

    def stop(signum: int, _frame: FrameType | None) -> None:
        if on_stop is not None:
            on_stop()
        if not state["stopping"]:
            log.info("stopping_workers", signal=signal.Signals(signum).name, workers=len(children))
            state["stopping"], state["deadline"] = True, time.monotonic() + STOP_TIMEOUT_SECONDS
        for pid in children:
            _signal(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    _share_with_workers()
    try:
        for slot in range(count):
            children[_spawn(slot, serve_one)] = (slot, time.monotonic())
        log.info("workers_started", workers=count, pids=sorted(children))
        return _supervise(children, serve_one, state)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _supervise(children: dict[int, tuple[int, float]], serve_one: Callable[[int], None],
               state: dict[str, float]) -> int:
    early_deaths = 0
    code = 0
    while children:
        if state["stopping"] and time.monotonic() > state["deadline"]:
            for pid in children:
                _signal(pid, signal.SIGKILL)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.2)
            continue
        if pid not in children:
            continue
        slot, started = children.pop(pid)
        if state["stopping"]:
            continue
        log.warning("worker_died", slot=slot, pid=pid, status=os.waitstatus_to_exitcode(status))
        early_deaths = early_deaths + 1 if time.monotonic() - started < EARLY_DEATH_SECONDS else 0
        if early_deaths >= MAX_EARLY_DEATHS:
            log.error("workers_crash_loop", deaths=early_deaths)
            code = 1
            state["stopping"], state["deadline"] = True, time.monotonic() + STOP_TIMEOUT_SECONDS
            for other in children:
                _signal(other, signal.SIGTERM)
            continue
        children[_spawn(slot, serve_one)] = (slot, time.monotonic())
    return code
