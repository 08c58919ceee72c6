"""``nself-analytics export`` and ``nself-analytics import FILE``: every stored event of a range out as NDJSON
(``model.ndjson``'s shape, ``store.export``'s reads), and such a file back in through the ingest path
(``ingest.importer``), with a progress line on stderr and a JSON summary on stdout.

Both use the configured stores (DATABASE_URL, REDIS_URL), else the embedded ones of the data folder (started
for the command when the service is not running). ``import`` runs a drain of its own beside the service's (the
queue is shared; drains take turns), so the file is stored when the command returns, running service or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any, cast

import aiopg
import psycopg2
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import ConfigError, Settings
from ..ingest.importer import Importer, ImportSummary
from ..ingest.queue import Producer
from ..ingest.service import Ingestor
from ..model.ndjson import encode_line
from ..pipeline.drain import Drainer
from ..pipeline.supervisor import Supervisor
from ..store.export import export_lines
from ..store.partitions import forget_partitions
from .app import redis_client
from .embedded import EmbeddedError
from .services import Services

__all__ = ["Stores", "export_range", "import_lines", "open_stores", "run_export", "run_import"]

GZIP_MAGIC = b"\x1f\x8b"
PROGRESS_EVERY_SECONDS = 0.5
PROGRESS_LOG_SECONDS = 10.0


def _say(text: str) -> None:
    sys.stderr.write(f"nself-analytics: {text}\n")


def settings_of(env: Mapping[str, str]) -> Settings | None:
    try:
        return Settings.from_env(env, persist_secrets=False)
    except ConfigError as exc:
        _say(str(exc))
        return None


@dataclass
class Stores:
    """Open connections to the stores of resolved settings."""

    settings: Settings
    pool: aiopg.Pool
    redis: aioredis.Redis | None  # None when opened with ``redis=False`` (export)


@contextlib.asynccontextmanager
async def open_stores(settings: Settings, *, redis: bool = True) -> AsyncIterator[Stores]:
    """A small pool and a Redis client on resolved settings (``Services.up``); closed on exit."""
    assert settings.database_url is not None
    timeout_ms = max(1, int(settings.background_timeout * 1000))
    pool = await aiopg.create_pool(settings.database_url, minsize=1, maxsize=4, timeout=30,
                                   options=f"-c statement_timeout={timeout_ms}")
    client = redis_client(settings.redis_url) if redis and settings.redis_url else None
    try:
        yield Stores(settings, pool, client)
    finally:
        pool.close()
        await pool.wait_closed()
        if client is not None:
            await client.aclose()


def parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(name, text, f"{name} must be a date YYYY-MM-DD") from None


def export_bounds(settings: Settings, start_date: str | None, end_date: str | None) -> tuple[datetime, datetime]:
    """``[start, end)`` of the inclusive dates given (default: the retention window up to today, UTC)."""
    today = datetime.now(UTC).date()
    last = parse_day(end_date, "--end-date") if end_date else today
    first = parse_day(start_date, "--start-date") if start_date else today - timedelta(days=settings.retention_days)
    if last < first:
        raise ConfigError("--end-date", end_date or "", "--end-date must not be before --start-date")
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return start, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)


async def export_range(stores: Stores, out: IO[bytes], *, account: str, start: datetime, end: datetime) -> int:
    """Write the range's lines to ``out``; return how many."""
    count = 0
    timeout_ms = max(1, int(stores.settings.background_timeout * 1000))
    async with stores.pool.acquire() as conn:
        async for line in export_lines(conn, account=account, start=start, end=end, timeout_ms=timeout_ms):
            out.write(encode_line(line))
            count += 1
    return count


@contextlib.contextmanager
def _resolved(settings: Settings, *, redis: bool = True) -> Iterator[Settings]:
    services = Services(settings)
    try:
        yield services.up(redis=redis)
    finally:
        services.down()


