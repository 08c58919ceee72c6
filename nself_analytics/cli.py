"""``nself-analytics install | build | start | status``: a standalone host that drives the plugin hooks
through the same pluggy PluginManager as the nself CLI."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

import pluggy

from . import hookspecs
from .config import ConfigError, Settings

__all__ = ["main", "plugin_manager"]


def plugin_manager() -> pluggy.PluginManager:
    """A PluginManager with the nself hookspecs and every plugin of the ``nself.plugins`` entry points."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("nself.plugins")
    if not pm.get_plugins():  # running from a source tree that is not installed
        from . import plugin

        pm.register(plugin, name="analytics")
    return pm


def _status(env: dict[str, str]) -> int:
    try:
        settings = Settings.from_env(env, persist_secrets=False)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    url = f"http://127.0.0.1:{settings.port}/analytics/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    except OSError as exc:
        sys.stdout.write(json.dumps({"running": False, "url": url, "error": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps({"running": True, "url": url, "health": body}) + "\n")
    return 0 if body.get("healthy") else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nself-analytics", description=__doc__)
    parser.add_argument("command", choices=["install", "build", "start", "status"])
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.command == "status":
        return _status(env)
    hook = getattr(plugin_manager().hook, args.command)
    try:
        result = hook(env=env)
    except ConfigError as exc:
        sys.stderr.write(f"nself-analytics: {exc}\n")
        return 2
    if args.command == "start":
        return int(result or 0)
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
