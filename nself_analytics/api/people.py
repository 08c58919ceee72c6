"""GET /users (identified users, searched and filtered by traits, paged), GET /users/{id} (one person), and the
explicit identity operations POST /persons/merge and POST /persons/split.

Token only; the request's account. ``trait.<key>=<value>`` filters keep users whose trait
``key`` has that text value (at most ``MAX_TRAIT_FILTERS``). Pages: ``limit`` and ``offset``.
Merge and split answer 404 for an id never seen, 409 past ANALYTICS_MAX_IDS_PER_PERSON, 422 for a merge of an
id with itself; a merge of two ids of one person and a split of an id without others change nothing (200).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from aiohttp import web

from ..store import identity, people
from ..store.people import EventCount, PersonEvent, User
from ..web import params
from ..web.appkeys import SETTINGS
from ..web.errors import ApiError
from ..web.pools import reading, writing
from ..web.read_params import Name
from ..web.routing import TOKEN, Route

__all__ = ["MAX_OFFSET", "MAX_TRAIT_FILTERS", "ROUTES"]


MAX_TRAIT_FILTERS = 10
MAX_OFFSET = 100_000
MAX_VALUE = 1000


def _traits(query: web.Request) -> dict[str, str]:
    filters: dict[str, str] = {}
    for name, value in query.query.items():
        if not name.startswith("trait."):
            continue
        key = params.event_name(name[len("trait."):], "trait key")
        if len(value) > MAX_VALUE or "\x00" in value:
            raise ApiError(400, f"trait.{key} must be at most {MAX_VALUE} characters, without NUL")
        filters[key] = value
    if len(filters) > MAX_TRAIT_FILTERS:
        raise ApiError(400, f"At most {MAX_TRAIT_FILTERS} trait filters")
    return filters


Limit = Annotated[int, msgspec.Meta(ge=1, le=200)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET)]


class UsersParams(msgspec.Struct, kw_only=True):
    search: Annotated[Name, msgspec.Meta(description="Text in the user id or any trait (any case)")] | None = None
    limit: Annotated[Limit, msgspec.Meta(description="Users per page")] = 50
    offset: Annotated[Offset, msgspec.Meta(description="Users to skip")] = 0


class PersonParams(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(max_length=params.MAX_NAME_LENGTH, description=(
        "Any distinct id of the person: a user id or an anonymous id"))]
    limit: Annotated[Limit, msgspec.Meta(description="Events per page")] = 50
    offset: Annotated[Offset, msgspec.Meta(description="Events to skip")] = 0
    # the person's ids are paged too (a person holds at most ANALYTICS_MAX_IDS_PER_PERSON ids; older data more)
    ids_limit: Annotated[int, msgspec.Meta(ge=1, le=1000, description="The person's ids per page")] = 100
    ids_offset: Annotated[Offset, msgspec.Meta(description="The person's ids to skip")] = 0

    MESSAGES: ClassVar[dict[str, str]] = {"id:length": f"user id is longer than {params.MAX_NAME_LENGTH} characters"}


class UserList(msgspec.Struct, frozen=True):
    status: Literal["success"]
    limit: int
    offset: int
    has_more: bool
    data: list[User]


class PersonAnswer(msgspec.Struct, frozen=True):
    status: Literal["success"]
    limit: int
    offset: int
    id: str
    person_id: str | None
    distinct_ids: Annotated[list[str], msgspec.Meta(
        description="a page of the person's ids (ids_limit from ids_offset, in id order)")]
    distinct_id_count: Annotated[int, msgspec.Meta(description="how many ids the person has")]
    more_ids: Annotated[bool, msgspec.Meta(description="whether ids follow this page")]
    user_ids: Annotated[list[str], msgspec.Meta(description="the identified ones")]
    linked_ids: Annotated[list[str], msgspec.Meta(
        description="the person's other ids (anonymous ids, aliases)")]
    traits: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    event_count: int
    event_counts: Annotated[list[EventCount], msgspec.Meta(description="the 50 most frequent event names")]
    events: list[PersonEvent]
    more_events: bool


async def list_users(request: web.Request, query: UsersParams) -> UserList:
    """`trait.<key>=<value>` (repeatable for other keys, at most 10) keeps users whose trait has that text
    value."""
    account = params.account(request)
    traits = _traits(request)
    async with reading(request) as conn:
        users, more = await people.list_users(conn, account=account, search=query.search, traits=traits,
                                              limit=query.limit, offset=query.offset)
    return UserList("success", query.limit, query.offset, more, users)


async def get_user(request: web.Request, query: PersonParams) -> PersonAnswer:
    """Any distinct id (user id or anonymous id) opens the person it belongs to (identify and alias links)."""
    account = params.account(request)
    distinct_id = params.event_name(query.id, "user id")
    async with reading(request) as conn:
        found = await people.person(conn, account=account, distinct_id=distinct_id, limit=query.limit,
                                    offset=query.offset, ids_limit=query.ids_limit, ids_offset=query.ids_offset)
    if found is None:
        raise ApiError(404, "User not found")
    return PersonAnswer("success", query.limit, query.offset, *msgspec.structs.astuple(found))


def _answer(change: identity.PersonChange, max_ids: int) -> web.Response:
    if change.outcome == "unknown":
        raise ApiError(404, f"Distinct id {change.distinct_id!r} was never seen in this account")
    if change.outcome == "cap":
        raise ApiError(409, f"The person would hold more than ANALYTICS_MAX_IDS_PER_PERSON ({max_ids}) ids")
    return web.json_response({"status": "success", "outcome": change.outcome, "person_id": change.person_id,
                              "moved": change.moved, "size": change.size})


async def merge(request: web.Request) -> web.Response:
    account = params.account(request)
    body = await params.json_body(request)
    into = params.event_name(body.get("into"), "into")
    from_ = params.event_name(body.get("from"), "from")
    if into == from_:
        raise ApiError(422, "into and from are the same distinct id")
    max_ids = request.config_dict[SETTINGS].max_ids_per_person
    async with writing(request) as conn:
        change = await identity.merge_persons(conn, account=account, into=into, from_=from_, max_ids=max_ids)
    return _answer(change, max_ids)


async def split(request: web.Request) -> web.Response:
    account = params.account(request)
    distinct_id = params.event_name((await params.json_body(request)).get("distinct_id"), "distinct_id")
    max_ids = request.config_dict[SETTINGS].max_ids_per_person
    async with writing(request) as conn:
        change = await identity.split_person(conn, account=account, distinct_id=distinct_id, max_ids=max_ids)
    return _answer(change, max_ids)

ROUTES = [
    Route("GET", "/users", list_users, TOKEN, name="people.list", tags=("People",), op_id="users_list",
          summary="Identified users, most recently seen first", params=UsersParams, answer=UserList),
    Route("GET", r"/users/{id:[^/]+}", get_user, TOKEN, name="people.get", tags=("People",), op_id="users_get",
          summary="A person: ids, traits, first/last seen, event counts, recent events newest first",
          params=PersonParams, answer=PersonAnswer),
    Route("POST", "/persons/merge", merge, TOKEN, name="people.merge", tags=("People",), op_id="persons_merge",
          summary="Merge the whole person of `from` into the person of `into`"),
    Route("POST", "/persons/split", split, TOKEN, name="people.split", tags=("People",), op_id="persons_split",
          summary="Split a distinct id off its person (undo its link)"),
]
