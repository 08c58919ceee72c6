"""Offline IP -> country lookup. Returns None for private and unknown addresses."""

from __future__ import annotations

import ipaddress

__all__ = ["lookup_country"]


def lookup_country(ip: str) -> str | None:
    """ISO 3166 alpha-2 code of ``ip`` or None. (An offline database is wired in by the web-analytics work.)"""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if address.is_private or address.is_loopback or address.is_reserved or address.is_link_local:
        return None
    return None
