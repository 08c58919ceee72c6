"""People: identified users (traits, first/last seen) and one person's ids, counts and recent events.

A person is resolved through the person map (store/identity.py): the ids of the person of ``id`` are the
person's root id and every distinct id mapped to it. Their events are read through the
B-tree index on ``coalesce(user_id, anonymous_id)`` (migration 0081). Every list is
bounded (``limit``, ``offset``); search text and trait keys/values arrive as parameters only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiopg
import msgspec

from .identity import person_expr, person_join, person_of_param
from .tx import read_snapshot

__all__ = ["MAX_EVENT_NAMES", "EventCount", "Person", "PersonEvent", "User", "list_users", "person"]

MAX_EVENT_NAMES = 50  # per-event counts of a person: the most frequent names

# The matching users, each with the first and last activity of its person (every distinct id of it, from
# np_analytics_seen, as of the aggregator's last run) and of its identify calls, most recently active first.
LIST_USERS = f"""
WITH matched AS MATERIALIZED (
    SELECT u.user_id, u.traits, u.first_seen, u.last_seen, {person_expr("u.user_id")} AS person
    FROM np_analytics_users u {person_join("u.user_id")}
    WHERE u.source_account_id = %(account)s
      AND (%(search)s::text IS NULL OR strpos(lower(u.user_id), lower(%(search)s)) > 0
           OR strpos(lower(u.traits::text), lower(%(search)s)) > 0)
      AND NOT EXISTS (SELECT 1 FROM jsonb_each_text(%(traits)s::jsonb) AS f
                      WHERE (u.traits ->> f.key) IS DISTINCT FROM f.value)
),
ids AS (
    SELECT user_id, person AS id FROM matched
    UNION
    SELECT m.user_id, pm2.distinct_id FROM matched m
    JOIN np_analytics_person_map pm2 ON pm2.source_account_id = %(account)s AND pm2.person_id = m.person
),
act AS (
    SELECT i.user_id, min(s.first_ts) AS first_ts, max(s.last_ts) AS last_ts
    FROM ids i JOIN np_analytics_seen s ON s.source_account_id = %(account)s AND s.u = i.id
    GROUP BY i.user_id
)
SELECT m.user_id, m.traits, least(a.first_ts, m.first_seen) AS first_seen,
       greatest(a.last_ts, m.last_seen) AS last_seen
FROM matched m LEFT JOIN act a USING (user_id)
ORDER BY 4 DESC, m.user_id COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s
"""

PERSON_IDS = f"""
WITH p AS (SELECT {person_of_param("id")} AS person)
SELECT p.person, array(
    SELECT d FROM (SELECT p.person AS d
                   UNION SELECT m.distinct_id FROM np_analytics_person_map m
                   WHERE m.source_account_id = %(account)s AND m.person_id = p.person) AS ids
    ORDER BY d)
FROM p
"""

EVENTS_OF = """
    FROM np_analytics_events e
    WHERE e.source_account_id = %(account)s AND coalesce(e.user_id, e.anonymous_id) = ANY(%(ids)s::text[])
"""
PERSON_COUNTS = f"""
SELECT event, count(*), min(ts), max(ts), sum(count(*)) OVER () AS events
{EVENTS_OF}
GROUP BY event
ORDER BY count(*) DESC, event COLLATE "C"
LIMIT %(names)s
"""
PERSON_EVENTS = f"""
SELECT e.ts, e.event, coalesce(e.user_id, e.anonymous_id), e.session_id, e.site, e.path, e.properties
{EVENTS_OF}
ORDER BY e.ts DESC, e.message_id
LIMIT %(limit)s OFFSET %(offset)s
"""
PERSON_USERS = """
SELECT user_id, traits, anonymous_ids, first_seen, last_seen
FROM np_analytics_users
WHERE source_account_id = %(account)s AND user_id = ANY(%(ids)s::text[])
ORDER BY last_seen
"""


class User(msgspec.Struct, frozen=True):
    """An identified user: its id, traits and first/last seen."""

    user_id: str
    traits: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None


class EventCount(msgspec.Struct, frozen=True):
    event: str
    count: int


class PersonEvent(msgspec.Struct, frozen=True):
    ts: datetime
    event: str
    distinct_id: str | None
    session_id: str | None
    site: str | None
    path: str | None
    properties: dict[str, Any] | None


class Person(msgspec.Struct, frozen=True):
    """A person: a page of its ids, traits, first/last seen, event counts, a page of its events newest first."""

    id: str
    person_id: str | None
    distinct_ids: list[str]
    distinct_id_count: int
    more_ids: bool
    user_ids: list[str]
    linked_ids: list[str]
    traits: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    event_count: int
    event_counts: list[EventCount]
    events: list[PersonEvent]
    more_events: bool


async def list_users(conn: aiopg.Connection, *, account: str, search: str | None, traits: dict[str, str],
                     limit: int, offset: int) -> tuple[list[User], bool]:
    """(users, more): identified users matching the search text (in the id or any trait) and every trait
    filter (the trait's text equals the value), most recently active first; first_seen/last_seen are the first
    and last activity of the user's person (its events, as of the aggregator's last run, and identify calls)."""
    params = {"account": account, "search": search, "traits": json.dumps(traits), "limit": limit + 1,
              "offset": offset}
    async with read_snapshot(conn) as cur:
        await cur.execute(LIST_USERS, params)
        rows = await cur.fetchall()
    users = [User(user_id, user_traits, first, last) for user_id, user_traits, first, last in rows[:limit]]
    return users, len(rows) > limit


async def person(conn: aiopg.Connection, *, account: str, distinct_id: str, limit: int,
                 offset: int, ids_limit: int = 100, ids_offset: int = 0) -> Person | None:
    """The person of ``distinct_id``: a page of its ids (``ids_limit`` from ``ids_offset``, in id order), traits,
    first/last seen, counts, a page of events newest first; None when nothing is known of it."""
    async with read_snapshot(conn) as cur:
        await cur.execute(PERSON_IDS, {"account": account, "id": distinct_id})
        [(root, ids)] = await cur.fetchall()
        params = {"account": account, "ids": list(ids), "names": MAX_EVENT_NAMES, "limit": limit + 1,
                  "offset": offset}
        await cur.execute(PERSON_USERS, params)
        users = await cur.fetchall()
        await cur.execute(PERSON_COUNTS, params)
        counts = await cur.fetchall()
        await cur.execute(PERSON_EVENTS, params)
        events = await cur.fetchall()
    if not users and not counts:
        return None
    traits: dict[str, Any] = {}
    for _user, user_traits, _anon, _first, _last in users:  # the most recently seen user's traits win
        traits.update(user_traits or {})
    seen = [t for row in counts for t in row[2:4]] + [t for row in users for t in row[3:5]]
    user_ids = {row[0] for row in users}
    page = list(ids)[ids_offset:ids_offset + ids_limit]
    return Person(
        id=distinct_id, person_id=root, distinct_ids=page, distinct_id_count=len(ids),
        more_ids=ids_offset + ids_limit < len(ids), user_ids=sorted(user_ids)[:ids_limit],
        linked_ids=[i for i in page if i != distinct_id], traits=traits, first_seen=min(seen),
        last_seen=max(seen), event_count=int(counts[0][4]) if counts else 0,
        event_counts=[EventCount(name, int(count)) for name, count, *_ in counts],
        events=[PersonEvent(*row) for row in events[:limit]], more_events=len(events) > limit)
