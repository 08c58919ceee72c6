"""The account's event names, administered with the secret token (README "Security"): GET /event-names (each
name's first source, first/last seen, stored events, dropped messages, blocked or being deleted), POST and DELETE
/event-names/{name}/block, and DELETE /event-names/{name} (frees the name at once; its stored events are deleted
in bounded batches by the leader's ``delete_names`` job, the name blocked meanwhile)."""

from __future__ import annotations

from aiohttp import web

from ..ingest import name_admin
from ..store import event_names as stored
from ..web import params
from ..web.appkeys import REDIS
from ..web.errors import ApiError
from ..web.pools import reading, writing
from ..web.routing import TOKEN, Route

__all__ = ["ROUTES"]

NAME = r"/event-names/{name:[^/]+}"


async def list_names(request: web.Request) -> web.Response:
    account = params.account(request)
    limit = params.integer(request.query, "limit", 100, 1, 1000)
    offset = params.integer(request.query, "offset", 0, 0, 1_000_000)
    found = await name_admin.names(request.config_dict[REDIS], account)
    page = found[offset:offset + limit]
    async with reading(request) as conn:
        counts = await stored.volumes(conn, account, [n.name for n in page])
    data = [{"name": n.name, "first_source": n.first_source, "first_seen": n.first_seen, "last_seen": n.last_seen,
             "volume": counts.get(n.name, 0), "dropped": n.dropped, "blocked": n.blocked, "deleting": n.deleting}
            for n in page]
    return web.json_response({"status": "success", "limit": limit, "offset": offset, "total": len(found),
                              "data": data})


async def block(request: web.Request) -> web.Response:
    account = params.account(request)
    name = params.event_name(request.match_info["name"], "name")
    await name_admin.block(request.config_dict[REDIS], account, name)
    return web.json_response({"status": "success", "name": name, "blocked": True})


async def unblock(request: web.Request) -> web.Response:
    account = params.account(request)
    name = params.event_name(request.match_info["name"], "name")
    if not await name_admin.unblock(request.config_dict[REDIS], account, name):
        raise ApiError(404, "This name is not blocked (or its deletion still runs)")
    return web.json_response({"status": "success", "name": name, "blocked": False})


async def delete(request: web.Request) -> web.Response:
    account = params.account(request)
    name = params.event_name(request.match_info["name"], "name")
    client = request.config_dict[REDIS]
    known = any(n.name == name for n in await name_admin.names(client, account))
    if not known:
        async with writing(request) as conn:
            known = await stored.has_events(conn, account, name)
    if not known:
        raise ApiError(404, "Event name not found")
    await name_admin.request_deletion(client, account, name)
    return web.json_response({"status": "success", "name": name, "deleting": True}, status=202)


_TAGS = ("Event names",)
ROUTES = [
    Route("GET", "/event-names", list_names, TOKEN, name="event_names.list", tags=_TAGS,
          summary="The account's event names: first source, first/last seen, volume, dropped"),
    Route("POST", NAME + "/block", block, TOKEN, name="event_names.block", tags=_TAGS,
          summary="Block a name: new events with it are dropped (and counted)"),
    Route("DELETE", NAME + "/block", unblock, TOKEN, name="event_names.unblock", tags=_TAGS,
          summary="Lift a block"),
    Route("DELETE", NAME, delete, TOKEN, name="event_names.delete", tags=_TAGS,
          summary="Delete a name and its stored events (frees ANALYTICS_MAX_EVENT_NAMES at once)"),
]
