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
    from .embedded import EmbeddedPostgres, EmbeddedRedis

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
        if not (env.get("ANALYTICS_SECRET_TOKEN") and env.get("ANALYTICS_WRITE_KEYS")):
            _announce_credentials(settings)
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
