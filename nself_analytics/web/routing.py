"""The route table's entry: every route of the app is one :class:`Route`, declared once, next to its handler.

A handler module lists its routes in ``ROUTES``; ``api/__init__.py`` collects them into ``api.ROUTES``. From that
one list come the aiohttp router (:func:`add_routes`), the credential each route needs (:func:`access_table`, bound
by ``web/access.py``), the OpenAPI document (``web/openapi.py``) and the route list of ``plugin.yaml``
(``host/manifest.py``).

A route with ``params`` (a msgspec Struct) has its query and path parameters decoded into that Struct before the
handler runs, which then receives ``(request, params)``; a bad parameter is a 400 naming it. A route with
``answer`` (a msgspec type) returns that value (or any ``web.StreamResponse``), encoded as JSON with
``status``. A route with ``body`` (a msgspec Struct) has its JSON object body decoded into that Struct (after the
checks of ``params.json_body``), passed to the handler after the parameters; a body that does not convert is a 400
with msgspec's message, which names the field's path. All of them also give the route's OpenAPI parameters, request
body and answer schema; ``errors`` adds the answers a route has beyond the usual 400/401/403 (404, 409). An answer
that is not JSON (a file, a stream) is a :class:`Body`: the handler returns its ``web.StreamResponse`` and the
OpenAPI names the media type.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
from aiohttp import web

from .access import Access
from .errors import ApiError

__all__ = ["PUBLIC", "ROUTE_TABLE", "SITE", "TOKEN", "WRITE", "Body", "Route", "access_table", "add_routes",
           "canonical", "decode_body", "decode_params"]

Handler = Callable[..., Awaitable[Any]]
# the credential rules, as a route declares them (web/access.py says what each admits)
PUBLIC, WRITE, TOKEN, SITE = Access.PUBLIC, Access.WRITE, Access.TOKEN, Access.SITE
_PATTERN = re.compile(r"\{(\w+):[^}]*\}")
_ENCODER = msgspec.json.Encoder()


def canonical(path: str) -> str:
    """A path as aiohttp names its resource: ``/static/{path:.+}`` -> ``/static/{path}``."""
    return _PATTERN.sub(r"{\1}", path)


ROUTE_TABLE: web.AppKey[tuple[Route, ...]] = web.AppKey("route_table", tuple)


class Body(msgspec.Struct, frozen=True):
    """A route's answer that is not JSON: the handler returns a ``web.StreamResponse`` of ``media_type``."""

    media_type: str  # application/x-ndjson, text/csv, ...
    description: str  # what the body holds, the OpenAPI response's description


class Route(msgspec.Struct, frozen=True):
    """One route: where it is, who may call it, what it takes and answers, and how the OpenAPI names it."""

    method: str  # GET, POST, PUT, PATCH, DELETE, OPTIONS (a GET answers HEAD too)
    path: str  # under the mount, as aiohttp takes it: /funnels/{id}, /static/{path:.+}
    handler: Handler
    access: Access  # the credential rule (web/access.py)
    name: str  # the aiohttp route name (ingest.* routes get CORS headers, ingest.v1* are Segment routes)
    summary: str  # one line, the OpenAPI summary
    tags: tuple[str, ...]  # OpenAPI tags, the first is the section of the docs
    params: type[msgspec.Struct] | None = None  # query and path parameters, decoded before the handler
    answer: Any = None  # the JSON answer's msgspec type (a Struct, list[Struct], ...), or a Body
    status: int = 200  # of a typed answer
    body: Any = None  # the JSON body's msgspec Struct, decoded before the handler
    errors: tuple[tuple[int, str], ...] = ()  # (status, description) of its other error answers, for the OpenAPI
    op_id: str = ""  # OpenAPI operationId; default: the name with . and - as _
    description: str = ""  # OpenAPI description (a longer text than the summary)
    note: str = ""  # added to the credential text of plugin.yaml

    @property
    def key(self) -> tuple[str, str]:
        """(method, canonical path): how the access table, the OpenAPI and the tests name the route."""
        return self.method, canonical(self.path)

    @property
    def operation_id(self) -> str:
        return self.op_id or re.sub(r"[.-]", "_", self.name)


def _fields(struct: type[msgspec.Struct]) -> dict[str, bool]:
    """Each encoded field name of ``struct`` and whether it takes a list (a repeatable parameter)."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    out = {}
    for field in info.fields:
        kind = field.type
        if isinstance(kind, msgspec.inspect.Metadata):  # a description or extra schema around the type
            kind = kind.type
        if isinstance(kind, msgspec.inspect.UnionType):
            kind = next((t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)), kind)
        if isinstance(kind, msgspec.inspect.Metadata):
            kind = kind.type
        out[field.encode_name] = isinstance(kind, msgspec.inspect.ListType | msgspec.inspect.TupleType |
                                            msgspec.inspect.VarTupleType | msgspec.inspect.SetType)
    return out


def decode_params(request: web.Request, struct: type[msgspec.Struct]) -> Any:
    """The request's query and path parameters as ``struct`` (empty query values count as absent); ApiError(400)
    naming the first bad one."""
    data: dict[str, Any] = {}
    for name, many in _fields(struct).items():
        if name in request.match_info:
            data[name] = request.match_info[name]
        elif many:
            values = [v for v in request.query.getall(name, []) if v.strip()]
            if values:
                data[name] = values
        elif (value := request.query.get(name, "").strip()) != "":
            data[name] = value
    try:
        return msgspec.convert(data, struct, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(400, _message(exc, struct, data)) from None


def _field_type(struct: type[msgspec.Struct], name: str) -> Any:
    """The msgspec.inspect type of a field (its constraints), Optional and metadata unwrapped."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    kind: Any = next((f.type for f in info.fields if f.encode_name == name), None)
    for _ in range(3):
        if isinstance(kind, msgspec.inspect.Metadata):
            kind = kind.type
        if isinstance(kind, msgspec.inspect.UnionType):
            kind = next((t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)), kind)
    return kind


