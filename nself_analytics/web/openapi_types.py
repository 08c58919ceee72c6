"""The OpenAPI parameters, request body and answer of a typed route, from its msgspec types (web/routing.py
``Route.params``, ``Route.body`` and ``Route.answer``): the same classes decode the request and encode the answer,
so the document cannot drift."""

from __future__ import annotations

from typing import Any

import msgspec

from .access import Access
from .openapi_parts import ACCOUNT_HEADER, BODY_ERRORS, ERRORS, Op, _body, _error, _json
from .routing import Body, Route

__all__ = ["typed_operation"]

_REF = "#/components/schemas/{name}"


def _add(schemas: dict[str, Any], components: dict[str, Any]) -> None:
    """Add a type's schemas to the document's; two different schemas of one name would be a silent lie."""
    for name, schema in components.items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two OpenAPI schemas named {name}: rename one of the Structs")


def _parameters(route: Route, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    assert route.params is not None
    (_, ), components = msgspec.json.schema_components([route.params], ref_template=_REF)
    struct = components.pop(route.params.__name__)
    _add(schemas, components)  # an enum or a nested type of a parameter
    path = route.key[1]
    required = set(struct.get("required", ()))
    out = []
    for name, schema in struct.get("properties", {}).items():
        where = "path" if "{" + name + "}" in path else "query"
        schema = dict(schema)
        param: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required}
        if "description" in schema:
            param["description"] = schema.pop("description")
        param["schema"] = schema
        out.append(param)
    return out


def typed_operation(route: Route, schemas: dict[str, Any]) -> Op:
    """Parameters, answers and description of ``route`` from its types; the schemas they refer to go into
    ``schemas`` (the document's components)."""
    op: Op = {}
    parameters = _parameters(route, schemas) if route.params is not None else []
    if route.access is not Access.PUBLIC:
        parameters.append(ACCOUNT_HEADER)
    if parameters:
        op["parameters"] = parameters
    responses: dict[str, Any] = dict(ERRORS)
    if route.access is Access.PUBLIC:  # no credential to refuse; a parameter may still be bad
        responses = {"400": ERRORS["400"]} if route.params is not None else {}
    if isinstance(route.answer, Body):
        responses[str(route.status)] = {"description": route.answer.description,
                                        "content": {route.answer.media_type: {"schema": {"type": "string"}}}}
    elif route.answer is not None:
        (schema, ), components = msgspec.json.schema_components([route.answer], ref_template=_REF)
        _add(schemas, components)
        responses[str(route.status)] = _json(schema)
    if route.body is not None:
        (schema, ), components = msgspec.json.schema_components([route.body], ref_template=_REF)
        _add(schemas, components)
        op["requestBody"] = _body(schema, ((route.body.__doc__ or "").strip().splitlines() or ["The body"])[0])
        responses.update(BODY_ERRORS)
    responses.update({str(code): _error(text) for code, text in route.errors})
    op["responses"] = responses
    handler_doc = (route.handler.__doc__ or "").strip()
    if handler_doc:
        op["description"] = " ".join(handler_doc.split())
    return op
