"""The route table's typed routes (web/routing.py): parameters decoded into a Struct before the handler, a bad one
a 400 naming it, the answer encoded from its Struct, and the OpenAPI operation taken from the same types.
No database: a bare app with the edge middleware."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest
from aiohttp import web

from nself_analytics.config import Settings
from nself_analytics.web.access import bind_access
from nself_analytics.web.edge import bind_policies, edge_middleware
from nself_analytics.web.openapi import operation
from nself_analytics.web.routing import PUBLIC, TOKEN, Route, access_table, add_routes

SECRET = "s" * 24


class ReportQuery(msgspec.Struct, frozen=True):
    id: int
    limit: Annotated[int, msgspec.Meta(ge=1, le=100, description="Rows at most")] = 10
    tag: Annotated[list[str], msgspec.Meta(description="Tags, repeatable")] = []


class Report(msgspec.Struct, frozen=True):
    id: int
    limit: int
    tags: list[str]


async def report(request: web.Request, query: ReportQuery) -> Report:
    """One report, its rows limited."""
    return Report(query.id, query.limit, query.tag)


async def plain(request: web.Request) -> web.Response:
    return web.json_response({"plain": True})


class Echo(msgspec.Struct, frozen=True):
    word: Annotated[str, msgspec.Meta(max_length=5)] = "hi"


async def echo(request: web.Request, query: Echo) -> web.StreamResponse:
    """A typed route may still answer any response of its own."""
    return web.Response(text=query.word, headers={"X-Echo": "1"})


ROUTES = [
    Route("GET", r"/reports/{id:\d+}", report, TOKEN, name="reports.get", tags=("Reports",), summary="One report",
          params=ReportQuery, answer=Report),
    Route("GET", "/plain", plain, PUBLIC, name="plain", tags=("Service",), summary="Untyped"),
    Route("GET", "/echo", echo, PUBLIC, name="echo", tags=("Service",), summary="Echo", params=Echo,
          description="Says the word back"),
]


@pytest.fixture
async def client(aiohttp_client: Any) -> Any:
    settings = Settings(secret_token=SECRET, write_keys=("w" * 24,))
    app = web.Application()
    add_routes(app, ROUTES)
    bind_access(app, access_table(ROUTES))
    app.middlewares.append(edge_middleware(settings, bind_policies(app)))
    return await aiohttp_client(app)


async def test_typed_parameters_and_answer(client: Any) -> None:
    auth = {"Authorization": f"Bearer {SECRET}"}
    response = await client.get("/reports/7?limit=5&tag=a&tag=b", headers=auth)
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == {"id": 7, "limit": 5, "tags": ["a", "b"]}
    response = await client.get("/reports/7?limit=", headers=auth)  # an empty value is an absent one
    assert await response.json() == {"id": 7, "limit": 10, "tags": []}
    assert (await client.get("/plain")).status == 200


async def test_bad_parameters_are_a_400_naming_them(client: Any) -> None:
    auth = {"Authorization": f"Bearer {SECRET}"}
    between = "limit must be between 1 and 100"
    for query, message in (("limit=0", between), ("limit=101", between), ("limit=ten", "limit must be an integer"),
                           ("limit=1e400", between)):
        response = await client.get(f"/reports/7?{query}", headers=auth)
        assert response.status == 400, query
        assert await response.json() == {"status": "error", "message": message}
    assert (await client.get("/reports/7")).status == 401  # the credential is checked before the parameters
    assert (await client.get("/reports/x", headers=auth)).status == 404


def test_the_operation_comes_from_the_types() -> None:
    schemas: dict[str, Any] = {}
    op = operation(ROUTES[0], schemas)
    assert op is not None
    assert (op["summary"], op["operationId"], op["tags"]) == ("One report", "reports_get", ["Reports"])
    params = {p["name"]: p for p in op["parameters"]}
    assert params["id"]["in"] == "path" and params["id"]["required"] is True
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
    assert params["limit"]["description"] == "Rows at most" and params["limit"]["required"] is False
    assert params["tag"]["schema"]["type"] == "array"
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Report"}
    assert schemas["Report"]["required"] == ["id", "limit", "tags"]
    assert {"400", "401", "403", "503"} <= set(op["responses"])
    assert op["description"] == "One report, its rows limited."
    assert operation(ROUTES[1], {}) is None  # untyped and not hand-described: test_openapi.py refuses it


async def test_a_typed_route_may_answer_its_own_response(client: Any) -> None:
    response = await client.get("/echo?word=hello")
    assert (response.status, await response.text(), response.headers["X-Echo"]) == (200, "hello", "1")
    response = await client.get("/echo?word=toolong")
    assert response.status == 400 and (await response.json())["message"] == "word is longer than 5 characters"


def test_public_typed_route_and_schema_names() -> None:
    op = operation(ROUTES[2], {})
    assert op is not None and op["description"] == "Says the word back" and op["security"] == []
    assert set(op["responses"]) == {"400"}  # no credential to refuse, a parameter may be bad
    assert [p["name"] for p in op["parameters"]] == ["word"]  # no account header on a public route

    class Report(msgspec.Struct):  # another Struct of the same name: the document would lie about one of them
        other: str

    clash = Route("GET", "/clash", report, TOKEN, name="clash", tags=("Reports",), summary="Clash", answer=Report)
    schemas: dict[str, Any] = {}
    operation(ROUTES[0], schemas)
    with pytest.raises(ValueError, match="two OpenAPI schemas named Report"):
        operation(clash, schemas)