def _choices(struct: type[msgspec.Struct], name: str) -> tuple[Any, ...]:
    """The values of a Literal field in their declared order (msgspec.inspect sorts them)."""
    pending = [typing.get_type_hints(struct, include_extras=True)[name]]
    while pending:
        kind = pending.pop()
        if typing.get_origin(kind) is typing.Literal:
            return typing.get_args(kind)
        pending.extend(arg for arg in typing.get_args(kind) if not isinstance(arg, msgspec.Meta))
    return ()


def _message(exc: msgspec.ValidationError, struct: type[msgspec.Struct], data: dict[str, Any]) -> str:
    """The 400 message of a parameter that did not convert, naming it: the Struct's own (``MESSAGES[name]``, a
    format string of ``value``; ``MESSAGES[name + ":missing"]`` when a required one is absent), else the house
    wording of a too long text, a non-integer or out-of-range integer and a value not among the choices, else
    msgspec's. A ValueError of the Struct's ``__post_init__`` keeps its text."""
    messages: dict[str, str] = getattr(struct, "MESSAGES", {})
    text = str(exc)
    if missing := re.fullmatch(r"Object missing required field `([^`]+)`", text):
        name = missing.group(1)
        return messages.get(f"{name}:missing") or f"{name} is required"
    found = re.search(r" - at `\$\.([^`\[]+)[^`]*`$", text)
    if not found:
        return text
    name, problem = found.group(1), text[: found.start()]
    if longer := re.match(r"Expected `str` of length <= (\d+)$", problem):
        return messages.get(f"{name}:length") or f"{name} is longer than {longer.group(1)} characters"
    if name in messages:
        return messages[name].format(value=data.get(name))
    kind = _field_type(struct, name)
    if isinstance(kind, msgspec.inspect.IntType):
        if re.match(r"Expected `int( \| null)?`, got", problem):
            return f"{name} must be an integer"
        return f"{name} must be between {kind.ge} and {kind.le}"
    if isinstance(kind, msgspec.inspect.LiteralType):
        return f"Invalid {name} {data.get(name)!r}: use one of {', '.join(map(str, _choices(struct, name)))}"
    return f"{name}: {problem}"


async def decode_body(request: web.Request, struct: type[msgspec.Struct]) -> Any:
    """The request's JSON object body as ``struct``; ApiError(400) with msgspec's message (naming the field's
    path) when it does not convert."""
    from .params import json_body  # web/params.py reads request bodies; it does not know the route table

    data = await json_body(request)
    try:
        return msgspec.convert(data, struct)
    except msgspec.ValidationError as exc:
        raise ApiError(400, str(exc)[:300]) from None


def _endpoint(route: Route) -> Handler:
    """The aiohttp handler of ``route``: the declared handler itself, or a wrapper that decodes the parameters
    and encodes the typed answer."""
    if route.params is None and route.answer is None and route.body is None:
        return route.handler
    handler, params, body, status = route.handler, route.params, route.body, route.status

    async def endpoint(request: web.Request) -> web.StreamResponse:
        args: list[Any] = [request]
        if params is not None:
            args.append(decode_params(request, params))
        if body is not None:
            args.append(await decode_body(request, body))
        result = await handler(*args)
        if isinstance(result, web.StreamResponse):
            return result
        return web.Response(body=_ENCODER.encode(result), status=status, content_type="application/json")

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    endpoint.__doc__ = handler.__doc__
    return endpoint


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Register ``routes`` on ``app``'s router (a GET answers HEAD too) and keep them as ``app[ROUTE_TABLE]``;
    ValueError on a route declared twice."""
    table = tuple(routes)
    seen: set[tuple[str, str]] = set()
    defs = []
    for route in table:
        if route.key in seen:
            raise ValueError(f"route declared twice: {route.key}")
        seen.add(route.key)
        defs.append(web.RouteDef(route.method, route.path, _endpoint(route), {"name": route.name}))
    app.add_routes(defs)
    app[ROUTE_TABLE] = app.get(ROUTE_TABLE, ()) + table


def access_table(routes: Iterable[Route]) -> dict[tuple[str, str], Access]:
    """(method, canonical path) -> the credential rule, as ``web/access.py`` ``bind_access`` takes it."""
    return {route.key: route.access for route in routes}

