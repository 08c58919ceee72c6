"""GET /analytics/export, ``nself-analytics export`` and ``nself-analytics import``: the NDJSON of every stored
event, its bounds and credentials, and round trips (into an empty instance: every figure again; into the same
instance: nothing stored twice; old and broken lines refused with counts)."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nself_analytics.config import Settings
from nself_analytics.host.cli import main
from nself_analytics.host.transfer import import_lines, open_stores
from nself_analytics.model.ndjson import encode_line, identify_line
from nself_analytics.model.record import IdentifyRecord

from .conftest import SECRET, pg_execute
from .transfer_support import IPHONE, drain_app, figures, hits, messages, migrate, send, sibling, stored_ids

SITE_TOKEN = "tok_site_export_example_01"
TENANT_TOKEN, TENANT_KEY = "tok_tenant_a_export_0123456", "wk_tenant_a_export"


def _dates(days: int = 10) -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"start_date": str(today - timedelta(days=days)), "end_date": str(today)}


async def _export(client: Any, auth: Any, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/analytics/export", headers=auth["secret"], params=params or _dates())
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in (await response.text()).splitlines()]


async def test_export_streams_every_event_with_its_message_id(client: Any, auth: Any, drain: Any,
                                                              settings: Settings) -> None:
    sent = messages()
    await send(client, auth, sent)
    await drain()
    lines = await _export(client, auth)
    events = [line for line in lines if line["type"] != "identify"]
    stored = stored_ids(settings.database_url or "")
    assert sorted(line["messageId"] for line in events) == stored
    assert {m["messageId"] for m in sent if m["type"] != "identify"} == set(stored)
    assert [line["timestamp"] for line in lines] == sorted(line["timestamp"] for line in lines)
    page = next(line for line in events if line["type"] == "page")
    assert page["site"] == "shop.example" and page["context"]["page"]["path"] in ("/", "/pricing", "/docs")
    assert page["$stored"]["browser"] in ("Chrome", "Mobile Safari", "Firefox") and page["$stored"]["ip_hash"]
    alias = next(line for line in events if line["type"] == "alias")
    assert alias["previousId"] == "v3" and alias["userId"] == "u0"
    identifies = [line for line in lines if line["type"] == "identify"]
    assert {(line["userId"], line.get("anonymousId")) for line in identifies} >= {("u0", "v0"), ("u1", "v1")}
    # another account sees none of it
    other = await client.get("/analytics/export", params=_dates(),
                             headers={**auth["secret"], "X-Source-Account-Id": "elsewhere"})
    assert other.status == 200 and await other.text() == ""


@pytest.mark.parametrize("how", ["header", "query"])
async def test_export_gzip_when_asked(client: Any, auth: Any, drain: Any, how: str) -> None:
    await send(client, auth, messages())
    await drain()
    plain = await _export(client, auth)
    headers = {**auth["secret"], "Accept-Encoding": "gzip" if how == "header" else "identity"}
    params = {**_dates(), **({"gzip": "1"} if how == "query" else {})}
    response = await client.get("/analytics/export", headers=headers, params=params, auto_decompress=False)
    assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(await response.read()).decode()
    assert [json.loads(line) for line in body.splitlines()] == plain


@pytest.mark.parametrize(("params", "message"), [
    ({}, "start_date and end_date are required"),
    ({"start_date": "2026-13-01", "end_date": "2026-12-31"}, "Invalid date format"),
    ({"start_date": "yesterday", "end_date": "today"}, "Invalid date format"),
    ({"start_date": "2026-02-02", "end_date": "2026-02-01"}, "end_date must not be before start_date"),
    ({"start_date": "2020-01-01", "end_date": "2026-01-01"}, "limited to 91 days"),
    ({**_dates(), "gzip": "yes"}, "gzip"),
])
async def test_export_refuses_bad_ranges(client: Any, auth: Any, params: dict[str, str], message: str) -> None:
    response = await client.get("/analytics/export", headers=auth["secret"], params=params)
    assert response.status == 400
    body = await response.json()
    assert body["status"] == "error" and message in body["message"]


async def test_export_needs_the_secret_token(make_client: Any, settings: Settings, auth: Any, drain: Any) -> None:
    bound = settings.with_(secret_token=f"{SECRET},site:shop.example={SITE_TOKEN},tenant_a={TENANT_TOKEN}",
                           write_keys=(*settings.write_keys, f"tenant_a={TENANT_KEY}"))
    client = await make_client(bound)
    for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 401), (auth["write"], 401),
                            ({"Authorization": f"Bearer {SITE_TOKEN}"}, 403),
                            ({"Authorization": f"Bearer {TENANT_TOKEN}", "X-Source-Account-Id": "primary"}, 403)):
        response = await client.get("/analytics/export", headers=headers, params=_dates())
        assert response.status == status, await response.text()
        assert (await response.json())["status"] == "error"
    # an account-bound token exports its own account only
    await send(client, auth, messages())
    tenant = [m for m in messages(prefix="t") if m["type"] == "track"]
    response = await client.post("/analytics/v1/batch", json={"batch": tenant},
                                  headers={"Authorization": f"Bearer {TENANT_KEY}"})
    assert response.status == 200
    await drain()
    response = await client.get("/analytics/export", headers={"Authorization": f"Bearer {TENANT_TOKEN}"},
                                params=_dates())
    lines = [json.loads(line) for line in (await response.text()).splitlines()]
    assert sorted(line["messageId"] for line in lines) == sorted(m["messageId"] for m in tenant)
    assert {line["$stored"]["source_account_id"] for line in lines} == {"tenant_a"}


async def test_round_trip_into_an_empty_instance_reproduces_every_figure(
        client: Any, auth: Any, drain: Any, settings: Settings, make_client: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await send(client, auth, messages())
    beacon = await hits(client)
    await drain()
    now = int(datetime.now(UTC).timestamp()) + 1
    before = await figures(client, auth, now)
    export = tmp_path / "events.ndjson.gz"
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    code = await asyncio.to_thread(main, ["export", "--output", str(export), *_cli_dates()])
    assert code == 0 and export.stat().st_size > 0
    copy = sibling(settings, "analytics_export_copy", 9)
    migrate(copy)
    monkeypatch.setenv("DATABASE_URL", copy.database_url or "")
    monkeypatch.setenv("REDIS_URL", copy.redis_url or "")
    code = await asyncio.to_thread(main, ["import", str(export)])
    assert code == 0
    copied = await make_client(copy)
    await drain_app(copied, copy)
    assert stored_ids(copy.database_url or "") == stored_ids(settings.database_url or "")
    after = await figures(copied, auth, now)
    assert before["web.pageviews"]["data"]["pageviews"] == 12 + beacon and len(before["users"]["data"]) == 3
    assert before["person.u0"]["distinct_ids"] == ["u0", "v0", "v3"]
    for name, value in before.items():
        assert after[name] == value, name


def _cli_dates() -> list[str]:
    dates = _dates()
    return ["--start-date", dates["start_date"], "--end-date", dates["end_date"]]


async def test_import_into_the_same_instance_stores_nothing_twice(client: Any, auth: Any, drain: Any,
                                                                  settings: Settings) -> None:
    await send(client, auth, messages())
    await drain()
    lines = [json.dumps(line) for line in await _export(client, auth)]
    before = stored_ids(settings.database_url or "")
    pg_execute(settings.database_url or "", "TRUNCATE np_analytics_message_ids")  # past the dedupe window
    async with open_stores(settings) as stores:
        summary = await import_lines(stores, lines)
    assert stored_ids(settings.database_url or "") == before
    events = sum(1 for line in lines if json.loads(line)["type"] != "identify")
    assert summary["already_stored"] == events and summary["invalid"] == 0 and summary["too_old"] == 0


async def test_import_refuses_old_and_broken_lines_with_counts(client: Any, auth: Any, drain: Any,
                                                               settings: Settings) -> None:
    old = (datetime.now(UTC) - timedelta(days=settings.retention_days + 5)).isoformat()
    good = {"type": "track", "event": "kept", "userId": "u", "messageId": "00000000-0000-4000-8000-000000000001"}
    lines = [json.dumps(good), json.dumps({**good, "messageId": "m-old", "timestamp": old}),
             "{not json", json.dumps({"type": "track", "userId": "u"}), json.dumps({"type": "nope", "userId": "u"}),
             json.dumps([1, 2]), "", json.dumps({**good, "$stored": {"is_bot": "maybe"}})]
    async with open_stores(settings) as stores:
        summary = await import_lines(stores, lines)
    assert summary["lines"] == 7 and summary["queued"] == 1 and summary["too_old"] == 1 and summary["invalid"] == 5
    assert any("line 4" in error and "event" in error for error in summary["errors"])
    rows = pg_execute(settings.database_url or "", "SELECT event, message_id::text FROM np_analytics_events")
    assert rows == [("kept", good["messageId"])]


async def test_a_line_without_stored_fields_is_enriched_as_at_ingest(client: Any, auth: Any, drain: Any,
                                                                      settings: Settings) -> None:
    """A Segment archive's line (no $stored) is classified from its own context; an exported beacon page view
    without a visitor id keeps none, while such a line written by hand is refused like at ingest."""
    segment = {"type": "page", "anonymousId": "a1", "messageId": "00000000-0000-4000-8000-0000000000a1",
               "properties": {"url": "https://shop.example/x"}, "context": {"userAgent": IPHONE}}
    exported = {"type": "page", "messageId": "00000000-0000-4000-8000-0000000000a2", "site": "shop.example",
                "context": {"page": {"path": "/y"}}, "$stored": {"device": "mobile", "browser": "Safari"}}
    by_hand = {"type": "page", "messageId": "00000000-0000-4000-8000-0000000000a3", "site": "shop.example"}
    async with open_stores(settings) as stores:
        summary = await import_lines(stores, [json.dumps(segment), json.dumps(exported), json.dumps(by_hand)])
    assert summary["queued"] == 2 and summary["invalid"] == 1
    rows = pg_execute(settings.database_url or "", "SELECT path, anonymous_id, device, browser, os "
                                                   "FROM np_analytics_events ORDER BY path")
    assert rows == [("/x", "a1", "mobile", "Safari", "iOS"), ("/y", None, "mobile", "Safari", None)]


@pytest.mark.parametrize(("argv", "says"), [
    (["export", "--start-date", "nope"], "--start-date must be a date"),
    (["export", "--start-date", "2026-02-02", "--end-date", "2026-02-01"], "--end-date must not be before"),
    (["export", "--output", "/nonexistent-folder/x.ndjson"], "export failed"),
    (["import", "/nonexistent-folder/x.ndjson"], "import failed"),
])
async def test_export_and_import_commands_refuse_bad_input_with_one_line(
        argv: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # stores nobody listens on: every refusal comes before them, or from them, as exit code 2 and one line
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:x@127.0.0.1:1/none?connect_timeout=2")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    assert await asyncio.to_thread(main, argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


async def test_an_identify_lines_once_only_traits_fill_only_missing_traits(client: Any, auth: Any, drain: Any,
                                                                         settings: Settings) -> None:
    """A queued identify with PostHog's $set_once traits (a backup's queue part) keeps them through its line: they
    fill the traits the user lacks and never overwrite one; a line without them changes nothing it does not set."""
    await send(client, auth, [{"type": "identify", "userId": "u-once", "traits": {"plan": "pro"}}])
    await drain()
    record = IdentifyRecord(ts=datetime.now(UTC), user_id="u-once", traits={"seen": "yes"},
                            traits_once={"plan": "free", "first_page": "/pricing"})
    line = identify_line(record)
    assert line["$stored"]["traits_once"] == {"plan": "free", "first_page": "/pricing"}
    plain = identify_line(IdentifyRecord(ts=datetime.now(UTC), user_id="u-once"))
    assert "traits_once" not in plain["$stored"]
    async with open_stores(settings) as stores:
        summary = await import_lines(stores, [encode_line(line), encode_line(plain)])
    assert summary["queued"] == 2 and summary["invalid"] == 0
    rows = pg_execute(settings.database_url or "", "SELECT traits FROM np_analytics_users WHERE user_id = 'u-once'")
    assert rows == [({"plan": "pro", "seen": "yes", "first_page": "/pricing"},)]
