"""Credentials and what they open: parsed once from ANALYTICS_SECRET_TOKEN / ANALYTICS_WRITE_KEYS.

Each variable is a comma-separated list of entries:

- ``secret``: a bare secret serves every account (the account is the request's ``X-Source-Account-Id``);
- ``account=secret``: bound to one account; a request naming another account is refused (403);
- ``site:example.com=secret`` (tokens only): reads the web stats (``/api/*``) of that one site, nothing
  else; meant for a shareable dashboard link.

Secrets must not contain ``,`` or ``=``.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["ACCOUNT_PATTERN", "Credential", "Grant", "match", "parse_entries"]

ACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SITE = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]{0,251})$")

Role = Literal["token", "site", "write"]


@dataclass(frozen=True)
class Credential:
    """One secret and what it opens: a role, an account (None: every account) and, for site tokens, a site."""

    secret: str
    role: Role
    account: str | None = None
    site: str | None = None


@dataclass(frozen=True)
class Grant:
    """What the credential of a request opens (no secret inside: safe to log)."""

    role: Role
    account: str | None = None
    site: str | None = None


def parse_entries(text: str, variable: str, role: Role, min_length: int = 1) -> tuple[Credential, ...]:
    """The entries of ``text``; ValueError naming the entry's position (never the secret) when one is bad."""
    out: list[Credential] = []
    for position, raw in enumerate(text.split(","), 1):
        entry = raw.strip()
        if not entry:
            continue
        label, sep, secret = entry.partition("=")
        label, secret = label.strip(), secret.strip()
        if not sep:
            label, secret = "", entry
        if sep and not secret:
            raise ValueError(f"entry {position} of {variable} has no secret after '='")
        if len(secret) < min_length:
            raise ValueError(f"entry {position} of {variable}: a secret must be at least {min_length} characters")
        if not label:
            out.append(Credential(secret, role))
        elif label.startswith("site:"):
            site = label[5:].lower()
            if role != "token":
                raise ValueError(f"entry {position} of {variable}: site-scoped entries are for the secret token only")
            if not _SITE.match(site):
                raise ValueError(f"entry {position} of {variable}: {site!r} is not a hostname")
            out.append(Credential(secret, "site", site=site))
        elif ACCOUNT_PATTERN.match(label):
            out.append(Credential(secret, role, account=label))
        else:
            raise ValueError(f"entry {position} of {variable}: account {label!r} must be 1-64 letters, digits, "
                             "'_', '-', '.' or ':'")
    return tuple(out)


def match(candidate: str, credentials: tuple[Credential, ...]) -> Credential | None:
    """The credential whose secret is ``candidate``; every secret is compared, in constant time."""
    found: Credential | None = None
    # surrogateescape: a header's raw non-UTF-8 bytes (aiohttp decodes them so) compare as bytes, never raise
    given = candidate.encode("utf-8", "surrogateescape")
    for credential in credentials:
        if hmac.compare_digest(given, credential.secret.encode()):
            found = credential
    return found
