"""The typed values the settings are parsed into, and their parsers: credentials (ANALYTICS_SECRET_TOKEN,
ANALYTICS_WRITE_KEYS), beacon sites (ANALYTICS_SITES), hit rates (ANALYTICS_HIT_RATE_*) and trusted proxy networks
(ANALYTICS_TRUSTED_PROXIES). Pure values: config.py builds Settings from them; web/credentials.py,
web/forwarded.py and ingest/site_guard.py use them (and re-export them)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACCOUNT_PATTERN", "DEFAULT_ACCOUNT", "DEFAULT_RATE_PER_IP", "DEFAULT_RATE_PER_SITE", "DEFAULT_TRUSTED_PROXIES",
    "HIT_RATE_PER_IP", "HIT_RATE_PER_SITE", "KEY_KINDS", "TRUSTED_PROXIES", "Credential", "Network", "Rate", "Role",
    "SiteRule",
    "parse_entries", "parse_networks", "parse_rate", "parse_sites",
]

ACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SITE = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]{0,251})$")

Role = Literal["token", "site", "write"]


@dataclass(frozen=True)
class Credential:
    """One secret and what it opens: a role, an account (None: every account) and, for site tokens, a site.
    ``public``: a write key declared ``public:`` (it ships in web pages: new event names it brings are limited)."""

    secret: str
    role: Role
    account: str | None = None
    site: str | None = None
    public: bool = False


# A write key's kind, as the prefix of its entry: ``public:`` (browser, beacon) or ``server:`` (the default).
KEY_KINDS = ("public:", "server:")


def parse_entries(text: str, variable: str, role: Role, min_length: int = 1) -> tuple[Credential, ...]:
    """The entries of ``text``; ValueError naming the entry's position (never the secret) when one is bad."""
    out: list[Credential] = []
    for position, raw in enumerate(text.split(","), 1):
        entry = raw.strip()
        if not entry:
            continue
        kind = next((k for k in KEY_KINDS if entry.startswith(k)), None)
        if kind is not None:
            if role != "write":
                raise ValueError(f"entry {position} of {variable}: '{kind}' is for write keys only")
            entry = entry[len(kind):].strip()
        public = kind == "public:"
        label, sep, secret = entry.partition("=")
        label, secret = label.strip(), secret.strip()
        if not sep:
            label, secret = "", entry
        if sep and not secret:
            raise ValueError(f"entry {position} of {variable} has no secret after '='")
        if len(secret) < min_length:
            raise ValueError(f"entry {position} of {variable}: a secret must be at least {min_length} characters")
        if not label:
            out.append(Credential(secret, role, public=public))
        elif label.startswith("site:"):
            site = label[5:].lower()
            if role != "token":
                raise ValueError(f"entry {position} of {variable}: site-scoped entries are for the secret token only")
            if not _SITE.match(site):
                raise ValueError(f"entry {position} of {variable}: {site!r} is not a hostname")
            out.append(Credential(secret, "site", site=site))
        elif ACCOUNT_PATTERN.match(label):
            out.append(Credential(secret, role, account=label, public=public))
        else:
            raise ValueError(f"entry {position} of {variable}: account {label!r} must be 1-64 letters, digits, "
                             "'_', '-', '.' or ':'")
    return tuple(out)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Loopback only: the nself proxy on the same machine is believed, nobody else.
DEFAULT_TRUSTED_PROXIES = "127.0.0.0/8,::1/128"
def parse_networks(text: str) -> tuple[Network, ...]:
    """CIDRs (or single addresses) separated by commas; ValueError naming the bad one."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP network (use CIDRs such as 10.0.0.0/8)") from None
    return tuple(out)


TRUSTED_PROXIES = parse_networks(DEFAULT_TRUSTED_PROXIES)
_ORIGIN = re.compile(r"^https?://(?:[a-z0-9_.-]{1,253}|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?$")


def parse_origins(text: str) -> tuple[str, ...]:
    """Browser origins (``https://app.example.com``, scheme and host, a port when not the default) separated by
    commas, lower-cased; ValueError naming the bad one."""
    out = []
    for part in text.split(","):
        origin = part.strip().lower().rstrip("/")
        if origin:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin (use scheme://host[:port], e.g. https://app.example.com)")
            out.append(origin)
    return tuple(out)


DEFAULT_ACCOUNT = "primary"
_HOST = re.compile(r"^(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|m|h)\s*$")
_PERIODS = {"s": 1, "m": 60, "h": 3600}
@dataclass(frozen=True)
class SiteRule:
    """One ANALYTICS_SITES entry: a hostname (or ``*.`` wildcard), the account its hits go to, and the Umami
    website id that names it (``host@<uuid>``: Umami's clients send the id, not always a hostname)."""

    host: str
    account: str = DEFAULT_ACCOUNT
    umami_website: str | None = None

    def matches(self, site: str) -> bool:
        if self.host.startswith("*."):
            return site.endswith(self.host[1:])
        return site == self.host


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``burst`` tokens, refilled at ``burst`` per ``period`` seconds."""

    burst: int
    period: float

    @property
    def per_ms(self) -> float:
        return self.burst / (self.period * 1000)


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_sites(text: str) -> tuple[SiteRule, ...]:
    """ANALYTICS_SITES entries; ValueError naming the bad one."""
    rules = []
    for raw in text.split(","):
        label, sep, host = raw.strip().rpartition("=")
        if not host.strip():
            continue
        account = label.strip() if sep else DEFAULT_ACCOUNT
        host, at, website = host.strip().lower().partition("@")
        host = host.rstrip(".")
        if not _HOST.match(host) or len(host) > 253:
            raise ValueError(f"{host!r} is not a hostname (wildcards: *.example.com)")
        if not ACCOUNT_PATTERN.match(account):
            raise ValueError(f"account {account!r} must be 1-64 letters, digits, '_', '-', '.' or ':'")
        if at and (not _UUID.match(website.strip()) or host.startswith("*.")):
            raise ValueError(f"{raw.strip()!r}: an Umami website id is a UUID after one hostname (host@uuid)")
        rules.append(SiteRule(host, account, website.strip() or None))
    return tuple(rules)


def parse_rate(text: str) -> Rate | None:
    """``N/s``, ``N/m`` or ``N/h`` (burst N, refilled over the period); ``0`` or ``off`` turns the limit off."""
    if text.strip().lower() in ("0", "off"):
        return None
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError("use N/s, N/m or N/h (e.g. 300/m), or off")
    return Rate(int(match.group(1)), _PERIODS[match.group(2)])


# Defaults: a reader never sends 300 page views a minute, and an office behind one NAT address rarely does;
# 6000 a minute (100 a second) per site is far above a small site's peak and bounds what a flood can write.
DEFAULT_RATE_PER_IP = "300/m"
DEFAULT_RATE_PER_SITE = "6000/m"
HIT_RATE_PER_IP = parse_rate(DEFAULT_RATE_PER_IP)
HIT_RATE_PER_SITE = parse_rate(DEFAULT_RATE_PER_SITE)

