"""``nself-analytics install | build | start [--migrate] | status | stop``: a standalone host that drives the
plugin hooks through the same pluggy PluginManager as the nself CLI (``status`` and ``stop`` act on a running
``start``; ``build`` applies the migrations, ``start`` refuses a schema behind this version unless ``--migrate``).
``backup``, ``restore``, ``export`` and ``import`` move the data (host/data_cli.py); ``persons
erase|export|suppressions`` serves a person's data rights (host/persons_cli.py). ``dead-letters
list|replay|drop`` drives the drain's dead-letter stream. ``bot telegram|discord`` and ``mcp`` run the
integrations, clients of a running service's HTTP API (ANALYTICS_URL, ANALYTICS_API_TOKEN)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

import pluggy

from .. import __version__
from ..config import ConfigError, Settings
from . import hookspecs
from .data_cli import DATA_COMMANDS, add_data_commands, run_data_command
from .lifecycle import PID_FILE, is_service, running_service_pid
from .persons_cli import add_persons_command

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


def _settings(env: dict[str, str]) -> Settings | None:
    """The settings of a running service's commands (no secret is generated), or None once told why not."""
    try:
        return Settings.from_env(env, persist_secrets=False)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return None


def _status(env: dict[str, str]) -> int:
    settings = _settings(env)
    if settings is None:
        return 2
    url = f"http://127.0.0.1:{settings.port}/analytics/health"
    full = [c.secret for c in settings.tokens if c.role == "token" and c.account is None]
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {full[0]}"} if full else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    except OSError as exc:
        sys.stdout.write(json.dumps({"running": False, "url": url, "error": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps({"running": True, "url": url, "health": body}) + "\n")
    return 0 if body.get("healthy") else 1


# How long ``stop`` waits for the service to drain what is queued and exit after SIGTERM.
STOP_WAIT_SECONDS = 90.0


def _stop(env: dict[str, str]) -> int:
    """SIGTERM the service started with this data folder (its pid file), and wait until it has exited."""
    settings = _settings(env)
    if settings is None:
        return 2
    pid_file = settings.data_dir / PID_FILE
    pid = running_service_pid(settings.data_dir)
    if pid is None:
        sys.stdout.write(json.dumps({"stopped": False, "running": False, "pid_file": str(pid_file)}) + "\n")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while is_service(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped = not is_service(pid)
    sys.stdout.write(json.dumps({"stopped": stopped, "pid": pid}) + "\n")
    return 0 if stopped else 1


# The extra each integration needs, by the top-level module whose absence means it is not installed.
_EXTRAS = {"mcp": "mcp", "telegram": "bots", "discord": "bots"}
DESCRIPTION = (
    "nself-analytics: a standalone host of the analytics service, driving the plugin hooks through the same "
    "pluggy PluginManager as the nself CLI. status and stop act on a running start; dead-letters inspects and "
    "re-drives the drain's dead letters; bot and mcp run the integrations, clients of a running service's HTTP "
    "API (ANALYTICS_URL, ANALYTICS_API_TOKEN)."
)
COMMANDS = {
    "install": "check the requirements and write the data folder and its secrets (the token and write key)",
    "build": "apply the database migrations (idempotent)",
    "start": "serve /analytics (port 3206 by default) and run the background drain, aggregation and pruning; "
             "refuses a database whose schema is behind (run build, or --migrate); SIGTERM stops gracefully",
    "status": "print the running service's /analytics/health; exit 0 when healthy",
    "stop": "send SIGTERM to the service started with this data folder and wait until it has drained and exited",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one line naming how to install the extra whose module ``exc`` misses (None: not an extra's)."""
    extra = _EXTRAS.get((exc.name or "").split(".")[0])
    if extra is None:
        return None
    return (f"nself-analytics: the '{extra}' extra is not installed (no module {exc.name!r}); install it from the "
            f"checkout: pip install -e '.[{extra}]' (or from a wheel: pip install "
            f"'dist/nself_analytics-<version>-py3-none-any.whl[{extra}]', or hooks/install --extras {extra}); the "
            "package is not on PyPI")


def _integration(args: argparse.Namespace, env: dict[str, str]) -> int:
    try:
        return _run_integration(args, env)
    except ModuleNotFoundError as exc:
        line = missing_extra(exc)
        if line is None:
            raise
        sys.stderr.write(line + "\n")
        return 2


def _run_integration(args: argparse.Namespace, env: dict[str, str]) -> int:
    try:
        if args.command == "mcp":
            from ..integrations.mcp_server import run_stdio

            return run_stdio(env, url=args.url, token=args.token)
        if not args.kind:
            raise ConfigError("bot", "", "name the chat: nself-analytics bot telegram|discord")
        from ..integrations.bots import run_bot

        return run_bot(args.kind, env)
    except ConfigError as exc:
        sys.stderr.write(f"nself-analytics: {exc}\n")
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nself-analytics", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"nself-analytics {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        if name == "start":
            sub.add_argument("--migrate", action="store_true", help=(
                "apply pending migrations first instead of refusing (one box; ANALYTICS_MIGRATE_ON_START)"))
    bot = commands.add_parser("bot", help="run a report bot (needs the bots extra)",
                              description="Run the Telegram or Discord report bot (needs the bots extra).")
    bot.add_argument("kind", nargs="?", choices=["telegram", "discord"], help="which chat")
    mcp = commands.add_parser("mcp", help="run the MCP server on stdio (needs the mcp extra)",
                              description="Run the MCP server on stdio (needs the mcp extra).")
    mcp.add_argument("--url", help="the service's address (else ANALYTICS_URL)")
    mcp.add_argument("--token", help="the secret token (else ANALYTICS_API_TOKEN)")
    dead = commands.add_parser("dead-letters", help="inspect and re-drive entries the drain could not store",
                               description="Inspect and re-drive entries the drain could not store.")
    dead.add_argument("action", choices=["list", "replay", "drop"],
                      help="list them, replay them into the queue, or drop them")
    dead.add_argument("ids", nargs="*", help="dead-letter ids (replay/drop); none means every entry")
    dead.add_argument("--account", help="only the dead letters of this source account")
    dead.add_argument("--limit", type=int, default=100, help="list at most this many (default 100)")
    dead.add_argument("--payload-chars", type=int, default=500, help="payload characters shown by list")
    add_data_commands(commands)
    add_persons_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = dict(os.environ)
    if args.command == "status":
        return _status(env)
    if args.command == "dead-letters":
        from .deadletters_cli import run

        return run(env, args.action, ids=args.ids, account=args.account, limit=args.limit,
                   payload_chars=args.payload_chars)
    if args.command == "stop":
        return _stop(env)
    if args.command == "persons":
        from .persons_cli import run_persons

        return run_persons(args, env)
    if args.command in DATA_COMMANDS:
        return run_data_command(args, env)
    if args.command in ("bot", "mcp"):
        return _integration(args, env)
    if args.command == "start" and args.migrate:
        env["ANALYTICS_MIGRATE_ON_START"] = "true"
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
