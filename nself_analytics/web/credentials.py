"""Credentials and what they open: parsed once from ANALYTICS_SECRET_TOKEN / ANALYTICS_WRITE_KEYS.

Each variable is a comma-separated list of entries:

- ``secret``: a bare secret serves every account (the account is the request's ``X-Source-Account-Id``);
- ``account=secret``: bound to one account; a request naming another account is refused (403);
- ``site:example.com=secret`` (tokens only): reads the web stats (``/api/*``) of that one site, nothing
  else; meant for a shareable dashboard link.
- write keys only: a ``public:`` prefix (``public:secret``, ``public:account=secret``) declares a key that ships
  in web pages (the browser SDK, the beacon): new event names it brings are limited per day
  (ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY). ``server:`` or no prefix: a back end's key.

Secrets must not contain ``,`` or ``=``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from ..model.settings_values import ACCOUNT_PATTERN, Credential, Role, parse_entries

__all__ = ["ACCOUNT_PATTERN", "Credential", "Grant", "Role", "match", "parse_entries"]

@dataclass(frozen=True)
class Grant:
    """What the credential of a request opens (no secret inside: safe to log)."""

    role: Role
    account: str | None = None
    site: str | None = None
    public: bool = False  # a public write key (see above)


def match(candidate: str, credentials: tuple[Credential, ...]) -> Credential | None:
    """The credential whose secret is ``candidate``; every secret is compared, in constant time."""
    found: Credential | None = None
    # surrogateescape: a header's raw non-UTF-8 bytes (aiohttp decodes them so) compare as bytes, never raise
    given = candidate.encode("utf-8", "surrogateescape")
    for credential in credentials:
        if hmac.compare_digest(given, credential.secret.encode()):
            found = credential
    return found
