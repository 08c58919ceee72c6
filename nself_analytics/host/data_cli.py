"""The data commands of the command line: ``backup``, ``restore``, ``export`` and ``import`` (their parsers and
their dispatch; the work is in host/backup.py and host/transfer.py)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .logs import configure_logging

__all__ = ["DATA_COMMANDS", "add_data_commands", "run_data_command"]

DATA_COMMANDS = ("backup", "restore", "export", "import")


def add_data_commands(commands: Any) -> None:
    """Add the data commands to the ``nself-analytics`` sub-parsers."""
    backup = commands.add_parser("backup", help="write a backup (database and queue) to one file")
    backup.add_argument("path", nargs="?", help="the file or folder (default: <data folder>/backups/)")
    restore = commands.add_parser("restore", help="replace the database by a backup's, and re-queue its queue")
    restore.add_argument("path", help="the backup file")
    restore.add_argument("--force", action="store_true", help="replace a database that holds data")
    export = commands.add_parser("export", help="write every stored event of a range as NDJSON")
    export.add_argument("--start-date", help="first day, YYYY-MM-DD (default: the retention window's first)")
    export.add_argument("--end-date", help="last day, YYYY-MM-DD (default: today, UTC)")
    export.add_argument("--account", default="primary", help="the source account (default primary)")
    export.add_argument("--output", help="the file (.gz: gzip); default stdout")
    imported = commands.add_parser("import", help="send an NDJSON export (or .gz) through the ingest path")
    imported.add_argument("file", help="the export file, or - for stdin")
    imported.add_argument("--account", help="store every line in this account (default: each line's own)")


def run_data_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    # stdout carries the command's answer (and export's data): the logs go to stderr, warnings only by default
    configure_logging(env.get("ANALYTICS_LOG_FORMAT", "json"), env.get("ANALYTICS_LOG_LEVEL", "warning"))
    if args.command == "backup":
        from .backup import run_backup

        return run_backup(env, args.path)
    if args.command == "restore":
        from .backup import run_restore

        return run_restore(env, args.path, force=args.force)
    from .transfer import run_export, run_import

    if args.command == "export":
        return run_export(env, start_date=args.start_date, end_date=args.end_date, account=args.account,
                          output=args.output)
    return run_import(env, args.file, account=args.account)
