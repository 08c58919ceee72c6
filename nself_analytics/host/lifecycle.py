"""What the install, build and start hooks do."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg2
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from ..config import ConfigError, Settings
from .app import create_root_app
from .embedded import EmbeddedError
from .logs import configure_logging
from .migrate import apply_migrations, pending_migrations, unknown_migrations
from .processes import run_workers
from .services import Services
from .startup import ServiceLock, StartupError, Watchdog, bind_listener, check_stores

__all__ = ["build_schema", "install_plugin", "is_service", "running_service_pid", "serve"]

log = structlog.get_logger("nself_analytics")


def _settings(env: Mapping[str, str]) -> Settings:
    configure_logging(env.get("ANALYTICS_LOG_FORMAT", "json"), env.get("ANALYTICS_LOG_LEVEL", "info"))
    return Settings.from_env(env)


def _announce_credentials(settings: Settings) -> None:
    """Print generated credentials once, when generated; afterwards only say where they are kept."""
    stored_in = str(settings.data_dir / "secrets.env")
    if settings.secrets_generated:
        shown = {"ANALYTICS_SECRET_TOKEN": settings.secret_token, "ANALYTICS_WRITE_KEYS": ",".join(settings.write_keys)}
        log.warning("credentials_generated", stored_in=stored_in, shown_once=True,
                    **{name.lower(): shown[name] for name in settings.secrets_generated})
    else:
        log.info("credentials", stored_in=stored_in)


def install_plugin(env: Mapping[str, str]) -> dict[str, Any]:
    """Check the embedded server packages; create the data folder, secrets, and (as root) the servers' user.

    Everything it changes on the system is logged (``system_changed``) and listed in the result.
    """
    settings = _settings(env)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    from .embedded import EmbeddedPostgres
    from .embedded_redis import EmbeddedRedis

    changes: list[str] = []
    if settings.database_url is None:
        changes += EmbeddedPostgres(settings.data_dir).prepare()
    if settings.redis_url is None:
        changes += EmbeddedRedis(settings.data_dir).prepare()
    _announce_credentials(settings)
    log.info("installed", data_dir=str(settings.data_dir), port=settings.port)
    return {"data_dir": str(settings.data_dir), "port": settings.port, "system_changes": changes,
            "secrets": str(settings.data_dir / "secrets.env")}


def build_schema(env: Mapping[str, str]) -> dict[str, Any]:
    """Apply pending migrations to the configured (or embedded) PostgreSQL."""
    settings = _settings(env)
    services = Services(settings)
    try:
        resolved = services.up(redis=False)
        assert resolved.database_url is not None
        applied = apply_migrations(resolved.database_url)
    finally:
        services.down()
    return {"applied": applied}


PID_FILE = "service.pid"


def is_service(pid: int) -> bool:
    """Whether ``pid`` is a running nself-analytics process (not a recycled pid of something else)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read()
    except OSError:
        return False
    return b"nself-analytics" in command or b"nself_analytics" in command


def running_service_pid(data_dir: Path) -> int | None:
    """The pid of the service started with ``data_dir`` (its pid file), when it runs."""
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and is_service(pid) else None


def write_pid_file(data_dir: Path) -> Path:
    """Record this process (the one SIGTERM stops gracefully) for ``nself-analytics stop``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / PID_FILE
    path.write_text(f"{os.getpid()}\n")
    return path


class _Terminated(BaseException):
    """SIGTERM or SIGINT arrived during start-up (before the event loop runs): unwind and stop."""


# Seconds aiohttp waits for requests in flight when stopping (part of the SHUTDOWN_SECONDS budget).
HTTP_SHUTDOWN_SECONDS = 2.0


# Garbage collection for latency. Measured at 1,000 /track requests/s (a stall recorder in each worker): full
# (generation 2) collections paused a worker's event loop for 50-338 ms, and 160 younger ones for over 2 ms each.
# What start-up built (modules, the app, the pools) is frozen once serving (collections never scan it again), and
# young collections run every 10,000 allocations instead of every 700 (fewer of them promote short-lived request
# objects to the older generations, whose collections are the long ones).
GC_THRESHOLDS = (10_000, 10, 10)


def _settle_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _serve(settings: Settings, watchdog: Watchdog, listener: socket.socket | None = None) -> None:
    """Serve on ``listener`` (bound by the parent: one process) or bind the port with SO_REUSEPORT (workers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        watchdog.arm()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    # handler_cancellation: a request whose client went away is cancelled (and with it its query)
    runner = web.AppRunner(create_root_app(settings, worker=True), access_log=None, handle_signals=False,
                           shutdown_timeout=HTTP_SHUTDOWN_SECONDS, handler_cancellation=True)
    try:
        await runner.setup()
    except (psycopg2.Error, RedisError, OSError) as exc:
        await runner.cleanup()
        raise StartupError(f"the stores failed while starting: {str(exc).strip()[:200]}") from None
    site: web.BaseSite
    if listener is not None:
        site = web.SockSite(runner, listener, shutdown_timeout=HTTP_SHUTDOWN_SECONDS)
    else:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True, reuse_port=True,
                           shutdown_timeout=HTTP_SHUTDOWN_SECONDS)
    _settle_gc()  # before the first request: the one full collection it makes pauses no request
    await site.start()
    log.info("started", url=f"http://{settings.host}:{settings.port}/analytics", data_dir=str(settings.data_dir))
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()  # stops accepting, stops the worker after a final drain, closes the pools


