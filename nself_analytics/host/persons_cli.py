"""``nself-analytics persons erase|export|suppressions``: a person's data rights from the command line (issue 25
item 5), straight on the stores, so they work with the HTTP API down.

- ``erase ID``: suppresses the person of ID and runs its erasure job to the end (pipeline/erasures.py's runner, the
  one the service's leader runs; a job the service is already running is waited for), printing the job's report as
  JSON; ``--no-wait`` only queues it for the service. Exit 0 when done, 1 when the job failed.
- ``export ID``: every event, trait and identity link of the person as NDJSON (store/person_export.py, the lines of
  GET /persons/{id}/export) to stdout or ``--output``; the count on stderr.
- ``suppressions``: the suppressed ids as salted hashes (a page: ``--limit``, ``--offset``); ``--lift ID`` lifts
  the suppression of ID (exit 1 when it was not suppressed).

Ids are taken as ingest stores them (trimmed, 1-255 characters, no NUL). Every command acts on ``--account``
(default primary) and writes the audit log as ``cli:<user>``. The configured stores are used, else the embedded
ones of the data folder. Bad input, bad configuration and unreachable stores: exit code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, NoReturn

import msgspec
import psycopg2
from redis.exceptions import RedisError

from ..config import ConfigError, Settings
from ..model.settings_values import ACCOUNT_PATTERN
from ..model.wire import subject_id
from ..pipeline.erasures import ErasureRunner
from ..store import erasure, person_export, suppressions
from .embedded import EmbeddedError
from .logs import configure_logging
from .services import Services
from .transfer import open_stores, settings_of

__all__ = ["add_persons_command", "run_persons"]

WAIT_SECONDS = 0.5  # between two looks at a job another process runs (or one waiting for older statements)


class _Refused(Exception):
    """A refusal told in one line (exit code 2)."""


def _one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` reports bad arguments as one line and exit code 2 (argparse's usage block left out)."""

    def error(message: str) -> NoReturn:
        sys.stderr.write(f"{parser.prog}: {message}\n")
        raise SystemExit(2)

    parser.error = error  # type: ignore[method-assign]
    return parser


def _subject(text: str) -> str:
    try:
        return subject_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _account(text: str) -> str:
    if not ACCOUNT_PATTERN.match(text):
        raise argparse.ArgumentTypeError("use 1-64 letters, digits, '_', '-', '.' or ':'")
    return text


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer between {low} and {high}")
        return value

    return parse


def add_persons_command(commands: Any) -> None:
    """Add ``persons`` and its actions to the ``nself-analytics`` sub-parsers."""
    persons = _one_line_errors(commands.add_parser(
        "persons", help="erase or export one person, list or lift suppressions (no HTTP API needed)",
        description="A person's data rights on the stores directly: erasure (with suppression of the ids), export "
                    "as NDJSON, the suppression list."))
    actions = persons.add_subparsers(dest="action", required=True, metavar="erase|export|suppressions",
                                     help="what to do for the person")
    erase = _one_line_errors(actions.add_parser(
        "erase", help="erase every id of the person of ID and what derives from them; suppress the ids",
        description="Suppresses the person's ids (later events carrying them are dropped) and erases its events, "
                    "traits, links, rollup rows, counters, de-duplication keys, webhook deliveries and dead "
                    "letters; prints the job's report. An id never seen is suppressed all the same."))
    erase.add_argument("id", type=_subject, help="any distinct id of the person (user or anonymous id)")
    erase.add_argument("--no-wait", action="store_true",
                       help="only queue the job: the running service's leader runs it (GET /persons/erasures/{job})")
    export = _one_line_errors(actions.add_parser(
        "export", help="write every event, trait and identity link of the person of ID as NDJSON",
        description="The lines of GET /persons/{id}/export: events (with messageId), identify lines, alias lines."))
    export.add_argument("id", type=_subject, help="any distinct id of the person")
    export.add_argument("--output", help="the file (default: stdout)")
    listing = _one_line_errors(actions.add_parser(
        "suppressions", help="list the suppressed ids (salted hashes), or lift the suppression of one",
        description="Without --lift: one JSON object with the total and a page of suppressions, newest first."))
    listing.add_argument("--lift", type=_subject, metavar="ID",
                         help="lift the suppression of ID: its later events are stored again")
    listing.add_argument("--limit", type=_bounded(1, 1000), default=100, help="rows per page, 1-1000 (default 100)")
    listing.add_argument("--offset", type=_bounded(0, 1_000_000), default=0, help="rows to skip (default 0)")
    for parser in (erase, export, listing):
        parser.add_argument("--account", type=_account, default="primary", help="the source account (default primary)")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


