"""What the install, build and start hooks do."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from .app import create_root_app
from .config import ConfigError, Settings
from .logs import configure_logging
from .migrate import apply_migrations
from .processes import run_workers
from .services import Services

__all__ = ["build_schema", "install_plugin", "serve"]

log = structlog.get_logger("nself_analytics")


def _settings(env: Mapping[str, str]) -> Settings:
    configure_logging(env.get("ANALYTICS_LOG_FORMAT", "json"), env.get("ANALYTICS_LOG_LEVEL", "info"))
    return Settings.from_env(env)


def install_plugin(env: Mapping[str, str]) -> dict[str, Any]:
    """Check the Python version and the embedded server packages; create the data folder and secrets."""
    settings = _settings(env)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from .embedded import EmbeddedPostgres, EmbeddedRedis

    if settings.database_url is None:
        EmbeddedPostgres.bin_dir()
    if settings.redis_url is None:
        EmbeddedRedis.server_binary()
    log.info("installed", data_dir=str(settings.data_dir), port=settings.port)
    return {"data_dir": str(settings.data_dir), "port": settings.port}


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


def write_pid_file(data_dir: Path) -> Path:
    """Record this process (the one SIGTERM stops gracefully) for ``nself-analytics stop``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / PID_FILE
    path.write_text(f"{os.getpid()}\n")
    return path


async def _serve(settings: Settings, reuse_port: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_root_app(settings, worker=True), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True, reuse_port=reuse_port or None)
    await site.start()
    log.info("started", url=f"http://{settings.host}:{settings.port}/analytics", data_dir=str(settings.data_dir))
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()  # stops accepting, stops the worker after a final drain, closes the pools


def serve(env: Mapping[str, str]) -> int:
    """Start embedded stores if needed, apply migrations, serve until SIGTERM/SIGINT; return the exit code."""
    try:
        settings = _settings(env)
    except ConfigError as exc:
        log.error("invalid_configuration", variable=exc.variable, message=str(exc))
        return 2
    services = Services(settings)
    pid_file = write_pid_file(settings.data_dir)
    try:
        resolved = services.up()
        assert resolved.database_url is not None
        apply_migrations(resolved.database_url)
        if not env.get("ANALYTICS_SECRET_TOKEN"):
            # generated once and kept in the data folder: shown so the operator can use it
            log.warning("credentials", secret_token=settings.secret_token, write_keys=",".join(settings.write_keys),
                        stored_in=str(settings.data_dir / "secrets.env"))
        if resolved.workers == 1:
            asyncio.run(_serve(resolved))
            code = 0
        else:  # the port is shared (SO_REUSEPORT) by the worker processes
            code = run_workers(resolved.workers, lambda _slot: asyncio.run(_serve(resolved, reuse_port=True)))
    finally:
        services.down()
        pid_file.unlink(missing_ok=True)
    log.info("stopped")
    return code
