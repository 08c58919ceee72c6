"""The typed event model: one definition read by validation, OpenAPI, queue and store.

A field of EventRecord that has no column (or a column no field), a column named by hand that the
record lacks, or a field that does not reach its column, fails here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from nself_analytics.model import record as record_module
from nself_analytics.model.record import EVENT_COLUMNS, EventRecord, UnknownColumn, column, columns_of
from nself_analytics.model.schema import ingest_schemas
from nself_analytics.model.wire import BATCH_KINDS, KINDS, Batch, Hit
from nself_analytics.store import events as events_module

from .clock_support import days_ago, iso
from .conftest import pg_execute


def test_record_fields_are_the_table_columns(settings: Any) -> None:
    rows = pg_execute(settings.database_url, """
        SELECT column_name, format_type(atttypid, atttypmod)
        FROM information_schema.columns c
        JOIN pg_attribute a ON a.attrelid = 'np_analytics_events'::regclass AND a.attname = c.column_name
        WHERE c.table_name = 'np_analytics_events' ORDER BY ordinal_position""")
    table = {name: sqltype for name, sqltype in rows}
    aliases = {"timestamp with time zone": "timestamptz"}
    assert {name: aliases.get(t, t) for name, t in table.items()} == EVENT_COLUMNS


def _import_copy(source: str, name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"nself_analytics.store.{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]


def test_a_misspelled_column_fails_at_import(tmp_path: Path) -> None:
    source = Path(events_module.__file__).read_text()
    _import_copy(source, "events_copy", tmp_path)  # the module as it is imports
    misspelled = source.replace('column("source_account_id")', 'column("source_acount_id")')
    assert misspelled != source
    with pytest.raises(UnknownColumn, match="source_acount_id"):
        _import_copy(misspelled, "events_misspelled", tmp_path)


def test_a_field_without_sql_type_fails_at_import() -> None:
    class Odd(msgspec.Struct):
        when: set[int]

    with pytest.raises(TypeError, match="no SQL type for field 'when'"):
        columns_of(Odd)
    assert column("screen_width") == "screen_width"
    with pytest.raises(UnknownColumn):
        column("screen_widht")


def test_schemas_are_the_structs() -> None:
    schemas = ingest_schemas()
    for kind, cls in KINDS.items():
        fields = {f.encode_name for f in msgspec.structs.fields(cls)}
        assert set(schemas[cls.__name__]["properties"]) == fields, kind
        tagged = schemas[BATCH_KINDS[kind].__name__]
        assert tagged["properties"]["type"] == {"enum": [kind]} and "type" in tagged["required"]
        assert {"anyOf", "allOf"} & set(schemas[cls.__name__])  # the rules of __post_init__
    batch = schemas["Batch"]["properties"]["batch"]
    assert batch["maxItems"] == 100 and batch["minItems"] == 1
    assert schemas["Track"]["properties"]["event"] == {
        "type": "string", "minLength": 1, "maxLength": 200, "description": "the event's name"}
    assert set(schemas["Batch"]["properties"]) == {f.encode_name for f in msgspec.structs.fields(Batch)}
    # the beacon's hit too: the Struct that validates POST /hit is its documented body
    assert set(schemas["Hit"]["properties"]) == {f.encode_name for f in msgspec.structs.fields(Hit)}
    assert schemas["Hit"]["required"] == ["site"] and schemas["Hit"]["properties"]["site"]["pattern"]


async def test_every_field_reaches_its_column(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    """One page view that fills every column: a field lost on the way (queue, drain, SQL) leaves a NULL."""
    headers = {**auth["write"], "X-Forwarded-For": "8.8.8.8",
               "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                             "Chrome/120.0 Safari/537.36"}
    response = await client.post("/analytics/page", headers=headers, json={
        "userId": "u1", "anonymousId": "a1", "sessionId": "s1", "name": "Pricing",
        "properties": {"url": "https://shop.example.com/pricing", "referrer": "https://google.com/"},
        "context": {"locale": "en-US", "screen": {"width": 1280}, "library": {"name": "analytics.js"}},
        "timestamp": iso(days_ago(17))})
    assert response.status == 202
    assert await drain() == 1
    names = list(EVENT_COLUMNS)
    [row] = pg_execute(settings.database_url, f"SELECT {', '.join(names)} FROM np_analytics_events")
    stored = dict(zip(names, row, strict=True))
    assert [name for name, value in stored.items() if value is None] == []
    assert stored["screen_width"] == 1280 and stored["country"] == "US" and stored["language"] == "en-US"
    assert stored["site"] == "shop.example.com" and stored["session_id"] == "s1" and stored["is_bot"] is False


def test_record_module_declares_every_event_column() -> None:
    assert list(EVENT_COLUMNS) == [f.name for f in msgspec.structs.fields(EventRecord)]
    assert record_module.select_list(EventRecord).count("coalesce(") == 3  # account, type, is_bot defaults


@pytest.mark.parametrize(("body", "message"), [
    ({"batch": [{"type": 5, "user_id": "u"}]}, "batch[0]: type must be one of track, page, identify"),
    ({"batch": [{"type": "track", "event": "e", "user_id": "u"}, 7]}, "batch[1]: each message must be a JSON object"),
    ({"batch": [{"type": "track", "event": "e" * 201, "user_id": "u"}]}, "batch[0]: event is longer than 200"),
    ({"batch": [{"type": "page", "anonymousId": "a", "site": 5}]}, "batch[0]: site must be a string"),
    ({"batch": [{"type": "page", "anonymousId": "  "}]}, "batch[0]: user_id or anonymous_id is required"),
    ({"batch": [{"type": "group", "userId": "u", "groupId": ["g"]}]}, "batch[0]: group_id must be a string"),
    ({"batch": [{"type": "track", "event": "e", "userId": "u" * 256}]}, "batch[0]: user_id is longer than 255"),
    ({"batch": [{"type": "track", "event": "e", "user_id": "u"}], "context": []}, "context must be a JSON object"),
])
async def test_hostile_batch_items_are_400_naming_the_field(client: Any, auth: Any, body: Any, message: str) -> None:
    response = await client.post("/analytics/batch", headers=auth["write"], json=body)
    assert response.status == 400
    payload = await response.json()
    assert payload["status"] == "error" and payload["message"].startswith(message), payload
