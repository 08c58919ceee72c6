"""``nself-analytics backup [PATH]`` and ``nself-analytics restore PATH [--force]``.

A backup is one tar file (0600) holding:

- ``manifest.json``: the format, the package and schema versions, when, the PostgreSQL server version, and
  the counts of what it holds;
- ``database.dump``: the whole database in pg_dump's custom format (compressed), taken in one exported
  snapshot (``store.snapshot``), so the counts of the manifest are the dump's;
- ``queue.ndjson.gz``: the events accepted but not yet stored (the Redis stream, read just before the
  snapshot), as export lines (``model.ndjson``);
- ``redis.json``: the daily salts of the IP hashes (so today's visitors are not counted twice after a restore)
  and the dead-letter stream (accepted events the drain could not store, for ``dead-letters replay``).

It runs beside a serving service: ingest goes on, and events accepted after the snapshot are not in it (the
command says so). An event of the queue that the drain stores before the snapshot is in both parts; a
restore puts the queue back through the import path, which skips what the database holds, so it is stored
once. The pg_dump and pg_restore used are the embedded server's for the embedded store; for DATABASE_URL the
ones on PATH (else the embedded package's), refused when older than the server.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg2
import redis
from redis.exceptions import RedisError

from .. import __version__
from ..config import ConfigError, Settings
from ..ingest.enrich import SALT_PREFIX
from ..ingest.redis_keys import DEAD_LETTER_KEY, STREAM_KEY
from ..model.ndjson import encode_line, event_line, identify_line
from ..model.record import IdentifyRecord, decode_record
from ..store.snapshot import begin_snapshot, non_empty_tables, reset_schema, server_version
from .embedded import EmbeddedError, EmbeddedPostgres
from .lifecycle import running_service_pid
from .services import Services
from .transfer import Progress, import_lines, open_stores, settings_of

__all__ = ["BackupError", "run_backup", "run_restore", "write_backup"]

FORMAT = "nself-analytics-backup"
FORMAT_VERSION = 1
MANIFEST, DUMP, QUEUE, REDIS_STATE = "manifest.json", "database.dump", "queue.ndjson.gz", "redis.json"
QUEUE_PAGE = 1000
TOOL_TIMEOUT_SECONDS = 24 * 3600.0
SNAPSHOT_NOTE = "events accepted after created_at are not in this backup"


class BackupError(RuntimeError):
    """A backup or restore cannot go on; the text says why and what to do."""


def _say(text: str) -> None:
    sys.stderr.write(f"nself-analytics: {text}\n")


def _major(version_text: str) -> int:
    found = re.search(r"(\d+)(?:\.\d+)?", version_text)
    if found is None:
        raise BackupError(f"cannot read a version in {version_text!r}")
    return int(found.group(1))


def pg_tool(name: str, embedded: bool, server_major: int) -> Path:
    """The ``pg_dump``/``pg_restore`` to run: the embedded server's own for the embedded store; else the one on
    PATH, or the embedded package's when that one is older than the server (pg_dump refuses a newer server)."""
    candidates: list[Path] = []
    if not embedded:
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    try:
        candidates.append(EmbeddedPostgres.bin_dir() / name)
    except EmbeddedError:
        pass
    seen = []
    for path in candidates:
        if not path.exists():
            continue
        result = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
        major = _major(result.stdout)
        if major >= server_major:
            return path
        seen.append(f"{path} is PostgreSQL {major}")
    raise BackupError(f"no {name} of PostgreSQL {server_major} or newer for this server "
                      f"({'; '.join(seen) or 'none found'}): install the PostgreSQL {server_major} client tools "
                      f"(e.g. postgresql-client-{server_major}) and put them first on PATH")


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that carries it (argv is readable by every user)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}@{host}" if user else host)
    return urlunsplit(parts), env


def _run_tool(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, env=env, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-1500:]}")


_Entries = list[tuple[bytes, dict[bytes, bytes]]]  # a stream's entries, as a client without decode_responses reads them


