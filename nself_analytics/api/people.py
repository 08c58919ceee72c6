"""GET /users (identified users, searched and filtered by traits, paged) and GET /users/{id} (one person).

Token only (api/routes.py); the request's account. ``trait.<key>=<value>`` filters keep users whose trait
``key`` has that text value (at most ``MAX_TRAIT_FILTERS``). Pages: ``limit`` and ``offset``.
"""

from __future__ import annotations

from aiohttp import web

from ..store import people
from ..web import params
from ..web.errors import ApiError
from ..web.pools import reading

__all__ = ["MAX_OFFSET", "MAX_TRAIT_FILTERS", "routes"]

routes = web.RouteTableDef()

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


@routes.get("/users", name="people.list")
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


@routes.get(r"/users/{id:[^/]+}", name="people.get")
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
