"""A person's data for GET /persons/{distinct_id}/export (GDPR articles 15 and 20), read in bounded pages.

Events: partition by partition (a UTC day each), the rows of the person's ids in (ts, message_id) order, at most
``PAGE`` per statement (keyset: constant memory however many events the person has); then the identified users
among the ids (traits) and the identity links. Ids are resolved once, at the start (store/erasure.py person_ids).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import aiopg
import msgspec

from ..model.ndjson import encode_line, event_line, identify_line
from ..model.record import EVENT_COLUMNS, EventRecord, IdentifyRecord
from .erasure import person_ids
from .partitions import list_partitions

__all__ = ["PAGE", "Link", "events", "ids_of", "lines", "links", "users"]

PAGE = 1_000
_COLS = ", ".join(f"e.{name}" for name in EVENT_COLUMNS)
_NAMES = list(EVENT_COLUMNS)

EVENTS_PAGE = """
SELECT {cols} FROM {part} e
WHERE coalesce(e.user_id, e.anonymous_id) = ANY(%(ids)s::text[]) AND e.source_account_id = %(account)s
  AND (e.ts, e.message_id) > (%(ts)s::timestamptz, %(mid)s::uuid)
ORDER BY e.ts, e.message_id LIMIT %(limit)s
"""


class Link(msgspec.Struct, frozen=True):
    """One identity link: ``distinct_id`` belongs to the person ``person_id`` since ``linked_at``."""

    distinct_id: str
    person_id: str
    linked_at: datetime


async def ids_of(conn: aiopg.Connection, account: str, distinct_id: str) -> list[str]:
    async with conn.cursor() as cur:
        return await person_ids(cur, account, distinct_id)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def events(conn: aiopg.Connection, account: str, ids: list[str]) -> AsyncIterator[EventRecord]:
    """Every stored event of ``ids``, oldest first."""
    for part, _bound in await list_partitions(conn):
        ts, mid = "-infinity", "00000000-0000-0000-0000-000000000000"
        while True:
            async with conn.cursor() as cur:
                await cur.execute(EVENTS_PAGE.format(cols=_COLS, part=_quote(part)),
                                  {"ids": ids, "account": account, "ts": ts, "mid": mid, "limit": PAGE})
                rows = await cur.fetchall()
            for row in rows:
                yield msgspec.convert(dict(zip(_NAMES, row, strict=True)), EventRecord)
            if len(rows) < PAGE:
                break
            ts, mid = rows[-1][_NAMES.index("ts")], str(rows[-1][_NAMES.index("message_id")])


async def users(conn: aiopg.Connection, account: str, ids: list[str]) -> list[tuple[IdentifyRecord, list[str]]]:
    """The identified users among ``ids`` (at most ANALYTICS_MAX_IDS_PER_PERSON): an identify with their traits
    (at their last identify) and the anonymous ids they came with."""
    async with conn.cursor() as cur:
        await cur.execute("""
            SELECT user_id, traits, anonymous_ids, last_seen FROM np_analytics_users
            WHERE source_account_id = %(account)s AND user_id = ANY(%(ids)s::text[]) ORDER BY user_id""",
                          {"account": account, "ids": ids})
        rows = await cur.fetchall()
    out = []
    for user_id, traits, anonymous_ids, last_seen in rows:
        record = IdentifyRecord(ts=last_seen, source_account_id=account, user_id=user_id,
                                anonymous_id=None, traits=traits or {})
        out.append((record, list(anonymous_ids or [])))
    return out


async def links(conn: aiopg.Connection, account: str, ids: list[str]) -> list[Link]:
    async with conn.cursor() as cur:
        await cur.execute("""
            SELECT distinct_id, person_id, linked_at FROM np_analytics_person_map
            WHERE source_account_id = %(account)s AND distinct_id = ANY(%(ids)s::text[]) ORDER BY distinct_id""",
                          {"account": account, "ids": ids})
        return [Link(*row) for row in await cur.fetchall()]


async def lines(conn: aiopg.Connection, account: str, distinct_id: str) -> AsyncIterator[bytes]:
    """The export of the person of ``distinct_id`` as NDJSON lines (model/ndjson.py): its events, then an identify
    line per identified user and an alias line per anonymous id it was identified with, then its identity links.
    Shared by GET /persons/{id}/export and ``nself-analytics persons export``; nothing for an unknown id."""
    ids = await ids_of(conn, account, distinct_id)
    async for record in events(conn, account, ids):
        yield encode_line(event_line(record))
    for user, anonymous_ids in await users(conn, account, ids):
        yield encode_line(identify_line(user, stable_id=True))
        for anonymous_id in anonymous_ids:  # the anonymous ids the user was identified with
            yield encode_line({"type": "alias", "userId": user.user_id, "previousId": anonymous_id,
                               "source": "identify"})
    for link in await links(conn, account, ids):
        yield encode_line({"type": "alias", "userId": link.person_id, "previousId": link.distinct_id,
                           "timestamp": link.linked_at.isoformat(), "source": "person_map"})