def run_export(env: Mapping[str, str], *, start_date: str | None, end_date: str | None, account: str,
               output: str | None) -> int:
    """``nself-analytics export``: NDJSON to ``output`` (gzip when it ends with .gz) or stdout."""
    settings = settings_of(env)
    if settings is None:
        return 2
    try:
        start, end = export_bounds(settings, start_date, end_date)
        with _resolved(settings, redis=False) as resolved:
            target: IO[bytes]
            if output in (None, "-"):
                target = sys.stdout.buffer
            elif output.endswith(".gz"):
                target = cast(IO[bytes], gzip.open(output, "wb"))
            else:
                target = open(output, "wb")
            try:
                count = asyncio.run(_export_main(resolved, target, account, start, end))
            finally:
                if target is not sys.stdout.buffer:
                    target.close()
    except ConfigError as exc:
        _say(str(exc))
        return 2
    except (OSError, psycopg2.Error, EmbeddedError, subprocess.SubprocessError) as exc:
        _say(f"export failed: {str(exc).strip()[:300]}")
        return 2
    _say(json.dumps({"exported": count, "account": account, "start": start.isoformat(), "end": end.isoformat(),
                     "output": output or "-"}))
    return 0


async def _export_main(settings: Settings, out: IO[bytes], account: str, start: datetime, end: datetime) -> int:
    async with open_stores(settings, redis=False) as stores:
        return await export_range(stores, out, account=account, start=start, end=end)


def read_lines(path: str) -> Iterator[bytes]:
    """The lines of ``path`` (``-``: stdin), gunzipped when the file is gzip."""
    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as probe:
        is_gzip = probe.read(2) == GZIP_MAGIC
    with (gzip.open(path, "rb") if is_gzip else open(path, "rb")) as source:
        yield from source


class Progress:
    """A progress line on stderr: on a terminal rewritten in place every PROGRESS_EVERY_SECONDS, elsewhere (a log
    file) a line every PROGRESS_LOG_SECONDS."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.shown = 0.0

    def __call__(self, summary: ImportSummary, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown < (PROGRESS_EVERY_SECONDS if self.tty else PROGRESS_LOG_SECONDS):
            return
        self.shown = now
        text = (f"import: {summary.lines:,} lines, {summary.queued:,} queued, "
                f"{summary.already_stored + summary.duplicates:,} already stored, {summary.too_old:,} too old, "
                f"{summary.invalid:,} invalid")
        self.stream.write(f"\r{text}" + ("\n" if final else "") if self.tty else text + "\n")
        self.stream.flush()


async def import_lines(stores: Stores, lines: Iterable[bytes | str], *, account: str | None = None,
                       forget_dedupe: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Queue ``lines`` through the ingest path while a drain of this process stores them; return the summary
    with ``stored`` (events newly stored by this process's drain)."""
    settings = stores.settings
    assert stores.redis is not None, "import needs the stores opened with Redis"
    producer = Producer(stores.redis, settings)
    importer = Importer(Ingestor(producer, stores.redis, settings), stores.pool, settings, account=account,
                        forget_dedupe=forget_dedupe, progress=progress)
    forget_partitions()  # the process's partition cache may be another database's (tests run several)
    drainer = Drainer(stores.pool, stores.redis, settings, name=f"import-{time.time_ns()}")
    await drainer.ensure_group()
    draining = Supervisor()  # the drain runs supervised here too: an error is logged and the round retried
    draining.loop("import-drain", drainer.step)
    draining.start()
    try:
        summary = await importer.run(lines)
    finally:
        await draining.stop()
        await producer.close()
    await drainer.drain_until_empty()
    if progress is not None:
        progress(summary, final=True)
    return summary.as_dict()


def run_import(env: Mapping[str, str], path: str, *, account: str | None) -> int:
    """``nself-analytics import FILE``: 0 when every line was taken or refused for a rule (too old, already
    stored), 1 when some line was invalid, 2 when the stores or the file are unusable."""
    settings = settings_of(env)
    if settings is None:
        return 2
    try:
        with _resolved(settings) as resolved:
            summary = asyncio.run(_import_main(resolved, path, account))
    except (OSError, RedisError, ConfigError, psycopg2.Error, EmbeddedError, subprocess.SubprocessError) as exc:
        _say(f"import failed: {str(exc).strip()[:300]}")
        return 2
    sys.stdout.write(json.dumps(summary) + "\n")
    return 1 if summary["invalid"] else 0


async def _import_main(settings: Settings, path: str, account: str | None) -> dict[str, Any]:
    async with open_stores(settings) as stores:
        return await import_lines(stores, read_lines(path), account=account, progress=Progress())
