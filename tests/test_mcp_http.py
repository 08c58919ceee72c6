"""The MCP server over Streamable HTTP (``POST /analytics/mcp``): the SDK's own Streamable HTTP client lists and
calls the tools of ``nself-analytics mcp`` against the live service with answers equal to the HTTP API's; the
credential rule of the route table (a site token's tools read its site only), the Origin check, bad bodies, and
clients that stall or vanish, which must not keep the service from answering everyone else."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from nself_analytics.config import Settings
from nself_analytics.integrations.mcp_server import TOOLS

from .conftest import SECRET, WRITE_KEY, LiveService
from .integrations_support import DAY
from .test_mcp import each_tool_answers_as_the_http_api, structured

SITE_TOKEN = "tok_site_example_com_0123"
BOUND_TOKEN = "tok_bound_to_tenant_a_0123"
MCP = "/analytics/mcp"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def http_client(url: str, token: str, http: httpx2.AsyncClient) -> Client:
    return Client(streamable_http_client(url, http_client=http))


def _auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


async def test_the_sdk_client_lists_and_calls_the_tools_as_the_http_api(live_service: LiveService,
                                                                       product_data: str) -> None:
    url = f"{live_service.base_url}{MCP}"
    async with httpx2.AsyncClient(headers=_auth(live_service.secret)) as http, \
            Client(streamable_http_client(url, http_client=http)) as mcp:
        tools = (await mcp.list_tools()).tools
        assert {t.name for t in tools} == set(TOOLS)
        await each_tool_answers_as_the_http_api(mcp, live_service, product_data)
    async with httpx2.AsyncClient(headers=_auth("wrong-token-0123456789")) as http:
        with pytest.raises(BaseExceptionGroup) as caught:  # the SDK's wrapping of the 401
            async with Client(streamable_http_client(url, http_client=http)) as mcp:
                await mcp.list_tools()
        assert "Server returned an error response" in repr(caught.value)
        refused = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=HEADERS)
        assert refused.status_code == 401 and refused.json()["status"] == "error"


@pytest.fixture
def mcp_settings(settings: Settings) -> Settings:
    return settings.with_(secret_token=f"{SECRET},tenant_a={BOUND_TOKEN},site:example.com={SITE_TOKEN}",
                          mcp_origins=("https://agent.example.org",))


async def rpc(client: Any, method: str, params: dict[str, Any] | None = None, *, token: str | None = SECRET,
              path: str = MCP, **headers: str) -> tuple[int, Any]:
    """One JSON-RPC request to the MCP endpoint: (HTTP status, the JSON answer or the text)."""
    sent = {**HEADERS, **(_auth(token) if token else {}), **headers}
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    response = await client.post(path, data=json.dumps(message), headers=sent)
    text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def _call(client: Any, tool: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    status, body = await rpc(client, "tools/call", {"name": tool, "arguments": arguments}, **kwargs)
    assert status == 200, body
    return dict(body["result"])


async def test_credentials_follow_the_route_table(make_client: Any, mcp_settings: Settings) -> None:
    client = await make_client(mcp_settings)
    status, body = await rpc(client, "tools/list", token=None)
    assert status == 401 and body["status"] == "error" and "secret token" in body["message"]
    assert (await rpc(client, "tools/list", token="wrong-credential-0123456789"))[0] == 401
    # a write key opens no read: refused as on every read route of the table (401, as an unknown token)
    status, body = await rpc(client, "tools/list", token=WRITE_KEY)
    assert status == 401 and body["status"] == "error"
    assert (await rpc(client, "tools/list", token=SITE_TOKEN))[0] == 403  # a site token names its site
    assert (await rpc(client, "tools/list", token=SITE_TOKEN, path=f"{MCP}?site=other.example"))[0] == 403
    assert (await rpc(client, "tools/list", token=BOUND_TOKEN, **{"X-Source-Account-Id": "tenant_b"}))[0] == 403
    status, body = await rpc(client, "tools/list")
    assert status == 200 and {t["name"] for t in body["result"]["tools"]} == set(TOOLS)


async def test_a_token_s_tools_read_what_the_token_reads(make_client: Any, mcp_settings: Settings) -> None:
    client = await make_client(mcp_settings)
    site_path = f"{MCP}?site=example.com"
    own = await _call(client, "web_stats", {"site": "example.com", **DAY}, token=SITE_TOKEN, path=site_path)
    assert not own.get("isError") and own["structuredContent"]["data"]["pageviews"] == 0
    other = await _call(client, "web_stats", {"site": "other.example"}, token=SITE_TOKEN, path=site_path)
    assert other["isError"] and "403" in other["content"][0]["text"] and "site=example.com" in other["content"][0][
        "text"]
    sites = await _call(client, "list_sites", {}, token=SITE_TOKEN, path=site_path)
    assert sites["isError"] and "web stats (/api/*) of example.com" in sites["content"][0]["text"]
    # the secret token reads everything, and the answer is the HTTP API's
    full = await _call(client, "list_events", DAY)
    api = await client.get("/analytics/events", params={**DAY, "limit": "100"}, headers=_auth(SECRET))
    assert full["structuredContent"] == await api.json()
    bound = await _call(client, "list_events", DAY, token=BOUND_TOKEN)
    assert not bound.get("isError") and bound["structuredContent"]["data"] == []


async def test_a_foreign_browser_origin_is_refused(make_client: Any, mcp_settings: Settings) -> None:
    client = await make_client(mcp_settings)
    status, body = await rpc(client, "tools/list", Origin="https://evil.example")
    assert status == 403 and "ANALYTICS_MCP_ORIGINS" in body["message"]
    assert (await rpc(client, "tools/list", Origin="null"))[0] == 403
    own = str(client.make_url("")).rstrip("/")
    assert (await rpc(client, "tools/list", Origin=own))[0] == 200
    assert (await rpc(client, "tools/list", Origin="https://agent.example.org"))[0] == 200


async def test_bad_bodies_and_unsupported_modes(make_client: Any, mcp_settings: Settings) -> None:
    client = await make_client(mcp_settings)
    response = await client.post(MCP, data=b"{not json", headers={**HEADERS, **_auth(SECRET)})
    body = await response.json()
    assert response.status == 400 and body["error"]["code"] == -32700 and body["id"] is None
    response = await client.post(MCP, data=b"[]", headers={**HEADERS, **_auth(SECRET)})
    assert response.status == 400 and "error" in await response.json()
    response = await client.post(MCP, data=b"{}", headers={**_auth(SECRET), "Content-Type": "text/plain"})
    assert response.status == 415 and (await response.json())["status"] == "error"
    response = await client.post(MCP, data=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": "'
                                 + b"a" * 600_000 + b'"}}', headers={**HEADERS, **_auth(SECRET)})
    assert response.status == 413 and "500 KB" in (await response.json())["message"]
    # stateless: no server stream to open, no session to end (405, as the transport allows); the page stays
    response = await client.get(MCP, headers={**_auth(SECRET), "Accept": "text/event-stream"})
    assert response.status == 405 and "POST" in response.headers["Allow"]
    response = await client.delete(MCP, headers=_auth(SECRET))
    assert response.status == 405 and (await response.json())["status"] == "error"
    response = await client.get(MCP, headers={"Accept": "text/html"})
    assert response.status == 200 and "<html" in await response.text()
    # a notification is accepted without an answer
    response = await client.post(MCP, data=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                                 headers={**HEADERS, **_auth(SECRET)})
    assert response.status == 202


async def _raw(port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    return reader, writer


def _post(body: bytes, length: int | None = None) -> bytes:
    head = (f"POST {MCP} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SECRET}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n")
    return head.encode() + body


async def test_stalled_and_vanished_clients_do_not_block_others(make_client: Any, mcp_settings: Settings) -> None:
    client = await make_client(mcp_settings)
    port = client.server.port
    call = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "list_events", "arguments": DAY}}).encode()
    stalled = []
    # a body that never arrives, answers never read (pipelined), a client gone right after sending
    stalled.append(await _raw(port, _post(call[:20], length=len(call))))
    stalled.append(await _raw(port, _post(call) * 50))
    _, gone = await _raw(port, _post(call))
    gone.transport.abort()

    async def others() -> None:
        health = await client.get("/analytics/health")
        assert health.status == 200
        track = await client.post("/analytics/track", json={"event": "e", "user_id": "u"},
                                  headers=_auth(WRITE_KEY))
        assert track.status == 202
        status, body = await rpc(client, "tools/list")
        assert status == 200 and len(body["result"]["tools"]) == len(TOOLS)

    try:
        await asyncio.wait_for(others(), timeout=60)  # a guard against a hang, not a timing assertion
    finally:
        for _, writer in stalled:
            writer.transport.abort()
    status, body = await rpc(client, "tools/call", {"name": "list_events", "arguments": DAY})
    assert status == 200 and not body["result"].get("isError")


async def test_without_the_mcp_extra_the_route_names_the_install_command(
        make_client: Any, mcp_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nself_analytics.integrations.mcp_http", None)  # import fails as without mcp
    client = await make_client(mcp_settings)
    status, body = await rpc(client, "tools/list")
    assert status == 501 and "pip install -e '.[mcp]'" in body["message"]
    assert (await client.get("/analytics/health")).status == 200


async def test_the_sdk_client_over_the_in_process_app_sees_a_site_token_s_limits(
        make_client: Any, mcp_settings: Settings) -> None:
    client = await make_client(mcp_settings)
    url = str(client.make_url(f"{MCP}?site=example.com"))
    async with httpx2.AsyncClient(headers=_auth(SITE_TOKEN)) as http, \
            Client(streamable_http_client(url, http_client=http)) as mcp:
        summary = await structured(mcp, "web_stats", {"site": "example.com", **DAY})
        assert summary["data"]["pageviews"] == 0
        refused = await mcp.call_tool("list_sites", {})
        assert refused.is_error
