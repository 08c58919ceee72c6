"""Start-up checks that fail fast, and the shutdown watchdog.

Before any store starts or any background task runs, ``serve`` takes the data folder's lock, binds the listening
socket and (for configured stores) checks that PostgreSQL and Redis answer, each within seconds. A failure is
one log line naming the cause, and exit code 2 (:class:`StartupError`). Once SIGTERM or SIGINT arrives, the
:class:`Watchdog` ends the process after ``SHUTDOWN_SECONDS`` whatever is still running.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import threading
from pathlib import Path
from typing import IO

import psycopg2
import redis
import structlog

from ..config import Settings

__all__ = ["SHUTDOWN_SECONDS", "ServiceLock", "StartupError", "Watchdog", "bind_listener", "check_stores"]

log = structlog.get_logger("nself_analytics")

# SIGTERM ends the process within this many seconds, graceful or not.
SHUTDOWN_SECONDS = 10.0
# How long a configured store may take to answer at start-up.
STORE_CHECK_SECONDS = 5


class StartupError(Exception):
    """The service cannot start; the message says why in one line (exit code 2)."""


class ServiceLock:
    """An exclusive lock on ``<data_dir>/service.lock``: one service per data folder (the embedded stores and
    the generated secrets live there). Released by the kernel when the process ends, however it ends."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "service.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StartupError(f"{self.path} is locked by {holder}: another nself-analytics serves this "
                               "data folder (set ANALYTICS_DATA_DIR to run a second one)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def bind_listener(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """The listening socket, bound now so a port in use stops start-up before anything else runs (bound without
    SO_REUSEPORT, so a port any other socket listens on is refused; ``listen=False`` only checks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(1024)
    except OSError as exc:
        sock.close()
        reason = "is in use by another process" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc}"
        raise StartupError(f"port {port} on {host} {reason} (set ANALYTICS_PORT)") from None
    sock.setblocking(False)
    return sock


def _where(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def check_stores(settings: Settings) -> None:
    """Raise StartupError unless PostgreSQL and Redis answer within STORE_CHECK_SECONDS each."""
    if settings.database_url:
        try:
            psycopg2.connect(settings.database_url, connect_timeout=STORE_CHECK_SECONDS).close()
        except psycopg2.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StartupError(f"PostgreSQL at {_where(settings.database_url)} is unreachable: {first}") from None
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=STORE_CHECK_SECONDS,
                                      socket_timeout=STORE_CHECK_SECONDS)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise StartupError(f"Redis at {_where(settings.redis_url)} is unreachable: {exc}") from None
        finally:
            client.close()


class Watchdog:
    """Armed by the first stop signal: ends the process after ``seconds`` if it has not ended by then."""

    def __init__(self, seconds: float = SHUTDOWN_SECONDS) -> None:
        self.seconds = seconds
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        log.error("shutdown_timeout", seconds=self.seconds, message="stopping did not finish in time; exiting now")
        os._exit(1)
