"""Reads of a full export, in constant memory, and the checks of an import and a restore.

:func:`export_lines` streams one account's events of ``[start, end)`` in (ts, message_id) order, and its
identified users (an identify line at their first and at their last sight), through server-side cursors
(``DECLARE ... CURSOR`` in one read transaction, so the export is one consistent snapshot): the events
partitions are daily, so the server sorts one day at a time while ``FETCH`` hands out ``batch`` rows. The
lines are in the shape of ``model.ndjson``.

:func:`stored_message_ids` says which events of an import are stored already (the de-duplication window of
np_analytics_message_ids forgets ids after ANALYTICS_DEDUPE_WINDOW; an export is older than that).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import aiopg
import msgspec

from ..model.ndjson import event_line, identify_line
from ..model.record import EVENT_COLUMNS, EventRecord, IdentifyRecord, select_list
from .tx import transaction

__all__ = ["EXPORT_BATCH", "export_lines", "stored_message_ids"]

EXPORT_BATCH = 1000
_EVENTS = f"""
DECLARE export_events NO SCROLL CURSOR FOR
SELECT {select_list(EventRecord)} FROM np_analytics_events
WHERE source_account_id = %(account)s AND ts >= %(start)s AND ts < %(end)s
ORDER BY ts, message_id
"""
_USERS = """
DECLARE export_users_{which} NO SCROLL CURSOR FOR
SELECT user_id, traits, anonymous_ids, first_seen, last_seen FROM np_analytics_users
WHERE source_account_id = %(account)s AND first_seen >= %(start)s AND first_seen < %(end)s
  {only_last}
ORDER BY {which}_seen, user_id
"""


async def _fetch(cur: aiopg.Cursor, name: str, batch: int) -> AsyncIterator[tuple[Any, ...]]:
    while True:
        await cur.execute(f"FETCH {int(batch)} FROM {name}")
        rows = await cur.fetchall()
        for row in rows:
            yield row
        if len(rows) < batch:
            return


async def _events(cur: aiopg.Cursor, batch: int) -> AsyncIterator[tuple[datetime, dict[str, Any]]]:
    names = list(EVENT_COLUMNS)
    async for row in _fetch(cur, "export_events", batch):
        record = msgspec.convert(dict(zip(names, row, strict=True)), EventRecord, strict=False)
        yield record.ts, event_line(record)


async def _users(cur: aiopg.Cursor, which: str, account: str,
                 batch: int) -> AsyncIterator[tuple[datetime, dict[str, Any]]]:
    """Identify lines of each user: at first sight its traits and each anonymous id; at last sight (when later)
    one without traits, so first_seen and last_seen come back as they were."""
    async for user_id, traits, anonymous_ids, first_seen, last_seen in _fetch(cur, f"export_users_{which}", batch):
        if which == "last":
            yield last_seen, identify_line(IdentifyRecord(ts=last_seen, source_account_id=account,
                                                          user_id=user_id), stable_id=True)
            continue
        for index, anonymous_id in enumerate(anonymous_ids or [None]):
            record = IdentifyRecord(ts=first_seen, source_account_id=account, user_id=user_id,
                                    anonymous_id=anonymous_id, traits=traits if index == 0 else {})
            yield first_seen, identify_line(record, stable_id=True)


async def _merged(sources: list[AsyncIterator[tuple[datetime, dict[str, Any]]]]) -> AsyncIterator[dict[str, Any]]:
    """The lines of ``sources`` (each in time order) in time order; on a tie the earlier source first."""
    heads: list[tuple[datetime, dict[str, Any]] | None] = [await anext(s, None) for s in sources]
    while True:
        live = [(head[0], index) for index, head in enumerate(heads) if head is not None]
        if not live:
            return
        _ts, index = min(live)
        head = heads[index]
        assert head is not None
        yield head[1]
        heads[index] = await anext(sources[index], None)


async def export_lines(conn: aiopg.Connection, *, account: str, start: datetime, end: datetime,
                       batch: int = EXPORT_BATCH,
                       timeout_ms: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
    """Every stored event and identified user of ``account`` in ``[start, end)`` as export lines, in time order.
    ``timeout_ms``: the statement timeout of each FETCH (a day's sort runs inside the first FETCH reaching it)."""
    params = {"account": account, "start": start, "end": end}
    async with transaction(conn) as cur:
        await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if timeout_ms is not None:
            await cur.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        await cur.execute(_EVENTS, params)
        await cur.execute(_USERS.format(which="first", only_last=""), params)
        await cur.execute(_USERS.format(which="last", only_last="AND last_seen > first_seen"), params)
        async for line in _merged([_events(cur, batch), _users(cur, "first", account, batch),
                                   _users(cur, "last", account, batch)]):
            yield line


# One index probe per key (a LATERAL ... LIMIT 1 is a nested loop): a join lets the planner hash every stored
# event of the account (133 ms per 100 keys at 300k events, growing with the table; 1 ms this way).
_STORED = """
SELECT k.a, k.m::text FROM jsonb_to_recordset(%(keys)s::jsonb) AS k(a text, m uuid, e text, t timestamptz)
CROSS JOIN LATERAL (
    SELECT 1 FROM np_analytics_events e
    WHERE e.source_account_id = k.a AND e.event = k.e AND e.ts = k.t AND e.message_id = k.m
    LIMIT 1
) AS found
"""


async def stored_message_ids(conn: aiopg.Connection, events: Sequence[EventRecord]) -> set[tuple[str, uuid.UUID]]:
    """The (account, message id) of ``events`` already stored with the same time (found through the
    (account, event, ts) index)."""
    if not events:
        return set()
    keys = [{"a": e.source_account_id, "m": str(e.message_id), "e": e.event, "t": e.ts.isoformat()} for e in events]
    async with conn.cursor() as cur:
        await cur.execute(_STORED, {"keys": msgspec.json.encode(keys).decode()})
        return {(account, uuid.UUID(message_id)) for account, message_id in await cur.fetchall()}

