"""The MCP server over Streamable HTTP: ``POST /analytics/mcp`` (``DELETE``: 405; ``GET`` with
``Accept: text/event-stream``: 405, in api/docs.py, whose GET /mcp is the set-up page).

The server (integrations/mcp_http.py, the SDK's stateless JSON-response mode) is started by the host and kept as
``MCP_APP``; without the mcp extra there is none and the route answers 501 naming the install command. The
request's credential is checked by the route table (``SITE``: the secret token, an account-bound token, or a site
token with ``?site=`` its site), its Origin here, and its tools read the HTTP API in-process with that same
credential (:func:`_in_process`), so a token's tools read what the token reads, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
import orjson
from aiohttp import web
from yarl import URL

from ..web.appkeys import MCP_APP, SETTINGS
from ..web.asgi import SCOPE_FETCH, call_asgi
from ..web.body import MAX_BODY_BYTES
from ..web.errors import ApiError
from ..web.routing import SITE, Route

__all__ = ["INSTALL", "ROUTES", "check_origin"]

INSTALL = "pip install -e '.[mcp]' from the checkout (or hooks/install --extras mcp; the package is not on PyPI)"
# headers of the MCP request that its tools' reads carry (the credential, the account, the request id)
_FORWARDED = ("Authorization", "X-Source-Account-Id", "X-Request-Id")


class McpParams(msgspec.Struct, kw_only=True):
    site: Annotated[str, msgspec.Meta(max_length=253, description=(
        "A site token's site (a site token's tools read only that site's web stats)"))] | None = None


class McpError(msgspec.Struct):
    code: int
    message: str
    data: Any = msgspec.UNSET


class McpAnswer(msgspec.Struct, omit_defaults=True):
    """One JSON-RPC 2.0 answer (the SDK's stateless JSON-response mode; a notification gets 202, no body)."""

    jsonrpc: str
    id: int | str | None
    result: Any = msgspec.UNSET
    error: McpError | msgspec.UnsetType = msgspec.UNSET


def check_origin(request: web.Request) -> None:
    """403 for a browser's Origin that is neither this service's own nor one of ANALYTICS_MCP_ORIGINS (the MCP
    specification's guard against DNS rebinding); a request without Origin (not a browser's) passes."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    own = f"{request.scheme}://{request.host}".lower()
    if origin.strip().lower().rstrip("/") in (own, *request.app[SETTINGS].mcp_origins):
        return
    raise ApiError(403, f"Origin {origin[:100]!r} may not call the MCP server: only this service's own origin or "
                        "one listed in ANALYTICS_MCP_ORIGINS")


def _in_process(request: web.Request) -> Any:
    """The tools' reads of this request: a GET of the HTTP API through this app's own router and middleware (access,
    errors), with the request's credential; no socket, no loopback. Called before the body is read (aiohttp clones
    only an unread request: the template is cloned once more per read)."""
    app = request.app
    mount = request.path.removesuffix("/mcp")
    headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
    headers["Accept"] = "application/json"
    template = request.clone(method="GET", headers=headers)

    async def fetch(path: str, query: Mapping[str, Any] | None) -> tuple[int, Any]:
        values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (query or {}).items()}
        url = URL.build(path=mount + path, encoded=False).with_query(values)
        sub = template.clone(rel_url=url)
        try:
            response = await app._handle(sub)
        except web.HTTPException as exc:
            return exc.status, None
        body = response.body if isinstance(response, web.Response) else None
        try:
            return response.status, orjson.loads(body) if isinstance(body, bytes) and body else None
        except orjson.JSONDecodeError:
            return response.status, None

    return fetch


async def serve(request: web.Request, params: McpParams) -> web.StreamResponse:
    """One JSON-RPC message of the MCP Streamable HTTP transport (stateless, JSON answers): `initialize`,
    `tools/list`, `tools/call` with the tools of `nself-analytics mcp`. Send `Content-Type: application/json` and
    `Accept: application/json, text/event-stream`; a browser's Origin must be this service's or one of
    ANALYTICS_MCP_ORIGINS (else 403). A body that is not JSON is a JSON-RPC parse error (400). Without the mcp
    extra: 501."""
    check_origin(request)
    app = request.app.get(MCP_APP)
    if app is None:
        raise ApiError(501, f"The MCP server is not installed on this service: {INSTALL}, then restart it")
    if request.content_type != "application/json":
        raise ApiError(415, "Send the JSON-RPC message with Content-Type: application/json")
    fetch = _in_process(request)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"Request body exceeds {MAX_BODY_BYTES // 1024} KB") from None
    return await call_asgi(app, request, body, {SCOPE_FETCH: fetch})


async def end_session(request: web.Request, params: McpParams) -> web.StreamResponse:
    """The server keeps no session (stateless mode): there is none to end, 405."""
    check_origin(request)
    raise ApiError(405, "This MCP server keeps no session: there is none to end", headers={"Allow": "GET, POST"})


ROUTES = [
    Route("POST", "/mcp", serve, SITE, name="mcp.http", tags=("Service",), op_id="mcp_http", params=McpParams,
          answer=McpAnswer, summary="The MCP server over Streamable HTTP (the tools of nself-analytics mcp)"),
    Route("DELETE", "/mcp", end_session, SITE, name="mcp.delete", tags=("Service",), op_id="mcp_delete",
          params=McpParams, summary="MCP session end: none to end (405)"),
]
