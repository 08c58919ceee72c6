"""``nself-analytics backup`` and ``restore``: the file holds the database and the queue; a restore over a wiped
instance gives every figure back; events accepted while a backup runs are stored exactly once; a restore does
not overwrite data unless forced; a file that is no backup is refused."""

from __future__ import annotations

import asyncio
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from nself_analytics.config import Settings
from nself_analytics.host.backup import BackupError, pg_tool
from nself_analytics.host.cli import main
from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.migrate import apply_migrations
from nself_analytics.ingest.redis_keys import DEAD_LETTER_KEY, STREAM_KEY

from .conftest import pg_execute
from .transfer_support import drain_app, figures, messages, migrate, send, sibling, stored_ids


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings, data_dir: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data_dir))


def _manifest(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        assert set(tar.getnames()) == {"manifest.json", "database.dump", "queue.ndjson.gz", "redis.json"}
        return dict(json.load(member))


async def test_backup_wipe_restore_gives_every_figure_back(client: Any, auth: Any, drain: Any, settings: Settings,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    stored = messages()
    await send(client, auth, stored)
    # the drain stores these between the backup's read of the queue and its snapshot: they are in both parts
    stream = redis.Redis.from_url(settings.redis_url or "")
    both = [fields for _id, fields in stream.xrange(STREAM_KEY)]
    await drain()
    for fields in both:
        stream.xadd(STREAM_KEY, fields)
    queued = messages(prefix="q", days=1.0)  # accepted, still in the queue when the backup runs
    await send(client, auth, queued)
    letter = {"entry": "1-0", "account": "primary", "error": "refused", "e": json.dumps({"event": "x"})}
    stream.xadd(DEAD_LETTER_KEY, letter)
    _env(monkeypatch, settings, tmp_path)
    path = tmp_path / "backup.tar"
    assert await asyncio.to_thread(main, ["backup", str(path)]) == 0
    assert "events accepted after it are not in it" in capsys.readouterr().err
    manifest = _manifest(path)
    assert manifest["counts"]["queued"] == len(queued) + len(both) and manifest["schema_version"].startswith("01")
    assert manifest["counts"]["events"] == len(stored_ids(settings.database_url or ""))
    assert path.stat().st_mode & 0o077 == 0
    await drain()
    now = int(datetime.now(UTC).timestamp()) + 1
    before, ids = await figures(client, auth, now), stored_ids(settings.database_url or "")
    assert before["web.pageviews"]["data"]["pageviews"] == 24
    # wipe the database (the Redis keeps the queued events' de-duplication keys), then restore
    pg_execute(settings.database_url or "", "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    stream.delete(DEAD_LETTER_KEY)
    migrate(settings)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["restore", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])["queue"]
    assert summary["already_stored"] == sum(1 for m in stored if m["type"] != "identify")
    await drain_app(client, settings)
    assert stored_ids(settings.database_url or "") == ids
    assert [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in stream.xrange(DEAD_LETTER_KEY)] \
        == [letter]
    after = await figures(client, auth, now)
    for name, value in before.items():
        assert after[name] == value, name


async def test_restore_refuses_a_database_with_data_unless_forced(client: Any, auth: Any, drain: Any,
                                                                  settings: Settings, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    await send(client, auth, messages())
    await drain()
    _env(monkeypatch, settings, tmp_path)
    path = tmp_path / "backup.tar"
    assert await asyncio.to_thread(main, ["backup", str(path)]) == 0
    ids = stored_ids(settings.database_url or "")
    await send(client, auth, messages(prefix="later"))
    await drain()
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["restore", str(path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert len(stored_ids(settings.database_url or "")) == 2 * len(ids)  # untouched
    assert await asyncio.to_thread(main, ["restore", str(path), "--force"]) == 0
    assert stored_ids(settings.database_url or "") == ids
    # a file that is no backup
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tar:
        tar.add(path, arcname="database.dump")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["restore", str(other), "--force"]) == 2
    assert "not a nself-analytics backup" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["restore", str(tmp_path / "missing.tar")]) == 2


async def test_events_accepted_during_a_backup_are_stored_exactly_once(
        make_client: Any, settings: Settings, auth: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await make_client(settings, worker=True)  # the drain runs while the backup does
    first = messages()
    await send(client, auth, first)
    _env(monkeypatch, settings, tmp_path)
    path = tmp_path / "backup.tar"
    backup = asyncio.create_task(asyncio.to_thread(main, ["backup", str(path)]))
    during: list[dict[str, Any]] = []
    while not backup.done() or len(during) < 200:
        batch = messages(prefix=f"d{len(during)}-", days=0.5)[:20]
        await send(client, auth, batch)
        during += batch
        await asyncio.sleep(0.01)
    assert await backup == 0
    copy = sibling(settings, "analytics_backup_copy", 10)
    migrate(copy)
    _env(monkeypatch, copy, tmp_path)
    assert await asyncio.to_thread(main, ["restore", str(path)]) == 0
    copied = await make_client(copy)
    await drain_app(copied, copy)
    restored = stored_ids(copy.database_url or "")
    assert len(restored) == len(set(restored))  # none twice
    sent = {m["messageId"] for m in first + during if m["type"] != "identify"}
    before_backup = {m["messageId"] for m in first if m["type"] != "identify"}
    assert before_backup <= set(restored) <= sent
    rows = pg_execute(copy.database_url or "", "SELECT count(*), count(DISTINCT message_id) FROM np_analytics_events")
    assert rows[0][0] == rows[0][1] == len(restored)


def test_a_pg_dump_older_than_the_server_is_refused_with_what_to_install(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 15.18'\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert pg_tool("pg_dump", embedded=False, server_major=15) == old
    with pytest.raises(BackupError, match=r"pg_dump is PostgreSQL 15.*postgresql-client-99"):
        pg_tool("pg_dump", embedded=False, server_major=99)
    # the embedded server's own tools are used for the embedded store, whatever PATH holds
    assert pg_tool("pg_dump", embedded=True, server_major=18).parent.name == "bin"


@pytest.mark.live  # servers of its own
async def test_the_commands_with_the_embedded_stores_of_a_data_folder(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """No DATABASE_URL/REDIS_URL: import, export, backup and restore start the data folder's embedded
    servers themselves (and stop them again) and use the embedded server's pg_dump and pg_restore."""
    for name in ("DATABASE_URL", "REDIS_URL", "REDIS_HOST", "REDIS_PORT"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    sent = [m for m in messages() if m["type"] != "identify"]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(m) + "\n" for m in sent))
    server = EmbeddedPostgres(data)  # what `build` does (its logging set-up would outlive capsys)
    apply_migrations(server.start())
    server.stop()
    assert await asyncio.to_thread(main, ["import", str(source)]) == 0
    capsys.readouterr()
    out = tmp_path / "out.ndjson"
    assert await asyncio.to_thread(main, ["export", "--output", str(out)]) == 0
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["messageId"] for line in exported) == sorted(m["messageId"] for m in sent)
    assert await asyncio.to_thread(main, ["backup"]) == 0
    backup = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert Path(backup["backup"]).parent == data / "backups" and backup["counts"]["events"] == len(sent)
    assert await asyncio.to_thread(main, ["restore", backup["backup"]]) == 2  # it holds data
    assert await asyncio.to_thread(main, ["restore", backup["backup"], "--force"]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["export", "--output", str(out)]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == exported
    assert not (data / "postgres" / "postmaster.pid").exists()  # the commands stopped what they started
