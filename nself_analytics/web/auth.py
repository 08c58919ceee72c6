"""Who is asking: the credential of a request (header, or ``writeKey`` in an ingest body) and its grant.

Which credential a route needs is declared in the route table (web/routing.py ``Route.access``) and enforced by
``access.check_access``; handlers never check credentials themselves.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from ..config import Settings
from ..ingest.site_guard import DEFAULT_ACCOUNT, site_account
from .credentials import Grant, match

__all__ = ["GRANT", "bearer_or_basic", "grant_of", "token_grant", "write_grant"]

# The grant of the request's credential, set by the access middleware (absent: no valid credential).
GRANT: web.RequestKey[Grant] = web.RequestKey("grant", Grant)


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


def token_grant(settings: Settings, secret: str) -> Grant | None:
    """The grant of a token (full, account-bound or site-scoped); None when ``secret`` is none of them.

    A site token reads its site in the account that owns the site (ANALYTICS_SITES), else in ``primary``.
    """
    found = match(secret, settings.tokens)
    if found is None:
        return None
    if found.role == "site":
        assert found.site is not None
        return Grant("site", site_account(settings.sites, found.site) or DEFAULT_ACCOUNT, found.site)
    return Grant(found.role, found.account)


def write_grant(settings: Settings, secret: str) -> Grant | None:
    """The grant of a write key or of a (non site-scoped) token used for ingest; None otherwise."""
    found = match(secret, settings.writers)
    return Grant(found.role, found.account, public=found.public) if found else None


def grant_of(request: web.Request) -> Grant | None:
    """The grant the access middleware found for this request (None on a public route without credential)."""
    return request.get(GRANT)
