"""The nself host contract: the hooks a plugin of project ``nself`` may implement.

The nself CLI (and this package's standalone runner, ``nself-analytics``) load plugins from the
``nself.plugins`` entry-point group into a :class:`pluggy.PluginManager` and call these hooks.
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "nself"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def install(env: dict[str, str]) -> dict[str, Any]:
    """`nself plugin install`: check requirements and write defaults; return a summary of what was done."""


@hookspec
def build(env: dict[str, str]) -> dict[str, Any]:
    """`nself build`: apply schema migrations (idempotent); return the migrations applied."""


@hookspec(firstresult=True)
def start(env: dict[str, str]) -> int:
    """`nself start`: serve the plugin until SIGTERM/SIGINT; return the process exit code."""
