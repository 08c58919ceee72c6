"""The embedded stores as children of the service that never outlive it.

A store runs in the foreground as a child process (no daemonizing, no pg_ctl start), so the service can see it die
(``Popen.poll``) and restart it (host/store_keeper.py). On Linux each child asks the kernel for a signal when its
parent dies (prctl PR_SET_PDEATHSIG, set in the child before it runs the server: PostgreSQL gets SIGINT, a fast
shutdown; Redis SIGTERM), so a service killed with SIGKILL, or stopped by its shutdown watchdog, takes its stores
with it. Where that is not available, and for stores left by an older version, a service that starts finds the
stores its data folder's pid files name (checked to be that server: a reused pid is left alone) and stops them
(``stop_orphan``) before starting its own: it holds the data folder's lock, so no other service owns them.

The kernel sends the signal when the *thread* that started the child ends: stores are started by the main thread
or by the keeper's thread, which both live as long as the service.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

__all__ = ["is_alive", "server_named", "spawn", "stop_orphan"]

log = structlog.get_logger("nself_analytics.host.children")

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """The child's preexec function: the signal ``sig`` when the parent dies (Linux), None elsewhere.
    Runs after subprocess dropped to the server's user (a change of user would clear the setting)."""
    libc = _LIBC
    if libc is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody will send the signal
            os.kill(os.getpid(), sig)

    return preexec


def spawn(command: list[str], *, log_file: Path, parent_death_signal: int | None, umask: int,
          user: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start a store in the foreground, its output appended to ``log_file``; with ``parent_death_signal``, that
    signal stops it when the thread that starts it ends (so only a thread that lives as long as the service may:
    the main thread or the keeper's; a store started for a test or a script from a passing thread gets None)."""
    preexec = None if parent_death_signal is None else _die_with_parent(parent_death_signal)
    with log_file.open("ab") as output:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, cwd="/",
                                umask=umask, preexec_fn=preexec, **user)


def is_alive(pid: int) -> bool:
    """A process with this pid runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def server_named(pid: int, name: str) -> bool:
    """Whether ``pid`` runs a program called ``name`` (a pid file's pid may have been reused by anything)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return is_alive(pid)  # no /proc: trust the pid file
    return Path(argv0.split()[0] if argv0 else "").name.startswith(name) or argv0.startswith(name)


def stop_orphan(pid: int | None, name: str, sig: int, what: str, timeout: float = 30) -> bool:
    """Stop a store a previous service left running (``sig``, then SIGKILL after ``timeout``); True if one was."""
    if pid is None or not is_alive(pid) or not server_named(pid, name):
        return False
    log.warning("embedded_orphan_stopped", store=what, pid=pid)
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    return True
