"""THE line shape of exported events: one JSON object per line (NDJSON), the Segment-like message of the ingest
API with the original message id. A full export (``GET /analytics/export``, ``nself-analytics export``), a
person's export and the queue part of a backup all write it; ``nself-analytics import`` and ``restore`` read it
back through the ingest path's validation (``ingest.importer``).

A line is what a client would have sent for the stored row: ``type``, ``messageId``, ``timestamp``, ``userId``,
``anonymousId``, ``event`` (track), ``properties``, ``context`` (with ``page.path``/``page.referrer``,
``locale`` and ``screen.width`` from their columns), ``sessionId``, ``site``, ``groupId`` (group) and
``previousId`` (alias). What the ingest path derived from the request and no message carries (the account, the
device, browser and OS of the user agent, the country of the IP, the bot flag and the salted IP hash) is kept
under :data:`STORED_KEY`, so an import stores the row as it was. An identified user is a line of type
``identify`` (its traits and one anonymous id).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from .record import EventRecord, IdentifyRecord

__all__ = ["STORED_KEY", "Stored", "decode_line", "encode_line", "event_line", "identify_line", "identify_message_id"]

STORED_KEY = "$stored"
# The namespace of the message ids of identify lines (an identify's own id is not stored: one is derived from
# the user, the anonymous id and the time, so a second import of the same line is de-duplicated like an event).
IDENTIFY_NAMESPACE = uuid.UUID("0d7f3c1e-4b8e-4f7a-9d0b-6a1e2f3c4d5e")
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])


class Stored(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the ingest path derived for a row that no message field carries."""

    source_account_id: str = "primary"
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    country: str | None = None
    is_bot: bool = False
    ip_hash: str | None = None
    traits_once: dict[str, Any] | None = None  # an identify's once-only traits (PostHog's $set_once), if any


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _context(record: EventRecord) -> dict[str, Any]:
    """The stored context with the columns a client sends in it put back (page, locale, screen)."""
    context = dict(record.context or {})
    page = dict(context["page"]) if isinstance(context.get("page"), dict) else {}
    _put(page, "path", record.path)
    _put(page, "referrer", record.referrer)
    if page:
        context["page"] = page
    _put(context, "locale", record.language)
    if record.screen_width is not None:
        screen = dict(context["screen"]) if isinstance(context.get("screen"), dict) else {}
        context["screen"] = {**screen, "width": record.screen_width}
    return context


def event_line(record: EventRecord) -> dict[str, Any]:
    """A stored event (or a queued one) as its export line."""
    line: dict[str, Any] = {"type": record.type, "messageId": str(record.message_id),
                            "timestamp": record.ts.isoformat()}
    _put(line, "userId", record.user_id)
    _put(line, "anonymousId", record.anonymous_id)
    if record.type == "track":
        line["event"] = record.event
    properties = record.properties or {}
    if record.type == "group":
        _put(line, "groupId", properties.get("group_id"))
    elif record.type == "alias":
        _put(line, "previousId", properties.get("previous_id"))
    if properties:
        line["properties"] = properties
    context = _context(record)
    if context:
        line["context"] = context
    _put(line, "sessionId", record.session_id)
    _put(line, "site", record.site)
    line[STORED_KEY] = msgspec.to_builtins(Stored(
        source_account_id=record.source_account_id, device=record.device, browser=record.browser, os=record.os,
        country=record.country, is_bot=record.is_bot, ip_hash=record.ip_hash))
    return line


def identify_message_id(account: str, user_id: str, anonymous_id: str | None, ts: datetime) -> uuid.UUID:
    """The stable id of an identify line (see IDENTIFY_NAMESPACE)."""
    return uuid.uuid5(IDENTIFY_NAMESPACE, f"{account}\x00{user_id}\x00{anonymous_id or ''}\x00{ts.isoformat()}")


def identify_line(record: IdentifyRecord, *, stable_id: bool = False) -> dict[str, Any]:
    """An identify (queued, or one of a stored user's: ``stable_id`` derives its message id) as its line."""
    message_id = (identify_message_id(record.source_account_id, record.user_id, record.anonymous_id, record.ts)
                  if stable_id else record.message_id)
    line: dict[str, Any] = {"type": "identify", "messageId": str(message_id), "timestamp": record.ts.isoformat(),
                            "userId": record.user_id}
    _put(line, "anonymousId", record.anonymous_id)
    if record.traits:
        line["traits"] = record.traits
    line[STORED_KEY] = msgspec.to_builtins(Stored(source_account_id=record.source_account_id,
                                                   traits_once=record.traits_once or None))
    return line


def encode_line(line: dict[str, Any]) -> bytes:
    """One NDJSON line (with its newline)."""
    return _ENCODER.encode(line) + b"\n"


def decode_line(text: bytes | str) -> tuple[dict[str, Any], Stored | None]:
    """A line as (the message body, what was stored beside it: None when the line has no ``$stored``);
    msgspec.DecodeError / ValidationError when it is not a JSON object of that shape."""
    body = _DECODER.decode(text)
    if STORED_KEY not in body:
        return body, None
    return body, msgspec.convert(body.pop(STORED_KEY), Stored)
