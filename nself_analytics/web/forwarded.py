"""X-Forwarded-For / -Host / -Proto, believed only from ANALYTICS_TRUSTED_PROXIES, for every route (edge.py), here only.

The edge middleware replaces the request's remote address, host and scheme with the forwarded ones when (and only
when) the peer is a trusted proxy; everything else (client IP for geo and visitor hashes, URLs in /openapi.json
and /mcp) reads ``request.remote``, ``request.host`` and ``request.scheme`` and never a forwarding header.
"""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

from ..model.settings_values import DEFAULT_TRUSTED_PROXIES, TRUSTED_PROXIES, Network, parse_networks

__all__ = ["DEFAULT_TRUSTED_PROXIES", "TRUSTED_PROXIES", "Network", "forwarded_request", "parse_networks"]

MAX_FORWARDED_ENTRIES = 20  # a longer X-Forwarded-For is cut: nobody chains that many proxies


def _trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


@functools.lru_cache(maxsize=1024)  # every request asks for its peer: parsing it was 7% of /track (py-spy)
def _trusted_peer(address: str | None, networks: tuple[Network, ...]) -> bool:
    return _trusted(address, networks)


def client_address(peer: str | None, forwarded_for: str, networks: tuple[Network, ...]) -> str | None:
    """The first address from the right of ``peer`` + X-Forwarded-For that is not a trusted proxy."""
    if not forwarded_for or not _trusted_peer(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()][-MAX_FORWARDED_ENTRIES:]
    for hop in reversed(hops):
        if not _valid_ip(hop):
            return peer  # garbage in the chain: believe only the peer
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def forwarded_request(request: web.Request, networks: tuple[Network, ...]) -> web.Request:
    """``request``, or a clone with the forwarded client address, host and scheme when the peer is trusted."""
    if not _trusted_peer(request.remote, networks):
        return request
    changes: dict[str, str] = {}
    forwarded_for = request.headers.get("X-Forwarded-For") or request.headers.get("X-Real-IP") or ""
    remote = client_address(request.remote, forwarded_for, networks)
    if remote and remote != request.remote:
        changes["remote"] = remote
    host = _first(request.headers.get("X-Forwarded-Host", ""))
    if host:
        changes["host"] = host
    proto = _first(request.headers.get("X-Forwarded-Proto", "")).lower()
    if proto in ("http", "https"):
        changes["scheme"] = proto
    return request.clone(**changes) if changes else request  # type: ignore[arg-type]
