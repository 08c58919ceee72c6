"""openapi.json describes every route of the app (a new route without a description fails here),
is valid OpenAPI 3.1 naming this instance; /docs, /mcp and /static are served from our own files."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from nself_analytics.api import ROUTES
from nself_analytics.api.docs import STATIC_DIR
from nself_analytics.web.appkeys import ANALYTICS_APP
from nself_analytics.web.openapi import DESCRIPTIONS, operation

from .clock_support import days_ago, iso

MOUNT = "/analytics"


def routes_of(client: Any) -> set[tuple[str, str]]:
    """(method, path under the mount) of every route the app really routes (HEAD rides with GET)."""
    out = set()
    for route in client.app[ANALYTICS_APP].router.routes():
        if route.method != "HEAD":
            out.add((route.method, route.resource.canonical.removeprefix(MOUNT)))
    return out


async def fetch_doc(client: Any, **headers: str) -> dict[str, Any]:
    response = await client.get("/analytics/openapi.json", headers=headers)
    assert response.status == 200
    return dict(await response.json())


async def test_every_route_is_documented(client: Any) -> None:
    routed = routes_of(client)
    missing = sorted(route.key for route in ROUTES if operation(route, {}) is None)
    assert not missing, f"routes without an OpenAPI description (give the Route typed params/answer): {missing}"
    # a hand-written description is looked up from the table: none may describe a route that does not exist
    assert set(DESCRIPTIONS) <= {route.key for route in ROUTES}
    # the walk sees the real routing table: ingest, Segment, beacon, stats, docs and health at least
    for must in [("POST", "/track"), ("POST", "/v1/batch"), ("OPTIONS", "/hit"), ("GET", "/api/pageviews"),
                 ("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/static/{path}"), ("GET", "/dashboard")]:
        assert must in routed


async def test_document_holds_exactly_the_routed_operations(client: Any) -> None:
    doc = await fetch_doc(client)
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert documented == routes_of(client)
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


async def test_document_is_valid_openapi_31(client: Any) -> None:
    doc = await fetch_doc(client)
    assert doc["openapi"] == "3.1.0"
    jsonschema_rs.Draft202012Validator(OPENAPI_31).validate(doc)
    for name, schema in doc["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    text = json.dumps(doc)
    for target in re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text):
        assert target in doc["components"]["schemas"], target


async def test_operations_declare_auth_and_errors(client: Any) -> None:
    doc = await fetch_doc(client)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["secretToken"] == {"type": "http", "scheme": "bearer", "description": schemes["secretToken"][
        "description"]}
    assert schemes["writeKeyBasic"]["scheme"] == "basic"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["responses"], (method, path)
            if op["security"] == [{"secretToken": []}]:
                assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}, (method, path)
                assert "400" in op["responses"], (method, path)
    assert doc["paths"]["/track"]["post"]["security"][0] == {"writeKey": []}
    assert doc["paths"]["/hit"]["post"]["security"] == []
    assert doc["paths"]["/api/pages"]["get"]["security"] == [{"secretToken": []}]
    site = next(p for p in doc["paths"]["/api/pages"]["get"]["parameters"] if p["name"] == "site")
    assert site["required"] is True


async def test_store_and_body_errors_are_documented_where_they_can_happen(client: Any, auth: Any) -> None:
    """errors.error_middleware answers 503 (store down, query timeout) on any call reaching a store and
    body.read_json_body 413 on any body over 500 KB: the document says so for each such operation."""
    doc = await fetch_doc(client)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if op["security"] == [{"secretToken": []}]:
                assert "Retry-After" in op["responses"]["503"]["headers"], (method, path)
            if "requestBody" in op:
                assert "413" in op["responses"], (method, path)
    # the real answers: an over-size body to admin routes is a JSON 413, and the document lists it there
    big = b'{"name": "' + b"x" * (600 * 1024) + b'"}'
    for path in ("/funnels", "/quotas", "/webhooks"):
        response = await client.post(f"/analytics{path}", data=big, headers={
            **auth["secret"], "Content-Type": "application/json"})
        assert response.status == 413, path
        assert (await response.json())["status"] == "error"
        assert "413" in doc["paths"][path]["post"]["responses"]
    assert (await client.get("/analytics/funnels", headers=auth["secret"])).status == 200  # nothing was stored
    assert (await (await client.get("/analytics/funnels", headers=auth["secret"])).json())["funnels"] == []


async def test_server_url_is_this_instance(client: Any) -> None:
    doc = await fetch_doc(client)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/analytics", doc["servers"][0]["url"])
    doc = await fetch_doc(client, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "stats.example.com"})
    assert doc["servers"][0]["url"] == "https://stats.example.com/analytics"
    doc = await fetch_doc(client, **{"X-Forwarded-Host": "<script>", "X-Forwarded-Proto": "javascript"})
    assert doc["servers"][0]["url"] == "http://localhost/analytics"


async def test_docs_page_uses_only_vendored_files(client: Any) -> None:
    response = await client.get("/analytics/docs")
    assert response.status == 200 and response.content_type == "text/html"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    page = await response.text()
    sources = [s for s in re.findall(r'(?:src|href)="([^"]+)"', page) if not s.startswith("data:")]
    assert sources and not [s for s in sources if "//" in s]  # no CDN, no absolute URL
    for source in sources:
        asset = await client.get("/analytics/" + source)
        assert asset.status == 200, source
        assert len(await asset.read()) > 100
    assert (STATIC_DIR / "vendor/swagger-ui/LICENSE").is_file()


async def test_explorer_lists_every_operation_of_a_document_past_the_virtualizing_size(client: Any) -> None:
    """The vendored Swagger UI virtualizes its operations list from a number of rows (tags + operations) on: only
    the rows in view are in the page, so the explorer showed the first tag and nothing below it. The document is
    past that size (177 rows in 1.2), so docs.js must install its plain list (PlainOperationsPlugin's
    `operations` component)."""
    bundle = (STATIC_DIR / "vendor/swagger-ui/swagger-ui-bundle.js").read_text(encoding="utf-8")
    # the operations list's switch (`B=L.length>=150,[V,z]=useState(null)`); a new Swagger UI must be looked at
    thresholds = re.findall(r"\b\w+=\w+\.length>=(\d+),\[", bundle)
    assert len(thresholds) == 1 and "operations-virtual" in bundle, thresholds
    doc = await fetch_doc(client)
    tags = {tag for item in doc["paths"].values() for op in item.values() for tag in op["tags"]}
    rows = len(tags) + sum(len(op["tags"]) for item in doc["paths"].values() for op in item.values())
    script = (STATIC_DIR / "docs.js").read_text(encoding="utf-8")
    plain = "plugins: [PlainOperationsPlugin]" in script and "components: { operations: Operations }" in script
    assert rows < int(thresholds[0]) or plain, f"{rows} rows: Swagger UI virtualizes from {thresholds[0]} on"


@pytest.mark.parametrize("path", ["../api/docs.py", "vendor/../../api/docs.py", ".hidden", "nope.js", "vendor",
                                  "%2e%2e/openapi.py"])
async def test_static_serves_nothing_outside(client: Any, path: str) -> None:
    response = await client.get("/analytics/static/" + path)
    assert response.status == 404


async def test_mcp_page_is_filled_for_this_instance(client: Any) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "stats.example.com"}
    response = await client.get("/analytics/mcp", headers=headers)
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    for client_name in ("Claude Desktop", "Cursor", "Windsurf", "ChatGPT", "Claude Code"):
        assert client_name in page
    assert "https://stats.example.com/analytics/openapi.json" in page
    # the native server first, the bridge as a fallback after it
    assert page.index("nself-analytics mcp") < page.index("@ivotoby/openapi-mcp-server")
    assert "pip install -e &#x27;.[mcp]&#x27;" in page and "not on PyPI" in page
    configs = re.findall(r'<pre id="cfg-(claude_desktop|cursor|windsurf)"><code>(.*?)</code></pre>', page, re.S)
    assert len(configs) == 3
    for _name, text in configs:
        server = json.loads(html.unescape(text))["mcpServers"]["nself-analytics"]
        assert server == {"command": "nself-analytics", "args": ["mcp"], "env": {
            "ANALYTICS_URL": "https://stats.example.com/analytics", "ANALYTICS_API_TOKEN": "YOUR_SECRET_TOKEN"}}
    [bridge] = re.findall(r'<pre id="cfg-openapi_bridge"><code>(.*?)</code></pre>', page, re.S)
    server = json.loads(html.unescape(bridge))["mcpServers"]["nself-analytics"]
    assert server["args"] == ["-y", "@ivotoby/openapi-mcp-server"]
    assert server["env"]["API_BASE_URL"] == "https://stats.example.com/analytics"
    assert server["env"]["OPENAPI_SPEC_PATH"] == "https://stats.example.com/analytics/openapi.json"
    assert server["env"]["API_HEADERS"] == "Authorization:Bearer YOUR_SECRET_TOKEN"
    response = await client.get("/analytics/mcp", headers={**headers, "Accept": "application/json"})
    body = await response.json()
    assert body["openapi_url"] == "https://stats.example.com/analytics/openapi.json"
    assert list(body["clients"]) == ["http", "claude_code_http", "install", "claude_desktop", "claude_code", "cursor",
                                     "windsurf", "openapi_bridge", "chatgpt_actions"]
    # the MCP server over HTTP, inside this instance: its URL and header
    [remote] = re.findall(r'<pre id="cfg-http"><code>(.*?)</code></pre>', page, re.S)
    assert json.loads(html.unescape(remote))["mcpServers"]["nself-analytics"] == {
        "type": "http", "url": "https://stats.example.com/analytics/mcp",
        "headers": {"Authorization": "Bearer YOUR_SECRET_TOKEN"}}
    assert "claude mcp add --transport http nself-analytics https://stats.example.com/analytics/mcp" in page
    evil = await client.get("/analytics/mcp", headers={"Host": 'x"><script>alert(1)</script>'})
    assert "<script>alert" not in await evil.text()


async def test_mcp_and_docs_need_no_token_and_expose_none(client: Any) -> None:
    for path in ("/analytics/mcp", "/analytics/docs", "/analytics/dashboard", "/analytics/openapi.json"):
        response = await client.get(path)
        assert response.status == 200, path
        assert "sk_test_secret_token" not in await response.text()


# --- regressions found by schemathesis ------------------------------------------------------------

@pytest.mark.parametrize(("raw", "message"), [
    (rb'{"name": "f\ud800", "steps": ["a", "b"]}', "Invalid JSON body: a \\u escape is an unpaired surrogate"),
    (rb'{"name": "f", "steps": ["a\u0000", "b"]}', "Invalid JSON body: text must not contain NUL (\\u0000)"),
    (b"[" * 100_000, "Invalid JSON body"),
])
async def test_admin_bodies_postgres_cannot_store_are_400(client: Any, auth: Any, raw: bytes, message: str) -> None:
    response = await client.post("/analytics/funnels", data=raw, headers=auth["secret"])
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


async def test_deeply_nested_ingest_body_is_400(client: Any, auth: Any) -> None:
    response = await client.post("/analytics/track", data=b'{"a":' * 50_000, headers=auth["write"])
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": "Invalid JSON body"}


# --- documented responses are the real ones --------------------------------------------------------

def check_response(doc: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """Validate ``body`` against the schema the document gives for this operation and status."""
    operation = doc["paths"][path][method.lower()]
    assert str(status) in operation["responses"], (method, path, status, body)
    target = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    schema = {"$ref": "#/components/schemas/__target",
              "components": {"schemas": {**doc["components"]["schemas"], "__target": target}}}
    errors = [e.message for e in jsonschema_rs.Draft202012Validator(schema).iter_errors(body)]
    assert not errors, (method, path, status, errors, body)


async def test_successful_responses_match_the_document(make_client: Any, settings: Any, auth: Any,
                                                       drain: Any) -> None:
    client = await make_client(settings.with_(quota_enabled=True))
    doc = await fetch_doc(client)
    secret, write = auth["secret"], auth["write"]
    day = days_ago(6, hour=0)  # events on it, and reads over it and the 6 days after (to today)
    at = {minute: iso(day + timedelta(hours=10, minutes=minute)) for minute in (0, 60, 65)}
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("POST", "/track", "/track", {"json": {"event": "signup", "user_id": "u1", "timestamp": at[0]},
                                      "headers": write}),
        ("POST", "/batch", "/batch", {"json": {"batch": [
            {"type": "track", "event": "activate", "userId": "u1", "timestamp": at[60]},
            {"type": "track", "event": "play", "userId": "u1", "timestamp": at[60]},
            {"type": "track", "event": "stop", "userId": "u1", "timestamp": at[65]},
            {"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
            {"type": "page", "anonymousId": "a", "properties": {"url": "https://s.io/x"}}]}, "headers": write}),
        ("POST", "/identify", "/identify", {"json": {"user_id": "u1", "traits": {"plan": "free"}}, "headers": write}),
        ("POST", "/v1/track", "/v1/track", {"json": {"event": "e", "userId": "u1"}, "headers": write}),
        ("POST", "/hit", "/hit", {"data": json.dumps({"site": "s.io", "path": "/", "session_id": "s"})}),
        ("GET", "/health", "/health", {}),
    ]
    for method, path, url, kwargs in calls:
        response = await client.request(method, "/analytics" + url, **kwargs)
        check_response(doc, method, path, response.status, await response.json())
    await drain()
    dates = {"start_date": day.date().isoformat(), "end_date": (day + timedelta(days=6)).date().isoformat()}
    created = await client.post("/analytics/funnels", headers=secret,
                                json={"name": "f", "steps": ["signup", "activate"], "window": "1d"})
    funnel = await created.json()
    check_response(doc, "POST", "/funnels", created.status, funnel)
    rule = await client.post("/analytics/quotas", headers=secret,
                             json={"event": "play", "limit": 0, "period": "day", "segment": {"plan": "free"}})
    quota = await rule.json()
    check_response(doc, "POST", "/quotas", rule.status, quota)
    reads = [
        ("GET", "/funnel", "/funnel", {"params": {"steps": "signup,activate", **dates, "breakdown": "plan"}}),
        ("GET", "/funnel", "/funnel", {"params": {"funnel_id": str(funnel["funnel"]["id"]), **dates}}),
        ("GET", "/funnels", "/funnels", {}),
        ("GET", "/funnels/{id}", f"/funnels/{funnel['funnel']['id']}", {}),
        ("GET", "/retention", "/retention", {"params": {**dates, "period": "day"}}),
        ("GET", "/counters/{event}", "/counters/play", {"params": {"period": "day"}}),
        ("GET", "/counters/{event}", "/counters/play", {"params": {"user_id": "u1"}}),
        ("GET", "/metrics", "/metrics", {"params": dates}),
        ("GET", "/sessions", "/sessions", {"params": dates}),
        ("GET", "/quotas", "/quotas", {}),
        ("GET", "/quotas/{id}", f"/quotas/{quota['quota']['id']}", {}),
        ("PUT", "/quotas/{id}", f"/quotas/{quota['quota']['id']}",
         {"json": {"event": "play", "limit": 0, "period": "hour"}}),
        ("POST", "/quota/check", "/quota/check", {"json": {"user_id": "u1", "event": "play"}}),
        ("GET", "/quotas/violations", "/quotas/violations", {}),
        *[("GET", f"/api/{name}", f"/api/{name}", {"params": {"site": "s.io"}}) for name in (
            "pageviews", "pages", "referrers", "timeseries", "devices", "languages", "browsers", "os", "countries",
            "hostnames", "active", "entry-pages", "exit-pages", "bounce-rates", "peak-hours", "screen-widths",
            "session-duration")],
        ("DELETE", "/funnels/{id}", f"/funnels/{funnel['funnel']['id']}", {}),
        ("DELETE", "/quotas/{id}", f"/quotas/{quota['quota']['id']}", {}),
        ("GET", "/funnels/{id}", f"/funnels/{funnel['funnel']['id']}", {}),  # 404 now
    ]
    statuses = []
    for method, path, url, kwargs in reads:
        response = await client.request(method, "/analytics" + url, headers=secret, **kwargs)
        statuses.append(response.status)
        check_response(doc, method, path, response.status, await response.json())
    assert statuses.count(200) == len(reads) - 1 and statuses[-1] == 404
    # and the documented error shape for a rejected read
    response = await client.get("/analytics/retention", headers=secret)
    check_response(doc, "GET", "/retention", response.status, await response.json())
