"""The MCP server driven by the MCP SDK's own client over stdio (``nself-analytics mcp`` as a subprocess),
against the live service with known data: every tool is listed with a schema and a description, every
tool's answer is the HTTP API's answer to the same question, and a wrong token is a tool error."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from nself_analytics.integrations.mcp_server import TOOLS

from .conftest import LiveService, free_port
from .integrations_support import DAY, TODAY, api


def server_params(live: LiveService, token: str | None = None, url: str | None = None) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update({"ANALYTICS_URL": url or live.base_url, "ANALYTICS_API_TOKEN": token or live.secret})
    return StdioServerParameters(command=sys.executable, args=["-m", "nself_analytics.host.cli", "mcp"], env=env)


async def structured(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_tools_are_listed_with_schemas_and_descriptions(live_service: LiveService) -> None:
    # the client is entered and left in the test's own task (anyio cancel scopes), not in a fixture
    async with Client(server_params(live_service)) as mcp:
        tools = (await mcp.list_tools()).tools
    assert {t.name for t in tools} == set(TOOLS)
    for tool in tools:
        assert tool.description and "\n" not in tool.description.strip() and len(tool.description) < 200
        assert tool.input_schema["type"] == "object"
    web = next(t for t in tools if t.name == "web_stats").input_schema
    assert web["required"] == ["site"] and "pages" in json.dumps(web["properties"]["report"])
    funnel = next(t for t in tools if t.name == "funnel").input_schema
    assert "steps" in funnel["properties"] and "funnel_id" in funnel["properties"]


async def test_each_tool_answers_as_the_http_api(live_service: LiveService, product_data: str) -> None:
    async with Client(server_params(live_service)) as mcp:
        await each_tool_answers_as_the_http_api(mcp, live_service, product_data)


async def each_tool_answers_as_the_http_api(mcp: Client, live_service: LiveService, site: str) -> None:
    sites = await structured(mcp, "list_sites", DAY)
    assert sites == api(live_service, "/sites", **DAY, limit=100)
    assert {"site": site, "pageviews": 6} .items() <= next(s for s in sites["data"] if s["site"] == site).items()
    summary = await structured(mcp, "web_stats", {"site": site, **DAY})
    start = int(datetime.fromisoformat(TODAY).replace(tzinfo=UTC).timestamp())
    assert summary == api(live_service, "/api/pageviews", site=site, start=start, end=start + 86400)
    assert summary["data"]["pageviews"] == 6 and summary["data"]["sessions"] == 3
    for report in ("pages", "referrers", "countries", "devices", "browsers", "languages", "timeseries"):
        got = await structured(mcp, "web_stats", {"site": site, "report": report, **DAY, "limit": 5})
        assert got == api(live_service, f"/api/{report}", site=site, start=start, end=start + 86400, limit=5), report
    pages = await structured(mcp, "web_stats", {"site": site, "report": "pages", **DAY})
    assert pages["data"][0] == {"path": "/pricing", "pageviews": 3, "sessions": 1}
    events = await structured(mcp, "list_events", {**DAY, "search": "mcp_"})
    assert events == api(live_service, "/events", **DAY, search="mcp_", limit=100)
    props = await structured(mcp, "event_properties", {"name": "mcp_signup", **DAY})
    assert props == api(live_service, "/events/mcp_signup/properties", **DAY, values=10, limit=100)
    assert "plan" in json.dumps(props["data"])
    funnel = await structured(mcp, "funnel", {"steps": ["mcp_signup", "mcp_purchase"], **DAY})
    assert funnel == api(live_service, "/funnel", steps="mcp_signup,mcp_purchase", **DAY)
    assert [s["users"] for s in funnel["steps"]] == [3, 2]
    retention = await structured(mcp, "retention", {**DAY, "period": "day", "periods": 2,
                                                    "start_event": "mcp_signup"})
    assert retention == api(live_service, "/retention", **DAY, period="day", periods=2, start_event="mcp_signup")
    metrics = await structured(mcp, "metrics", {**DAY, "user_id": "m1"})
    assert metrics == api(live_service, "/metrics", **DAY, group_by="day", user_id="m1")
    assert metrics["data"][0]["counts"]["mcp_purchase"] == 1
    sessions = await structured(mcp, "sessions", {**DAY})
    assert sessions == api(live_service, "/sessions", **DAY, group_by="day", start_event="play", stop_event="stop")
    counters = await structured(mcp, "counters", {"event": "mcp_signup"})
    expected = api(live_service, "/counters/mcp_signup")
    # minute, hour and day count the current UTC period, which may roll over between the two calls (seen)
    assert counters["counts"].keys() == expected["counts"].keys()
    assert counters["counts"]["total"] == expected["counts"]["total"] >= 3
    assert {**counters, "counts": None} == {**expected, "counts": None}
    trends = await structured(mcp, "trends", {"events": ["mcp_signup"], **DAY})
    assert trends == api(live_service, "/trends", events="mcp_signup", **DAY, interval="day", measure="count")
    # tz: a dated tool reads the days of its zone, as the API does (Kathmandu: UTC+5:45)
    kathmandu = {**DAY, "tz": "Asia/Kathmandu"}
    assert await structured(mcp, "metrics", kathmandu) == api(live_service, "/metrics", **kathmandu, group_by="day")
    assert (await structured(mcp, "trends", {"events": ["mcp_signup"], **kathmandu})
            == api(live_service, "/trends", events="mcp_signup", **kathmandu, interval="day", measure="count"))
    local = await structured(mcp, "web_stats", {"site": site, "report": "timeseries", **kathmandu})
    assert local == api(live_service, "/api/timeseries", site=site, **kathmandu, limit=10)
    assert local["meta"]["tz"] == "Asia/Kathmandu"
    for tool, arguments in [("metrics", {**DAY, "tz": "../../etc"}), ("web_stats", {"site": site, "tz": "Mars/x"}),
                            ("web_stats", {"site": site, "start_date": TODAY, "tz": "../../etc/passwd"})]:
        refused = await mcp.call_tool(tool, arguments)
        assert refused.is_error and "zone" in refused.content[0].text, (tool, refused.content)  # type: ignore
    users = await structured(mcp, "list_users", {"traits": {"plan": "pro"}})
    assert users == api(live_service, "/users", **{"trait.plan": "pro"}, limit=50, offset=0)
    # other live-service tests (the Segment clients) also identify plan=pro users on this account
    listed = {u["user_id"] for u in users["data"]}
    assert "m1" in listed and "m2" not in listed
    profile = await structured(mcp, "user_profile", {"user_id": "m1", "limit": 3})
    assert profile == api(live_service, "/users/m1", limit=3, offset=0)
    assert [e["event"] for e in profile["events"]] == ["stop", "play", "mcp_purchase"]
    for tool, arguments, message in [
        ("funnel", {}, "either steps or funnel_id"),
        ("web_stats", {"site": site, "start_date": "2025-13-40"}, "Invalid date"),
        ("metrics", {"start_date": "2025-02-01", "end_date": "2025-01-01"}, "answered 400"),
    ]:
        result = await mcp.call_tool(tool, arguments)
        assert result.is_error and message in result.content[0].text, (tool, result.content)  # type: ignore
    assert (await mcp.call_tool("web_stats", {"site": site, "report": "secrets"})).is_error


async def test_wrong_token_and_unreachable_service_are_tool_errors(live_service: LiveService,
                                                                   product_data: str) -> None:
    async with Client(server_params(live_service, token="sk_wrong_token_0123456789")) as client:
        result = await client.call_tool("list_events", {})
        assert result.is_error and "refused the API token" in result.content[0].text  # type: ignore[union-attr]
        assert len((await client.list_tools()).tools) == len(TOOLS)  # the server is still up
    async with Client(server_params(live_service, url=f"http://127.0.0.1:{free_port()}")) as client:
        result = await client.call_tool("web_stats", {"site": product_data})
        assert result.is_error and "unreachable" in result.content[0].text  # type: ignore[union-attr]


def test_mcp_command_names_the_missing_variable() -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    result = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "mcp", "--url", "http://127.0.0.1:9"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "ANALYTICS_API_TOKEN" in result.stderr


class StdioPeer:
    """``nself-analytics mcp`` as a subprocess spoken to line by line, each answer awaited with a deadline."""

    def __init__(self) -> None:
        import subprocess

        env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
        env.update({"ANALYTICS_URL": f"http://127.0.0.1:{free_port()}", "ANALYTICS_API_TOKEN": "sk_" + "x" * 30})
        self.process = subprocess.Popen([sys.executable, "-m", "nself_analytics.host.cli", "mcp"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def ask(self, line: bytes, deadline: float = 30) -> dict[str, Any]:
        import select

        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], deadline)
        assert ready, f"no answer to {line[:80]!r} within {deadline} s"
        return dict(json.loads(self.process.stdout.readline()))

    def close(self) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        code = self.process.wait(timeout=30)
        self.process.stdout.close()
        return code


def rpc(ident: int, method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def test_stdio_answers_every_line_even_the_ones_that_are_not_json_rpc() -> None:
    """Hostile: a line that is not JSON, a call holding a lone surrogate, JSON that is not JSON-RPC: each is
    answered with a JSON-RPC error (the SDK alone dropped them, and its client waited forever), and the
    session goes on: the next request is answered as before."""
    peer = StdioPeer()
    try:
        hello = peer.ask(rpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                               "clientInfo": {"name": "test", "version": "1"}}))
        assert hello["id"] == 1 and hello["result"]["serverInfo"]["name"] == "nself-analytics"
        assert peer.ask(rpc(2, "ping")) == {"jsonrpc": "2.0", "id": 2, "result": {}}
        not_json = peer.ask(b"this is not json {")
        assert not_json["id"] is None and not_json["error"]["code"] == -32700
        surrogate = b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"counters",' \
                    b'"arguments":{"event":"\\ud800"}}}'
        answer = peer.ask(surrogate)
        assert answer["id"] == 3 and answer["error"]["code"] == -32602 and "surrogate" in answer["error"]["message"]
        in_method = peer.ask(b'{"jsonrpc":"2.0","id":"\\udfff","method":"ping\\ud800"}')
        assert in_method["id"] is None and in_method["error"]["code"] == -32600
        for line, ident in ((b"[1, 2]", None), (b'{"id": 4}', 4), (b'{"jsonrpc":"2.0","id":true,"method":"ping"}',
                                                                     None)):
            invalid = peer.ask(line)
            assert (invalid["id"], invalid["error"]["code"]) == (ident, -32600), line
        assert peer.ask(b'{"deep": ' * 100_000 + b"}" * 100_000)["error"]["code"] in (-32700, -32600)
        tools = peer.ask(rpc(5, "tools/list"))
        assert [t["name"] for t in tools["result"]["tools"]] == list(TOOLS)
    finally:
        assert peer.close() == 0
