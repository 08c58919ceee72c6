"""Page hits of the beacon (``POST /hit``): validation into a page record, and flood marking.

A hit becomes the same record as ``/page`` (type ``page``, event ``$pageview``) so web and product
analytics share one table. Hits are kept lean (the spec aims far below ~200 bytes per hit): no
context, and properties only for UTM parameters and a hostname that differs from the site.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis

from ..model.explain import explain
from ..model.record import EventRecord
from ..model.wire import MAX_NAME
from ..model.wire import Hit as HitBody
from .normalize import PAGEVIEW, MessageError, Normalized, truncate_properties
from .redis_keys import PREFIX

__all__ = ["FLOOD_LIMIT_PER_MINUTE", "Hit", "as_custom_event", "count_hit", "derived_session", "parse_hit",
           "url_fields", "validate_hit"]

# Hits per session per minute, one key per (site, session, minute). TTL: 120 s, the minute itself
# plus late arrivals; nothing else reads it.
FLOOD_PREFIX = PREFIX + "hits:"
FLOOD_TTL_SECONDS = 120
# Beyond this many page views in one minute a session is a script, not a reader: its hits are kept
# but marked as bot traffic, so stats leave them out by default.
FLOOD_LIMIT_PER_MINUTE = 60

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_URL = 1024
MAX_UTM = 200
MAX_SESSION = 128
MAX_ANONYMOUS_ID = 255  # as any message's anonymous id (ingest/normalize.py)
_HOST = re.compile(r"^(?:[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?|\[[0-9a-f:.]+\])$")


class Hit(Normalized):
    """A normalized hit: sampling keeps or drops a whole session together."""

    @property
    def user_key(self) -> str:
        return str(cast(EventRecord, self.record).session_id)


def _text(value: str | None, limit: int) -> str | None:
    """``value`` without surrounding spaces, at most ``limit`` characters; None when empty."""
    if value is None:
        return None
    value = value.strip()
    return value[:limit] if value else None


def _host(value: str | None, name: str) -> str | None:
    value = _text(value, 300)
    if value is None:
        return None
    value = value.lower()
    if len(value) > 253 or not _HOST.match(value):
        raise MessageError(f"{name} must be a hostname such as example.com")
    return value.rstrip(".")


def _referrer(value: str | None, own_hosts: set[str]) -> str | None:
    """The referring URL without query and fragment (they can hold personal data); None when internal."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if not parts.scheme or not host or host in own_hosts:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", "", ""))[:MAX_URL]


def _anonymous_id(hit: HitBody) -> str | None:
    value = _text(hit.anonymous_id, MAX_ANONYMOUS_ID + 1)
    if value is not None and len(value) > MAX_ANONYMOUS_ID:
        raise MessageError(f"anonymous_id is longer than {MAX_ANONYMOUS_ID} characters")
    return value


def validate_hit(body: Any) -> HitBody:
    """``body`` as the :class:`model.wire.Hit` Struct; MessageError with the client's message otherwise."""
    try:
        return msgspec.convert(body, HitBody)
    except msgspec.ValidationError as exc:
        raise MessageError(explain(exc, HitBody, body).message) from None


def parse_hit(body: Any, received_at: datetime) -> Hit:
    """Validate a beacon hit (the Struct :class:`model.wire.Hit`) and flatten it into a page record;
    MessageError names the bad field."""
    hit = validate_hit(body)
    site = _host(hit.site, "site")
    if site is None:
        raise MessageError("site is required (the page's hostname)")
    hostname = _host(hit.hostname, "hostname") or site
    path = _text(hit.path, MAX_URL) or "/"
    if not path.startswith("/"):
        raise MessageError("path must start with /")
    width = hit.screen_width
    properties: dict[str, Any] = {}
    for key in UTM_KEYS:
        value = _text(getattr(hit, key), MAX_UTM)
        if value:
            properties[key] = value
    if hostname != site:
        properties["hostname"] = hostname
    record = EventRecord(
        type="page",
        message_id=uuid.uuid4(),
        ts=received_at,
        event=PAGEVIEW,
        # the visitor's id the beacon keeps in localStorage (shared with the browser SDK): the visitor across
        # sessions and days, and the id identify links to a user (store/identity.py)
        anonymous_id=_anonymous_id(hit),
        session_id=_text(hit.session_id, MAX_SESSION),
        site=site,
        path=path,
        referrer=_referrer(_text(hit.referrer, 4 * MAX_URL), {site, hostname}),
        language=_text(hit.language, 35),
        screen_width=int(width) if width is not None and 0 < width < 32768 else None,
        is_bot=bool(hit.webdriver),
        properties=properties or None,
    )
    return Hit(record)


def url_fields(url: str, with_fragment: bool = False) -> dict[str, str]:
    """The beacon's fields a page URL (or a bare path) gives: hostname, path (and its ``#fragment`` with
    ``with_fragment``, for hash-routed pages) and its utm_* parameters; MessageError when it cannot be parsed."""
    try:
        parts = urlsplit(url.strip())
        query = parse_qs(parts.query, max_num_fields=100)
    except ValueError:
        raise MessageError("url is not a valid URL") from None
    fields = {key: values[0] for key, values in query.items() if key in UTM_KEYS and values}
    path = (parts.path or "/") + (f"#{parts.fragment}" if with_fragment and parts.fragment else "")
    fields["path"] = path if path.startswith("/") else "/" + path
    if parts.hostname:
        fields["hostname"] = parts.hostname
    return fields


def as_custom_event(hit: Hit, name: str, properties: dict[str, Any]) -> Hit:
    """The hit as a custom event ``name`` of its page (a goal), carrying ``properties`` (at most 4 KB kept)."""
    name = name.strip()
    if not name:
        raise MessageError("the event name is required")
    if len(name) > MAX_NAME:
        raise MessageError(f"the event name is longer than {MAX_NAME} characters")
    record = hit.record
    assert isinstance(record, EventRecord)
    kept, dropped = truncate_properties({**(record.properties or {}), **properties})
    record.type, record.event, record.properties = "track", name, kept or None
    if dropped:
        hit.warnings.append(f"properties exceed 4 KB; truncated (dropped: {', '.join(dropped[:20])})")
    return hit


def derived_session(salt: str, site: str, ip: str | None, user_agent: str | None) -> str:
    """A stand-in session id for a hit sent without one: the visitor's salted IP and browser, per day."""
    digest = hashlib.sha256(f"{salt}|{site}|{ip or ''}|{user_agent or ''}".encode()).hexdigest()
    return "h" + digest[:20]


async def count_hit(client: aioredis.Redis, site: str, session_id: str, now: datetime) -> int:
    """Count this hit against its session's minute; return the count so far in that minute."""
    key = f"{FLOOD_PREFIX}{site}:{session_id}:{int(now.timestamp()) // 60}"
    async with client.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, FLOOD_TTL_SECONDS)
        count, _ = await pipe.execute()
    return int(count)