def _say(text: str) -> None:
    sys.stderr.write(f"nself-analytics: {text}\n")


async def _erase(settings: Settings, account: str, subject: str, wait: bool) -> tuple[dict[str, Any], bool]:
    async with open_stores(settings) as stores:
        if stores.redis is None:
            raise _Refused("erase needs Redis (its counters, de-duplication keys and dead letters): set REDIS_URL")
        runner = ErasureRunner(stores.pool, stores.redis, settings)
        async with stores.pool.acquire() as conn:
            job, known = await erasure.create_job(conn, account=account, distinct_id=subject, actor=_actor())
        await runner.sync_suppressions(force=True)  # ingest drops the ids from now on
        phase = ""
        while wait:
            await runner.run_job(job.id)  # 0: another process runs it, or older statements are still running
            async with stores.pool.acquire() as conn:
                found = await erasure.get_job(conn, job.id)
            if found is None:
                raise _Refused(f"erasure job {job.id} vanished")
            job = found
            if job.state in ("done", "failed"):
                break
            if job.phase != phase:
                phase = job.phase
                _say(f"erasure {job.id}: {phase}")
            await asyncio.sleep(WAIT_SECONDS)
    report = msgspec.to_builtins(job.report())
    return {**report, "known": known}, job.state != "failed"


async def _export(settings: Settings, account: str, subject: str, out: IO[bytes]) -> int:
    count = 0
    async with open_stores(settings, redis=False) as stores, stores.pool.acquire() as conn:
        async for line in person_export.lines(conn, account, subject):
            out.write(line)
            count += 1
    return count


async def _suppressions(settings: Settings, account: str, lift: str | None, limit: int,
                        offset: int) -> tuple[dict[str, Any], bool]:
    async with open_stores(settings, redis=lift is not None) as stores:
        async with stores.pool.acquire() as conn:
            if lift is None:
                rows, total = await suppressions.listing(conn, account, limit, offset)
                return {"total": total, "limit": limit, "offset": offset,
                        "data": [{"id_hash": r.id_hash, "job": r.job_id, "created_at": r.created_at.isoformat()}
                                 for r in rows]}, True
            lifted = await suppressions.lift(conn, account, lift, _actor())
        if lifted and stores.redis is not None:  # ingest stores the id again from now on
            await ErasureRunner(stores.pool, stores.redis, settings).sync_suppressions(force=True)
        return {"lifted": lifted}, lifted


def _run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "export":
        out: IO[bytes] = sys.stdout.buffer if args.output in (None, "-") else open(args.output, "wb")
        try:
            count = asyncio.run(_export(settings, args.account, args.id, out))
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        _say(json.dumps({"exported": count, "account": args.account, "output": args.output or "-"}))
        return 0
    if args.action == "erase":
        answer, ok = asyncio.run(_erase(settings, args.account, args.id, not args.no_wait))
    else:
        answer, ok = asyncio.run(_suppressions(settings, args.account, args.lift, args.limit, args.offset))
        if not ok:
            _say("this id is not suppressed")
            return 1
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0 if ok else 1


def run_persons(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``nself-analytics persons <action>``; 0 on success, 1 when the job failed or nothing was suppressed, 2
    for bad configuration or unreachable stores (one line)."""
    configure_logging(env.get("ANALYTICS_LOG_FORMAT", "json"), env.get("ANALYTICS_LOG_LEVEL", "warning"))
    settings = settings_of(env)
    if settings is None:
        return 2
    services = Services(settings)
    try:
        resolved = services.up(redis=args.action == "erase" or getattr(args, "lift", None) is not None)
        return _run(resolved, args)
    except (ConfigError, _Refused) as exc:
        _say(str(exc))
    except (OSError, psycopg2.Error, RedisError, EmbeddedError, subprocess.SubprocessError) as exc:
        text = str(exc).strip().splitlines()
        _say(f"persons {args.action} failed: {text[0][:300] if text else type(exc).__name__}")
    finally:
        services.down()
    return 2
