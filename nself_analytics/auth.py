"""Credentials: the secret token opens reads and admin; write keys (or the token) open ingest."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable

from aiohttp import web

from .errors import ApiError
from .keys import SETTINGS

__all__ = ["bearer_or_basic", "require_secret", "require_write", "write_key_allowed"]


def bearer_or_basic(request: web.Request) -> str | None:
    """The credential of ``Authorization: Bearer <k>`` or of HTTP Basic with ``<k>`` as user name."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, _password = decoded.partition(":")
        return user or None
    return None


def _matches(candidate: str, allowed: Iterable[str]) -> bool:
    # compare every key, in constant time, so timing does not reveal which one nearly matched
    found = False
    for key in allowed:
        found |= hmac.compare_digest(candidate.encode(), key.encode())
    return found


def require_secret(request: web.Request) -> None:
    """Raise 401 unless the request carries the secret token (a write key is refused)."""
    settings = request.config_dict[SETTINGS]
    token = bearer_or_basic(request)
    if not token:
        raise ApiError(401, "Missing secret token: send Authorization: Bearer <secret token>",
                       headers={"WWW-Authenticate": 'Bearer realm="nself-analytics"'})
    if not _matches(token, [settings.secret_token]):
        raise ApiError(401, "Invalid secret token", headers={"WWW-Authenticate": 'Bearer realm="nself-analytics"'})


def write_key_allowed(request: web.Request, key: str | None) -> bool:
    """True when ``key`` is one of the write keys or the secret token."""
    if not key:
        return False
    settings = request.config_dict[SETTINGS]
    return _matches(key, [*settings.write_keys, settings.secret_token])


def require_write(request: web.Request, body_key: object = None) -> None:
    """Raise 401 unless a write key arrives in the Authorization header or as ``writeKey`` in the body."""
    key = bearer_or_basic(request) or (body_key if isinstance(body_key, str) else None)
    if not key:
        raise ApiError(401, "Missing write key: send Authorization: Bearer <write key> or writeKey in the body")
    if not write_key_allowed(request, key):
        raise ApiError(401, "Invalid write key")
