"""Plausible's events API (``POST /api/event``), translated: what Plausible's tracker script sends becomes a beacon
hit (ingest/hits.py), a page view or, for any other name, a custom event of that page (a goal), which the ingest
service then admits like a hit (the site must be allowed by ANALYTICS_SITES; rate limits and bot rules apply).

The tracker sends short keys (``n``, ``u``, ``d``, ``r``, ``p``, ``$``, ``h``, ``i``); the documented API the long
ones (``name``, ``url``, ``domain``, ``referrer``, ``props``, ``revenue``). ``domain`` is the site (the first of a
comma-separated list); ``url`` gives the path (with its ``#fragment`` when ``h`` says the page routes by hash),
the hostname and the utm_* parameters. ``props`` (an object, or that object as JSON text) and ``revenue``
(``{amount, currency}``) are the event's properties. ``engagement`` events (time on page, scroll depth) are
answered and not stored: nothing reads them here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta, Struct

from ..model.wire import MAX_NAME, MAX_TEXT
from .hits import Hit, as_custom_event, parse_hit, url_fields
from .normalize import MessageError

__all__ = ["IGNORED", "translate"]

# events answered but not stored
IGNORED = frozenset({"engagement"})
Text = Annotated[str, Meta(max_length=4 * MAX_TEXT)]


class PlausibleEvent(Struct, kw_only=True):
    """One event of Plausible's API, in either spelling (unknown fields ignored, as Plausible does)."""

    n: Annotated[str, Meta(max_length=MAX_NAME)] | None = None
    name: Annotated[str, Meta(max_length=MAX_NAME)] | None = None
    u: Text | None = None
    url: Text | None = None
    d: Text | None = None
    domain: Text | None = None
    r: Text | None = None
    referrer: Text | None = None
    p: dict[str, Any] | str | None = None
    props: dict[str, Any] | str | None = None
    revenue: dict[str, Any] | None = msgspec.field(default=None, name="$")
    revenue_long: dict[str, Any] | None = msgspec.field(default=None, name="revenue")
    h: int | bool | None = None
    hashMode: int | bool | None = None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _props(value: dict[str, Any] | str | None) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise MessageError("props must be a JSON object") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError("props must be a JSON object")
    return value


def translate(body: Any, received_at: datetime) -> Hit | None:
    """The hit of one Plausible event (None for an event that is not stored); MessageError names the bad field."""
    try:
        event = msgspec.convert(body, PlausibleEvent)
    except msgspec.ValidationError as exc:
        raise MessageError(f"Invalid event: {exc}") from None
    name = (_first(event.n, event.name) or "").strip()
    url, domain = _first(event.u, event.url), _first(event.d, event.domain)
    if not name:
        raise MessageError("name is required")
    if not url:
        raise MessageError("url is required")
    if not domain or not domain.split(",")[0].strip():
        raise MessageError("domain is required")
    if name in IGNORED:
        return None
    fields = url_fields(url, with_fragment=bool(_first(event.h, event.hashMode)))
    hit = parse_hit({**fields, "site": domain.split(",")[0].strip(), "referrer": _first(event.r, event.referrer)},
                    received_at)
    if name == "pageview":
        return hit
    properties = _props(_first(event.p, event.props))
    revenue = _first(event.revenue, event.revenue_long)
    if revenue is not None:
        properties["revenue"] = {k: revenue.get(k) for k in ("amount", "currency") if k in revenue}
    return as_custom_event(hit, name, properties)