def _start_stores(services: Services, migrate: bool) -> Settings:
    """Embedded stores started (when not configured); the schema migrated (``migrate``) or checked to be current.
    StartupError with one line if not: a schema behind this version names the command that brings it up; a schema
    a newer version built is refused, also with ``migrate``."""
    try:
        resolved = services.up(take_over=True)  # the data folder's lock is held: stores still running are orphans
        assert resolved.database_url is not None
        newer = unknown_migrations(resolved.database_url)
        pending: list[str] = []
        if migrate and not newer:
            apply_migrations(resolved.database_url)
        elif not newer:
            pending = pending_migrations(resolved.database_url)
        services.keep()
    except (EmbeddedError, subprocess.SubprocessError, psycopg2.Error, OSError) as exc:
        text = str(exc).strip().splitlines()
        raise StartupError(f"the stores could not start: {text[0] if text else type(exc).__name__}") from None
    if newer:
        raise StartupError(f"the database schema is newer than this version ({newer} applied migration(s) it does not "
                           "know): run the version that built it, or restore a backup taken before the upgrade")
    if pending:
        raise StartupError(f"the database schema is behind this version ({len(pending)} migrations pending: "
                           f"{', '.join(pending)}): run `nself-analytics build` (nself: `nself build`), then start "
                           "again; or `nself-analytics start --migrate` on a single box")
    return resolved


def serve(env: Mapping[str, str]) -> int:
    """Take the data folder's lock, check the port, check and start the stores, check the schema is current
    (apply pending migrations instead with ANALYTICS_MIGRATE_ON_START / ``start --migrate``), then serve until
    SIGTERM/SIGINT; return the exit code (2: could not start, with one log line saying why)."""
    try:
        settings = _settings(env)
    except ConfigError as exc:
        log.error("invalid_configuration", variable=exc.variable, message=str(exc))
        return 2
    watchdog = Watchdog()
    signalled = False

    def on_signal(_signum: int, _frame: object) -> None:  # until the event loop or the supervisor takes over
        nonlocal signalled
        watchdog.arm()
        if not signalled:
            signalled = True
            raise _Terminated()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    lock = ServiceLock(settings.data_dir)
    services = Services(settings)
    listener: socket.socket | None = None
    code = 0
    pid_file: Path | None = None
    try:
        lock.acquire()
        pid_file = write_pid_file(settings.data_dir)  # after the lock: a refused second start leaves it alone
        # one process serves on the socket bound here; worker processes bind the port themselves (SO_REUSEPORT),
        # so for them the port is only checked (bound and released)
        listener = bind_listener(settings.host, settings.port, listen=settings.workers == 1)
        if settings.workers > 1:
            listener.close()
            listener = None
        check_stores(settings)
        resolved = _start_stores(services, settings.migrate_on_start)
        if not (env.get("ANALYTICS_SECRET_TOKEN") and env.get("ANALYTICS_WRITE_KEYS")):
            _announce_credentials(settings)
        if resolved.workers == 1:
            asyncio.run(_serve(resolved, watchdog, listener))
        else:
            code = run_workers(resolved.workers, lambda _slot: asyncio.run(_serve(resolved, Watchdog())),
                               on_stop=watchdog.arm)
    except StartupError as exc:
        log.error("startup_failed", message=str(exc))
        return 2
    except _Terminated:
        log.info("stopping", during="start-up")
    finally:
        if listener is not None:
            listener.close()
        services.down()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        watchdog.disarm()
    log.info("stopped")
    return code