def _queue_lines(client: redis.Redis) -> Iterator[bytes]:
    """The stream's entries as export lines, oldest first, a page at a time."""
    start = "-"
    while True:
        page = cast(_Entries, client.xrange(STREAM_KEY, min=start, max="+", count=QUEUE_PAGE))
        for _entry_id, fields in page:
            payload = fields.get(b"e")
            if not payload:
                continue
            record = decode_record(payload)
            yield encode_line(identify_line(record) if isinstance(record, IdentifyRecord) else event_line(record))
        if len(page) < QUEUE_PAGE:
            return
        start = "(" + page[-1][0].decode()


def _salts(client: redis.Redis) -> dict[str, list[Any]]:
    found = {}
    for key in cast(Iterator[bytes], client.scan_iter(match=SALT_PREFIX + "*", count=100)):
        value, ttl = cast(bytes | None, client.get(key)), client.ttl(key)
        if value is not None:
            found[key.decode()] = [value.decode(), max(int(ttl), 1)]
    return found


def _dead_letters(client: redis.Redis) -> list[dict[str, str]]:
    """The dead-letter stream's entries (at most ANALYTICS_DEAD_LETTER_MAX): accepted events the drain could not
    store, kept for ``nself-analytics dead-letters replay`` after a fix."""
    return [{key.decode(): value.decode(errors="replace") for key, value in fields.items()}
            for _id, fields in cast(_Entries, client.xrange(DEAD_LETTER_KEY))]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def write_backup(settings: Settings, target: Path, *, embedded: bool) -> dict[str, Any]:
    """Write a backup of resolved ``settings``' stores to ``target``; return its manifest."""
    assert settings.database_url is not None and settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url)
    work = Path(tempfile.mkdtemp(prefix=".backup-", dir=target.parent))
    try:
        queued = 0
        with gzip.open(work / QUEUE, "wb") as queue:  # first the queue, then the snapshot (see the docstring)
            for line in _queue_lines(client):
                queue.write(line)
                queued += 1
        salts, dead = _salts(client), _dead_letters(client)
        conn = psycopg2.connect(settings.database_url)
        try:
            facts = begin_snapshot(conn)
            created_at = datetime.now(UTC).isoformat()
            tool = pg_tool("pg_dump", embedded, facts["server_version"] // 10000)
            url, env = _libpq(settings.database_url)
            _run_tool([str(tool), "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={facts['snapshot']}",
                       f"--file={work / DUMP}", f"--dbname={url}"], env)
        finally:
            conn.close()
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "version": __version__,
                    "schema_version": facts["schema_version"], "created_at": created_at,
                    "postgres_server_version": facts["server_version"],
                    "counts": {**facts["counts"], "queued": queued, "dead_letters": len(dead)}, "note": SNAPSHOT_NOTE}
        partial = target.with_name(target.name + ".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
            _add(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            tar.add(work / DUMP, arcname=DUMP)
            tar.add(work / QUEUE, arcname=QUEUE)
            _add(tar, REDIS_STATE, json.dumps({"salts": salts, "dead_letters": dead}).encode())
        partial.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        client.close()
    return manifest


def _file_name() -> str:
    return f"nself-analytics-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.tar"


def _default_path(settings: Settings) -> Path:
    folder = settings.data_dir / "backups"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / _file_name()


def run_backup(env: Mapping[str, str], path: str | None) -> int:
    """``nself-analytics backup [PATH]``: 0, or 2 with one line saying why not."""
    settings = settings_of(env)
    if settings is None:
        return 2
    target = Path(path).absolute() if path else _default_path(settings)
    if target.is_dir():
        target = target / _file_name()
    services = Services(settings)
    try:
        resolved = services.up()
        manifest = write_backup(resolved, target, embedded=settings.database_url is None)
    except (BackupError, EmbeddedError, ConfigError, psycopg2.Error, RedisError, OSError,
            subprocess.SubprocessError) as exc:
        _say(f"backup failed: {str(exc).strip()[:1500]}")
        return 2
    finally:
        services.down()
    sys.stdout.write(json.dumps({"backup": str(target), "bytes": target.stat().st_size, **manifest}) + "\n")
    _say(f"backup written to {target}: a snapshot of {manifest['created_at']}; events accepted after it are not "
         "in it")
    return 0


def _members(path: Path) -> tuple[dict[str, Any], tarfile.TarFile]:
    tar = tarfile.open(path, mode="r")
    try:
        member = tar.extractfile(MANIFEST)
        manifest = json.load(member) if member is not None else {}
    except (KeyError, ValueError):
        manifest = {}
    if manifest.get("format") != FORMAT:
        tar.close()
        raise BackupError(f"{path} is not a nself-analytics backup (no {MANIFEST} of format {FORMAT})")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        tar.close()
        raise BackupError(f"{path} has backup format {manifest['format_version']}; this version reads up to "
                          f"{FORMAT_VERSION}: upgrade nself-analytics first")
    return manifest, tar


def _gz_lines(tar: tarfile.TarFile) -> Iterator[bytes]:
    member = tar.extractfile(QUEUE)
    if member is None:
        return
    with gzip.open(member, "rb") as lines:
        yield from lines


def restore_backup(settings: Settings, path: Path, *, embedded: bool, force: bool) -> dict[str, Any]:
    """Replace the database of resolved ``settings`` by the backup's, then queue the backup's queue."""
    assert settings.database_url is not None and settings.redis_url is not None
    manifest, tar = _members(path)
    with tar:
        conn = psycopg2.connect(settings.database_url)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                holding = non_empty_tables(cur)
                if holding and not force:
                    raise BackupError(f"the database holds data ({', '.join(holding)}); restore replaces all of it: "
                                      "run `nself-analytics restore PATH --force` to do so")
                tool = pg_tool("pg_restore", embedded, server_version(cur) // 10000)
                with tempfile.TemporaryDirectory(prefix=".restore-", dir=path.parent) as work:
                    tar.extract(DUMP, work, filter="data")
                    reset_schema(cur)
                    url, env = _libpq(settings.database_url)
                    _run_tool([str(tool), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
                               f"--dbname={url}", str(Path(work) / DUMP)], env)
        finally:
            conn.close()
        member = tar.extractfile(REDIS_STATE)
        state = json.load(member) if member is not None else {}
        client = redis.Redis.from_url(settings.redis_url)
        try:
            for key, (value, ttl) in state.get("salts", {}).items():
                client.set(key, value, ex=int(ttl))
            if state.get("dead_letters"):  # as they were: the backup's, not what this Redis gathered since
                client.delete(DEAD_LETTER_KEY)
                for fields in state["dead_letters"]:
                    client.xadd(DEAD_LETTER_KEY, fields)
        finally:
            client.close()
        summary = asyncio.run(_requeue(settings, _gz_lines(tar)))
    return {"restored": str(path), "created_at": manifest.get("created_at"),
            "schema_version": manifest.get("schema_version"), "counts": manifest.get("counts"), "queue": summary}


async def _requeue(settings: Settings, lines: Iterator[bytes]) -> dict[str, Any]:
    async with open_stores(settings) as stores:
        return await import_lines(stores, lines, forget_dedupe=True, progress=Progress())


def run_restore(env: Mapping[str, str], path: str, *, force: bool) -> int:
    """``nself-analytics restore PATH [--force]``: 0, or 2 with one line saying why not."""
    settings = settings_of(env)
    if settings is None:
        return 2
    pid = running_service_pid(settings.data_dir)
    if pid is not None:
        _say(f"the service runs (pid {pid}): stop it first (`nself-analytics stop`), then restore")
        return 2
    services = Services(settings)
    try:
        resolved = services.up()
        result = restore_backup(resolved, Path(path).absolute(), embedded=settings.database_url is None, force=force)
    except (BackupError, EmbeddedError, ConfigError, psycopg2.Error, RedisError, OSError, tarfile.TarError,
            subprocess.SubprocessError) as exc:
        _say(f"restore failed: {str(exc).strip()[:1500]}")
        return 2
    finally:
        services.down()
    sys.stdout.write(json.dumps(result) + "\n")
    _say(f"restored the snapshot of {result['created_at']}; run `nself-analytics build` if this version has newer "
         "migrations, then start the service")
    return 0
