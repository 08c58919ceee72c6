"""Tests write events through the drain's own write path, store.events.write_payload: rows given as EventRecords
or as dicts of their fields (a key that is not a field fails here, rather than being stored as NULL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiopg
import msgspec

from nself_analytics.model.record import EVENT_COLUMNS, EventRecord, IdentifyRecord, UnknownColumn
from nself_analytics.store.events import DEFAULT_MAX_IDS, write_payload

__all__ = ["write_events"]


def _record(event: EventRecord | Mapping[str, Any]) -> EventRecord:
    if isinstance(event, EventRecord):
        return event
    unknown = set(event) - EVENT_COLUMNS.keys()
    if unknown:
        raise UnknownColumn(f"not columns of np_analytics_events: {', '.join(sorted(unknown))}")
    return msgspec.convert(event, EventRecord)


async def write_events(conn: aiopg.Connection, events: Sequence[EventRecord | Mapping[str, Any]],
                       identifies: Sequence[IdentifyRecord | Mapping[str, Any]] = (),
                       links: Sequence[dict[str, Any]] = (), *, max_ids: int = DEFAULT_MAX_IDS) -> int:
    """Write one batch as the drain does (one statement, one transaction); the number of events newly stored."""
    payload = msgspec.json.encode([_record(e) for e in events]).decode()
    users = [i if isinstance(i, IdentifyRecord) else msgspec.convert(i, IdentifyRecord) for i in identifies]
    return await write_payload(conn, payload, users, links, max_ids=max_ids)
