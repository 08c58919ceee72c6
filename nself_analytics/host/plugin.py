"""The analytics plugin's hookimpls: thin hand-offs to the real code (found by the ``analytics`` entry point)."""

from __future__ import annotations

from typing import Any

from .hookspecs import hookimpl
from .lifecycle import build_schema, install_plugin, serve

__all__ = ["build", "install", "start"]

NAME = "analytics"


@hookimpl
def install(env: dict[str, str]) -> dict[str, Any]:
    """Check requirements, create the data folder and its generated secrets."""
    return {NAME: install_plugin(env)}


@hookimpl
def build(env: dict[str, str]) -> dict[str, Any]:
    """Apply the np_analytics_* migrations."""
    return {NAME: build_schema(env)}


@hookimpl
def start(env: dict[str, str]) -> int:
    """Serve /analytics on the configured port with the background worker, until SIGTERM/SIGINT."""
    return serve(env)
