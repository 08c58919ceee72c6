"""Identity: the person of a distinct id, read through ``np_analytics_person_map`` (migration 0030).

A stored event keeps its raw distinct id (``user_id``, else ``anonymous_id``); which person that id
belongs to is decided at READ time, so a link that arrives after the events (a visitor browses
anonymously, then signs up) applies to those earlier events too. Every query that counts people
(funnels, retention, metrics and sessions filtered by user, web visitors, rollup readers) resolves
ids with the fragments below, never by its own rule:

    SELECT {EVENT_PERSON} AS person FROM np_analytics_events e {EVENT_PERSON_JOIN} WHERE ...

Links are written by the drain, in the transaction of the batch that carried them
(:func:`link_ops` builds them in stream order, ``np_analytics_link_ids`` applies them):
``identify`` with an anonymous id links it to the user, unless the anonymous id is already linked
or is itself a known user; ``alias`` merges the previous id's person with the user's, unless the previous id's
person is identified (PostHog's rule: only the secret token merges two identified persons). A person holds at
most ANALYTICS_MAX_IDS_PER_PERSON ids; a merge re-points the smaller person into the larger (whose root stays
the person id). The tests' plain-Python reference (``tests/queries_support.py: ref_persons``) is the definition.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiopg
import msgspec

from ..model.record import EventRecord, IdentifyRecord

__all__ = [
    "EVENT_DISTINCT",
    "EVENT_PERSON",
    "EVENT_PERSON_JOIN",
    "LINK_IDS",
    "PERSON_OF_USER_PARAM",
    "PersonChange",
    "apply_links",
    "link_ops",
    "merge_persons",
    "person_expr",
    "person_join",
    "person_of_param",
    "split_person",
]


def person_join(distinct: str, account: str = "%(account)s", alias: str = "pm") -> str:
    """A LEFT JOIN giving ``{alias}.person_id`` (NULL: the id is its own person) for the distinct id
    SQL ``distinct`` of account SQL ``account``."""
    return (f'LEFT JOIN np_analytics_person_map {alias} ON {alias}.source_account_id = {account} '
            f'AND {alias}.distinct_id = ({distinct}) COLLATE "C"')


def person_expr(distinct: str, alias: str = "pm") -> str:
    """The person of the distinct id SQL ``distinct``, joined by :func:`person_join` as ``alias``."""
    return f'coalesce({alias}.person_id, ({distinct}) COLLATE "C")'


# For np_analytics_events aliased ``e``.
EVENT_DISTINCT = "coalesce(e.user_id, e.anonymous_id)"
EVENT_PERSON_JOIN = person_join(EVENT_DISTINCT, "e.source_account_id")
EVENT_PERSON = person_expr(EVENT_DISTINCT)

def person_of_param(param: str = "user_id", account: str = "%(account)s") -> str:
    """The person of the distinct id in query parameter ``param`` (for a filter on one user: compare with
    :data:`EVENT_PERSON`, so that user's anonymous events before an identify are theirs too)."""
    return f"""coalesce(
    (SELECT pu.person_id FROM np_analytics_person_map pu
     WHERE pu.source_account_id = {account} AND pu.distinct_id = %({param})s::text COLLATE "C"),
    %({param})s::text COLLATE "C")"""


PERSON_OF_USER_PARAM = person_of_param()

# links naming a suppressed (erased) id are left out (migration 0102; store/suppressions.py suppressed_sql)
LINK_IDS = """
SELECT np_analytics_link_ids(coalesce((
    SELECT jsonb_agg(o ORDER BY n) FROM jsonb_array_elements(%(ops)s::jsonb) WITH ORDINALITY AS t(o, n)
    WHERE NOT EXISTS (SELECT 1 FROM np_analytics_suppressions)
       OR NOT EXISTS (SELECT 1 FROM np_analytics_suppressions sp
                      WHERE sp.source_account_id = o->>'a'
                        AND sp.id_hash IN (np_analytics_id_hash(o->>'a', o->>'u'),
                                           np_analytics_id_hash(o->>'a', o->>'d')))
), '[]'::jsonb), %(max_ids)s)"""


def link_ops(records: Iterable[EventRecord | IdentifyRecord]) -> list[dict[str, Any]]:
    """The link operations of drained messages, in their order: identify (user id, anonymous id or
    None) and alias (user id, previous id). Other messages link nothing."""
    ops: list[dict[str, Any]] = []
    for record in records:
        account = record.source_account_id
        if isinstance(record, IdentifyRecord):
            if record.user_id:
                ops.append({"a": account, "k": "identify", "u": record.user_id, "d": record.anonymous_id})
        elif record.type == "alias" and record.user_id:
            previous = (record.properties or {}).get("previous_id")
            if isinstance(previous, str | int) and not isinstance(previous, bool) and str(previous):
                ops.append({"a": account, "k": "alias", "u": record.user_id, "d": str(previous)})
    return ops


async def apply_links(cur: aiopg.Cursor, ops_json: str, max_ids: int) -> dict[str, int]:
    """Apply link operations (JSON of :func:`link_ops`) inside the caller's transaction; return the refused
    ones by reason: ``identified`` (the previous id's person is identified), ``linked`` (an id already belongs
    to another person, or is a known user), ``cap`` (the person would hold more than ``max_ids`` ids).

    Each link costs at most ``max_ids`` row probes and re-points the smaller of two merged persons
    (migration 0113), so no shape of links (chains, stars, cycles) makes the drain's statement slow."""
    await cur.execute(LINK_IDS, {"ops": ops_json, "max_ids": max_ids})
    (refused,) = await cur.fetchone()
    return {reason: int(count) for reason, count in refused.items() if count}



class PersonChange(msgspec.Struct, frozen=True):
    """What an explicit merge or split did (migration 0114). ``outcome``: ``merged`` / ``split`` (done),
    ``same`` (merge: already one person), ``alone`` (split: the id has no other id), ``cap`` (refused: the person
    would hold, or holds, more than ANALYTICS_MAX_IDS_PER_PERSON ids), ``unknown`` (``distinct_id`` was never
    seen). ``person_id``: the person the ids belong to afterwards (merge: the person of ``into``; split: the
    person the other ids keep). ``moved``: ids re-pointed. ``size``: the merged person's ids (merge only)."""

    outcome: str
    person_id: str | None = None
    distinct_id: str | None = None
    moved: int = 0
    size: int | None = None


MERGE = "SELECT np_analytics_merge_persons(%(account)s, %(into)s, %(from)s, %(max_ids)s)"
SPLIT = "SELECT np_analytics_split_person(%(account)s, %(id)s, %(max_ids)s)"


async def _change(conn: aiopg.Connection, sql: str, params: dict[str, Any]) -> PersonChange:
    async with conn.cursor() as cur:  # one statement: its own transaction, under the account's advisory lock
        await cur.execute(sql, params)
        (answer,) = await cur.fetchone()
    return msgspec.convert(answer, PersonChange)


async def merge_persons(conn: aiopg.Connection, *, account: str, into: str, from_: str,
                        max_ids: int) -> PersonChange:
    """The secret token's merge: the whole person of ``from_`` joins the person of ``into`` (also two identified
    persons), unless the result would hold more than ``max_ids`` ids. Serialized with the drain's links."""
    return await _change(conn, MERGE, {"account": account, "into": into, "from": from_, "max_ids": max_ids})


async def split_person(conn: aiopg.Connection, *, account: str, distinct_id: str, max_ids: int) -> PersonChange:
    """The secret token's split: ``distinct_id`` leaves its person. When it is the person's root, the other ids
    stay one person whose new root is the smallest of them in byte order."""
    return await _change(conn, SPLIT, {"account": account, "id": distinct_id, "max_ids": max_ids})
