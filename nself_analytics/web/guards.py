"""Input guards checked before any handler (edge.py) or by the body reader: text PostgreSQL cannot hold, JSON too deep.

- A NUL character in a query parameter or path segment is a 400 naming the parameter (PostgreSQL text cannot
  hold NUL; such a value used to reach a query and fail it with a 500).
- A JSON body nested deeper than ``MAX_JSON_DEPTH`` levels is a 400: deeper values cannot be encoded again for
  the queue (orjson stops at 255) nor usefully queried.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .errors import ApiError

__all__ = ["MAX_JSON_DEPTH", "check_depth", "check_nul"]

MAX_JSON_DEPTH = 64


def check_nul(request: web.Request) -> None:
    """400 when a query parameter or path segment holds a NUL character (naming the parameter)."""
    if "\x00" in request.path or "%00" in request.raw_path:
        for name, value in [*request.query.items(), *request.match_info.items()]:
            if "\x00" in name or "\x00" in value:
                raise ApiError(400, f"{name.replace(chr(0), '')} must not contain a NUL character (%00)")
        raise ApiError(400, "The request path must not contain a NUL character (%00)")


def check_depth(raw: bytes, body: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """400 when ``body`` (parsed from ``raw``) nests objects/arrays deeper than ``limit``. Bodies with fewer
    brackets than the limit cannot be that deep, so the common case costs two byte counts."""
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise ApiError(400, f"The JSON body is nested deeper than {limit} levels")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values() if isinstance(item, dict | list))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
