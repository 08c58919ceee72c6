"""What a validated message becomes: the queue payload, and (for events) the stored row.

:class:`EventRecord` is both the JSON the ingest path puts in the Redis stream and the row the drain
writes: the drain's recordset and column list (:data:`EVENT_COLUMNS`) are derived from its fields, so a
field added here is carried and stored with no other edit (after a migration adds its column;
tests/test_model.py checks the Struct against the table). SQL that names columns takes them through
:func:`column`, which fails at import time for a name the Struct does not have.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct
from msgspec import inspect as mi

__all__ = ["EVENT_COLUMNS", "EventRecord", "IdentifyRecord", "UnknownColumn", "column", "columns_of", "decode_record",
           "select_list"]

SmallInt = Annotated[int, Meta(ge=-32768, le=32767, extra={"sql": "smallint"})]
Json = dict[str, Any]


class EventRecord(Struct, kw_only=True):
    """One row of np_analytics_events (every kind but identify)."""

    ts: datetime
    message_id: uuid.UUID
    source_account_id: str = "primary"
    type: str = "track"
    event: str
    user_id: str | None = None
    anonymous_id: str | None = None
    session_id: str | None = None
    site: str | None = None
    path: str | None = None
    referrer: str | None = None
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    language: str | None = None
    country: str | None = None
    screen_width: SmallInt | None = None
    is_bot: bool = False
    ip_hash: str | None = None
    properties: Json | None = None
    context: Json | None = None


class IdentifyRecord(Struct, kw_only=True):
    """An identify: merged into np_analytics_users by the drain (not an event row)."""

    type: str = "identify"
    message_id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)  # deduped in Redis; not stored
    ts: datetime
    source_account_id: str = "primary"
    user_id: str
    anonymous_id: str | None = None
    traits: Json = msgspec.field(default_factory=dict)
    # traits set only where the user has none of that name yet (PostHog's $set_once); ``traits`` win over them
    traits_once: Json = msgspec.field(default_factory=dict)


class UnknownColumn(LookupError):
    """SQL names a column its record Struct does not have."""


_SQL_TYPES: dict[type[mi.Type], str] = {
    mi.StrType: "text", mi.DateTimeType: "timestamptz", mi.UUIDType: "uuid", mi.BoolType: "boolean",
    mi.DictType: "jsonb", mi.AnyType: "jsonb",
}


def _sql_type(tp: mi.Type, name: str) -> str:
    if isinstance(tp, mi.UnionType):
        rest = [t for t in tp.types if not isinstance(t, mi.NoneType)]
        if len(rest) == 1:
            return _sql_type(rest[0], name)
    if isinstance(tp, mi.Metadata):
        return (tp.extra or {}).get("sql") or _sql_type(tp.type, name)
    if type(tp) in _SQL_TYPES:
        return _SQL_TYPES[type(tp)]
    raise TypeError(f"no SQL type for field {name!r} ({tp}): declare one with Meta(extra={{'sql': ...}})")


def columns_of(cls: type[Struct]) -> dict[str, str]:
    """Column name -> SQL type for each field of ``cls``, in field order."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return {field.encode_name: _sql_type(field.type, field.name) for field in info.fields}


# Column name -> SQL type, in the order of the recordset; the queue payload's keys are these names.
EVENT_COLUMNS: dict[str, str] = columns_of(EventRecord)


def _literal(value: object) -> str:
    """A Struct default as SQL (defaults are constants of this module, never client text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for default {value!r}")


def select_list(cls: type[Struct]) -> str:
    """The columns of ``cls`` as a SELECT list, a field's default filling a missing value (a payload of
    an older version, or a row a test wrote by hand)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    items = []
    for field in info.fields:
        default = field.default
        if default is None or default is msgspec.NODEFAULT:
            items.append(field.encode_name)
        else:
            items.append(f"coalesce({field.encode_name}, {_literal(default)})")
    return ", ".join(items)


def column(name: str, columns: dict[str, str] = EVENT_COLUMNS) -> str:
    """``name`` if it is a column of the record (SQL written by hand names its columns through this)."""
    if name not in columns:
        raise UnknownColumn(f"{name!r} is not a field of the record; columns: {', '.join(columns)}")
    return name


class _Kind(Struct):
    type: str = "track"


_KIND = msgspec.json.Decoder(_Kind)
_EVENT = msgspec.json.Decoder(EventRecord)
_IDENTIFY = msgspec.json.Decoder(IdentifyRecord)


def decode_record(payload: str | bytes) -> EventRecord | IdentifyRecord:
    """A queue payload as its record; msgspec.DecodeError (or ValidationError) when it is none.

    Unknown keys are ignored here, not refused: during a rolling upgrade an older instance may drain a
    newer one's payload, and storing the event without the new column beats dead-lettering it.
    """
    try:  # almost every payload is an event: decoded once (reading the type first cost a third more)
        record = _EVENT.decode(payload)
    except msgspec.ValidationError:
        if _KIND.decode(payload).type == "identify":  # an identify has no event name: not an EventRecord
            return _IDENTIFY.decode(payload)
        raise
    return _IDENTIFY.decode(payload) if record.type == "identify" else record
