"""Umami's collect API (``POST /api/send``), translated: ``{"type": "event", "payload": {...}}`` becomes a beacon
hit (ingest/hits.py), a page view or, with a ``name``, a custom event of that page (a goal), which the ingest
service then admits like a hit (ANALYTICS_SITES, rate limits, bot rules).

The site is the one ANALYTICS_SITES names for the payload's ``website`` id (an entry ``host@<uuid>``), else the
payload's ``hostname`` (Umami's tracker sends ``location.hostname``, as the beacon does), else the event is a 400:
Umami's ``umami.track('name')`` from a server sends only the website id, so a server's events need the entry. A
website id is no credential (it ships in pages): the site it names is still admitted like a beacon hit's. ``url``
(a path, or a whole URL) gives the path and the utm_* parameters; ``screen`` (``1920x1080``) the screen width;
``language`` and ``referrer`` as they say; ``data`` is a custom event's properties, with the website id as
``umami_website``. ``type: "identify"`` (session data without a user id) is answered and not stored.
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
from .site_guard import SiteRule, umami_site

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


def translate(body: Any, received_at: datetime, rules: tuple[SiteRule, ...] = ()) -> Hit | None:
    """The hit of one Umami event (None when nothing is stored), its site named by ``rules`` (ANALYTICS_SITES) for
    its website id, else by its hostname; MessageError names the bad field."""
    try:
        message = msgspec.convert(body, UmamiBody)
    except msgspec.ValidationError as exc:
        raise MessageError(f"Invalid event: {exc}") from None
    if message.type == "identify":
        return None
    payload = message.payload
    site = umami_site(rules, payload.website) if payload.website else None
    hostname = payload.hostname.strip() if payload.hostname else None
    if not site and not hostname:
        raise MessageError("payload.hostname is required (the site), or list the website id in ANALYTICS_SITES "
                           "(host@website-id)")
    fields = url_fields(payload.url or "/")
    fields.pop("hostname", None)
    if hostname and site:
        fields["hostname"] = hostname
    screen = _SCREEN.match(payload.screen or "")
    hit = parse_hit({**fields, "site": site or hostname, "referrer": payload.referrer, "language": payload.language,
                     "screen_width": int(screen.group(1)) if screen else None}, received_at)
    if payload.name is None:
        return hit
    properties = dict(payload.data or {})
    if payload.website:
        properties["umami_website"] = payload.website
    return as_custom_event(hit, payload.name, properties)
