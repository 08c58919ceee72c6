"""GET /users (identified users, searched and filtered by traits, paged), GET /users/{id} (one person), and the
explicit identity operations POST /persons/merge and POST /persons/split.

Token only; the request's account. ``trait.<key>=<value>`` filters keep users whose trait
``key`` has that text value (at most ``MAX_TRAIT_FILTERS``). Pages: ``limit`` and ``offset``.
Merge and split answer 404 for an id never seen, 409 past ANALYTICS_MAX_IDS_PER_PERSON, 422 for a merge of an
id with itself; a merge of two ids of one person and a split of an id without others change nothing (200).
"""

from __future__ import annotations

from aiohttp import web

from ..store import identity, people
from ..web import params
from ..web.appkeys import SETTINGS
from ..web.errors import ApiError
from ..web.pools import reading, writing
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


async def list_users(request: web.Request) -> web.Response:
    account = params.account(request)
    query = request.query
    search = params.optional_text(query, "search")
    traits = _traits(request)
    limit = params.integer(query, "limit", 50, 1, 200)
    offset = params.integer(query, "offset", 0, 0, MAX_OFFSET)
    async with reading(request) as conn:
        users, more = await people.list_users(conn, account=account, search=search, traits=traits, limit=limit,
                                              offset=offset)
    return web.json_response({"status": "success", "limit": limit, "offset": offset, "has_more": more,
                              "data": users})


async def get_user(request: web.Request) -> web.Response:
    account = params.account(request)
    distinct_id = params.event_name(request.match_info["id"], "user id")
    limit = params.integer(request.query, "limit", 50, 1, 200)
    offset = params.integer(request.query, "offset", 0, 0, MAX_OFFSET)
    # the person's ids are paged too (a person holds at most ANALYTICS_MAX_IDS_PER_PERSON ids; older data more)
    ids_limit = params.integer(request.query, "ids_limit", 100, 1, 1000)
    ids_offset = params.integer(request.query, "ids_offset", 0, 0, MAX_OFFSET)
    async with reading(request) as conn:
        found = await people.person(conn, account=account, distinct_id=distinct_id, limit=limit, offset=offset,
                                    ids_limit=ids_limit, ids_offset=ids_offset)
    if found is None:
        raise ApiError(404, "User not found")
    return web.json_response({"status": "success", "limit": limit, "offset": offset, **found})


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
          summary="Identified users, most recently seen first"),
    Route("GET", r"/users/{id:[^/]+}", get_user, TOKEN, name="people.get", tags=("People",), op_id="users_get",
          summary="A person: ids, traits, first/last seen, event counts, recent events newest first"),
    Route("POST", "/persons/merge", merge, TOKEN, name="people.merge", tags=("People",), op_id="persons_merge",
          summary="Merge the whole person of `from` into the person of `into`"),
    Route("POST", "/persons/split", split, TOKEN, name="people.split", tags=("People",), op_id="persons_split",
          summary="Split a distinct id off its person (undo its link)"),
]
