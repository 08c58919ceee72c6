"""Umami's collect API (``POST /api/send``), translated: ``{"type": "event", "payload": {...}}`` becomes a beacon
hit (ingest/hits.py), a page view or, with a ``name``, a custom event of that page (a goal), which the ingest
service then admits like a hit (ANALYTICS_SITES, rate limits, bot rules).

The site is the payload's ``hostname`` (Umami's tracker sends ``location.hostname``), as the beacon's is: Umami's
``website`` id is a random UUID that names nothing here, so it is kept as the event's ``umami_website`` property
and never decides where the data goes (a hostname is required). ``url`` (a path, or a whole URL) gives the path and
the utm_* parameters; ``screen`` (``1920x1080``) the screen width; ``language``, ``referrer`` as they say;
``data`` is a custom event's properties. ``type: "identify"`` (session data without a user id) is answered and not
stored.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from ..model.wire import MAX_NAME, MAX_TEXT
from .hits import Hit, as_custom_event, parse_hit, url_fields
from .normalize import MessageError

__all__ = ["translate"]

Text = Annotated[str, Meta(max_length=4 * MAX_TEXT)]
_SCREEN = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*\d{1,5}\s*$")


class UmamiPayload(Struct, kw_only=True):
    """The payload of an Umami event (unknown fields ignored)."""

    website: Annotated[str, Meta(max_length=64)] | None = None
    hostname: Annotated[str, Meta(max_length=253)] | None = None
    url: Text | None = None
    referrer: Text | None = None
    title: Text | None = None
    screen: Annotated[str, Meta(max_length=32)] | None = None
    language: Annotated[str, Meta(max_length=35)] | None = None
    name: Annotated[str, Meta(max_length=MAX_NAME)] | None = None
    data: dict[str, Any] | None = None


class UmamiBody(Struct, kw_only=True):
    type: Literal["event", "identify"] = "event"
    payload: UmamiPayload


def translate(body: Any, received_at: datetime) -> Hit | None:
    """The hit of one Umami event (None when nothing is stored); MessageError names the bad field."""
    try:
        message = msgspec.convert(body, UmamiBody)
    except msgspec.ValidationError as exc:
        raise MessageError(f"Invalid event: {exc}") from None
    if message.type == "identify":
        return None
    payload = message.payload
    if not payload.hostname or not payload.hostname.strip():
        raise MessageError("payload.hostname is required (the site)")
    fields = url_fields(payload.url or "/")
    fields.pop("hostname", None)
    screen = _SCREEN.match(payload.screen or "")
    hit = parse_hit({**fields, "site": payload.hostname, "referrer": payload.referrer, "language": payload.language,
                     "screen_width": int(screen.group(1)) if screen else None}, received_at)
    if payload.name is None:
        return hit
    properties = dict(payload.data or {})
    if payload.website:
        properties["umami_website"] = payload.website
    return as_custom_event(hit, payload.name, properties)
