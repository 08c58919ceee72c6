"""Offline IP -> country lookup. Returns None for private and unknown addresses.

The database is the one the ``iptocc`` wheel embeds (the Regional Internet Registries' delegation
files, refreshed in every release): no download at run time, nothing leaves the instance. It names
the country a block is registered to, which agrees with commercial geolocation for ~95% of IPv4.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

__all__ = ["lookup_country"]


@lru_cache(maxsize=1)
def _database() -> Callable[[str], str | None]:
    # imported on first use: loading the embedded tables costs start-up time a worker may never need
    from iptocc import country_code

    return country_code


def lookup_country(ip: str) -> str | None:
    """ISO 3166 alpha-2 code of ``ip`` (upper case) or None: private, reserved, malformed or unlisted."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except (ValueError, AttributeError):
        return None
    if not address.is_global:
        return None
    code = _database()(str(address))
    return code.upper() if isinstance(code, str) and len(code) == 2 else None
