"""Documentation: GET /openapi.json, /docs (the explorer), /mcp (client set-up) and /static/{path}.

Everything is served from the package's own files: an instance may have no Internet access.
URLs in the documents are this instance's, derived from the request's host and scheme (X-Forwarded-Host/-Proto
only from a trusted proxy: web/forwarded.py).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from ..web.errors import ApiError
from ..web.openapi import document
from ..web.routing import PUBLIC, ROUTE_TABLE, Route

__all__ = ["PAGE_HEADERS", "ROUTES", "STATIC_DIR", "base_url", "mcp_clients"]


STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The pages run only our own scripts and talk only to this instance; nobody may frame them.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
STATIC_CACHE = "public, max-age=3600"
MCP_BRIDGE = "@ivotoby/openapi-mcp-server"
TOKEN_PLACEHOLDER = "YOUR_SECRET_TOKEN"
_HOST = re.compile(r"^(?:[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$")
_STATIC_PATH = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")


def _mount(request: web.Request, suffix: str) -> str:
    path = request.path
    return path[: -len(suffix)] if path.endswith(suffix) else ""


def base_url(request: web.Request, suffix: str) -> str:
    """This instance's analytics URL as its clients see it (behind a trusted proxy: its X-Forwarded-Proto/Host)."""
    proto = request.scheme
    host = request.host
    if proto not in ("http", "https"):
        proto = "http"
    if not _HOST.match(host):
        host = "localhost"
    return f"{proto}://{host}{_mount(request, suffix)}"


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this instance."""
    base = base_url(request, "/openapi.json")
    table: tuple[Route, ...] = request.app[ROUTE_TABLE]
    body = document(base, table)
    return web.json_response(body, headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"})


def _static_page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name, headers=PAGE_HEADERS)


async def explorer(request: web.Request) -> web.StreamResponse:
    """The interactive API explorer (Swagger UI, vendored under static/vendor/)."""
    return _static_page("docs.html")


async def static(request: web.Request) -> web.StreamResponse:
    """A file of static/ (no listing, no dot files, nothing outside it)."""
    relative = request.match_info["path"]
    target = (STATIC_DIR / relative).resolve()
    if not _STATIC_PATH.match(relative) or not target.is_relative_to(STATIC_DIR) or not target.is_file():
        raise ApiError(404, "Not found")
    return web.FileResponse(target, headers={"Cache-Control": STATIC_CACHE, "X-Content-Type-Options": "nosniff"})


def mcp_clients(base: str) -> dict[str, Any]:
    """Ready-to-paste configurations of MCP and OpenAPI clients for the instance at ``base``: the MCP server over
    HTTP (``POST /mcp``, inside this instance) first, then over stdio (``nself-analytics mcp``), the OpenAPI-to-MCP
    bridge and ChatGPT actions after."""
    spec = f"{base}/openapi.json"
    native = {"command": "nself-analytics", "args": ["mcp"],
              "env": {"ANALYTICS_URL": base, "ANALYTICS_API_TOKEN": TOKEN_PLACEHOLDER}}
    mcp_json = {"mcpServers": {"nself-analytics": native}}
    endpoint = f"{base}/mcp"
    remote = {"type": "http", "url": endpoint, "headers": {"Authorization": f"Bearer {TOKEN_PLACEHOLDER}"}}
    bridge = {"command": "npx", "args": ["-y", MCP_BRIDGE], "env": {
        "API_BASE_URL": base, "OPENAPI_SPEC_PATH": spec, "API_HEADERS": f"Authorization:Bearer {TOKEN_PLACEHOLDER}"}}
    return {
        "http": {
            "name": "Over HTTP, nothing to install (Cursor, Windsurf, VS Code: clients of Streamable HTTP)",
            "file": "the client's MCP configuration file (e.g. ~/.cursor/mcp.json)",
            "steps": [f"The MCP server runs inside this instance at {endpoint} (POST, Streamable HTTP, stateless).",
                      "A site token reads only its site's web stats: add ?site=<its site> to the URL."],
            "config": {"mcpServers": {"nself-analytics": remote}}},
        "claude_code_http": {
            "name": "Claude Code, over HTTP", "command": (
                f"claude mcp add --transport http nself-analytics {endpoint} "
                f'--header "Authorization: Bearer {TOKEN_PLACEHOLDER}"')},
        "install": {"name": "Install the MCP server", "command": "pip install -e '.[mcp]'",
                    "steps": ["On the machine running the AI client (Python 3.11+); it talks to this instance "
                              "over HTTP with the secret token.",
                              "The package is not on PyPI: run the command in a checkout of nself-analytics, or "
                              "install the built wheel with its extra: pip install "
                              "'dist/nself_analytics-<version>-py3-none-any.whl[mcp]' (in a checkout, "
                              "hooks/install --extras mcp does it in the plugin's virtualenv)."]},
        "claude_desktop": {
            "name": "Claude Desktop", "file": "claude_desktop_config.json (Settings > Developer > Edit Config)",
            "config": mcp_json},
        "claude_code": {
            "name": "Claude Code", "command": (
                f"claude mcp add nself-analytics -e ANALYTICS_URL={base} "
                f"-e ANALYTICS_API_TOKEN={TOKEN_PLACEHOLDER} -- nself-analytics mcp")},
        "cursor": {"name": "Cursor", "file": "~/.cursor/mcp.json (or .cursor/mcp.json in a project)",
                   "config": mcp_json},
        "windsurf": {"name": "Windsurf", "file": "~/.codeium/windsurf/mcp_config.json", "config": mcp_json},
        "openapi_bridge": {
            "name": "Fallback: an OpenAPI-to-MCP bridge (Node.js 18+, no Python)",
            "file": "the same files as above, this server entry instead",
            "steps": ["Every API operation becomes a tool (more tools, less guidance than the native server)."],
            "config": {"mcpServers": {"nself-analytics": bridge}}},
        "chatgpt_actions": {
            "name": "ChatGPT (custom GPT actions)",
            "steps": [
                "Create a GPT, open Configure > Actions > Create new action.",
                f"Import from URL: {spec} (the instance must be reachable over public HTTPS).",
                "Authentication: API Key, Auth Type Bearer, the secret token as the key.",
            ],
            "openapi_url": spec, "auth": {"type": "bearer"}},
    }


async def mcp(request: web.Request) -> web.Response:
    """How to connect AI clients to this instance (HTML; JSON with Accept: application/json). An MCP client's GET
    (Accept: text/event-stream, no HTML) asks for a server stream, which the stateless MCP server over HTTP
    (POST /mcp) does not open: 405, as the transport specifies."""
    accept = request.headers.get("Accept", "")
    if "text/event-stream" in accept and "text/html" not in accept:
        raise ApiError(405, "This MCP server answers each POST with JSON and opens no event stream",
                       headers={"Allow": "GET, POST"})
    base = base_url(request, "/mcp")
    clients = mcp_clients(base)
    if "application/json" in accept and "text/html" not in accept:
        return web.json_response({"base_url": base, "openapi_url": f"{base}/openapi.json", "clients": clients,
                                  "token": f"replace {TOKEN_PLACEHOLDER} with the secret token"})
    template = (STATIC_DIR / "mcp.html").read_text(encoding="utf-8")
    blocks = []
    for key, client in clients.items():
        text = json.dumps(client["config"], indent=2) if "config" in client else client.get("command", "")
        steps = "".join(f"<li>{html.escape(step)}</li>" for step in client.get("steps", []))
        where = f'<p class="where">{html.escape(client["file"])}</p>' if "file" in client else ""
        code = f'<pre id="cfg-{key}"><code>{html.escape(text)}</code></pre>' if text else ""
        copy = f'<button type="button" data-copy="cfg-{key}">Copy</button>' if text else ""
        blocks.append(f'<section id="{key}"><h2>{html.escape(client["name"])}</h2>{where}'
                      f'{f"<ol>{steps}</ol>" if steps else ""}{code}{copy}</section>')
    page = (template.replace("{{BASE}}", html.escape(base)).replace("{{TOKEN}}", TOKEN_PLACEHOLDER)
            .replace("{{CLIENTS}}", "\n".join(blocks)))
    return web.Response(text=page, content_type="text/html", headers=PAGE_HEADERS)


ROUTES = [
    Route("GET", "/openapi.json", openapi, PUBLIC, name="docs.openapi", tags=("Service",), op_id="openapi",
          summary="This document"),
    Route("GET", "/docs", explorer, PUBLIC, name="docs.explorer", tags=("Service",), op_id="docs",
          summary="Interactive API explorer"),
    Route("GET", "/static/{path:.+}", static, PUBLIC, name="static", tags=("Service",),
          summary="Files of the dashboard and the explorer"),
    Route("GET", "/mcp", mcp, PUBLIC, name="docs.mcp", tags=("Service",), op_id="mcp",
          summary="How to connect AI clients: the MCP server (nself-analytics mcp), an OpenAPI bridge, ChatGPT"),
]
