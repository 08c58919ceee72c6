"""Validation and normalization of incoming messages (native and Segment field names).

A body is validated by the Structs of ``model.wire`` (:func:`validate`, :func:`validate_batch`), then
normalized into a ``model.record`` record (:func:`to_record`): an :class:`EventRecord` whose fields are
the columns of np_analytics_events, or an :class:`IdentifyRecord` (a user upsert). Pure functions:
no I/O, so the rules are easy to test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ..model.explain import explain
from ..model.record import EventRecord, IdentifyRecord
from ..model.wire import (
    KINDS,
    MAX_BATCH,
    MAX_ID,
    MAX_NAME,
    MAX_SESSION,
    MAX_TEXT,
    Alias,
    Batch,
    Group,
    Identify,
    Message,
    MessageError,
    Page,
    Screen,
    Track,
    first,
)

__all__ = [
    "KINDS",
    "MAX_BATCH",
    "MAX_PROPERTIES_BYTES",
    "PAGEVIEW",
    "MessageError",
    "Normalized",
    "normalize",
    "parse_timestamp",
    "to_record",
    "truncate_properties",
    "validate",
    "validate_batch",
]

MAX_PROPERTIES_BYTES = 4096
# context is capped like properties (a batch's shared context once, before it is merged into each message)
MAX_CONTEXT_BYTES = 4096
# Namespace for deriving a uuid from a client message id that is not itself a uuid.
MESSAGE_NAMESPACE = uuid.UUID("6f1c7a52-5d0e-4a55-9d46-1f3c3b7f8a10")
SKEW_TOLERANCE_SECONDS = 60
# The last year a timestamp or sentAt may name (before 1970 is refused as well).
MAX_YEAR = 2999
PAGEVIEW = "$pageview"
SCREEN = "$screen"
# the names the message kinds other than track are stored under: a closed set, so they never count against an
# account's ANALYTICS_MAX_EVENT_NAMES or a public key's ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY (ingest/queue.py)
FIXED_NAMES = frozenset({PAGEVIEW, SCREEN, "$identify", "$alias", "$group"})
_TRUNCATED_OVERHEAD = len(b'{"$truncated":true}')


@dataclass
class Normalized:
    """One validated message: the stream payload, its counter identity, and the warnings it raised.
    ``too_old``: its time is before the retention window, so it is not stored (a warning says so)."""

    record: EventRecord | IdentifyRecord
    warnings: list[str] = field(default_factory=list)
    too_old: bool = False

    @property
    def message_id(self) -> str:
        return str(self.record.message_id)

    @property
    def user_key(self) -> str:
        return str(self.record.user_id or self.record.anonymous_id)


# --- validation: the Structs of model.wire decide ---------------------------------------------------------

def validate(body: Any, kind: str) -> Message:
    """``body`` as the message Struct of ``kind``; MessageError with the client's message otherwise."""
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MessageError(f"type must be one of {', '.join(KINDS)}")
    try:
        return msgspec.convert(body, cls)
    except msgspec.ValidationError as exc:
        raise MessageError(explain(exc, cls, body).message) from None


def validate_batch(body: dict[str, Any]) -> Batch:
    """A batch body as a :class:`Batch`, its context merged into each message; MessageError (with the
    index of the first bad message) otherwise."""
    try:
        batch = msgspec.convert(body, Batch)
    except msgspec.ValidationError as exc:
        explained = explain(exc, Batch, body)
        if explained.index is None:
            raise MessageError(explained.message) from None
        raise MessageError(f"batch[{explained.index}]: {explained.message}", explained.index) from None
    if batch.context:
        # capped once here (4 KB), then merged: each message's context is capped again in to_record
        shared, _dropped = _truncate(batch.context, MAX_CONTEXT_BYTES)
        batch.context = shared
        for message in batch.batch:
            message.context = {**shared, **(message.context or {})}
    return batch


def has_timestamp(message: Message) -> bool:
    """Whether the client gave the message a time (else it gets the server's, in request order)."""
    return first(message.timestamp, message.originalTimestamp) is not None


# --- normalization: small steps, each one field or group of fields -------------------------------------------

def parse_timestamp(value: Any, name: str) -> datetime:
    """ISO-8601 text (a trailing Z and naive times mean UTC) or Unix seconds, between 1970 and the end of
    MAX_YEAR; MessageError otherwise (times outside those bounds are no event's, and clock arithmetic on them
    can overflow)."""
    if isinstance(value, bool) or value is None:
        raise MessageError(f"{name} must be an ISO-8601 string")
    if isinstance(value, int | float):
        try:
            parsed = datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise MessageError(f"{name} is not a valid Unix time") from None
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            raise MessageError(f"{name} is not a valid ISO-8601 timestamp: {value[:64]!r}") from None
    else:
        raise MessageError(f"{name} must be an ISO-8601 string")
    if parsed.year < 1970:
        raise MessageError(f"{name} is before 1970")
    if parsed.year > MAX_YEAR:
        raise MessageError(f"{name} is after {MAX_YEAR}")
    return parsed


def _ident(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _message_uuid(value: str | int | None) -> uuid.UUID:
    if value is None:
        return uuid.uuid4()
    text = str(value).strip()
    if not text:
        raise MessageError("message_id must be a non-empty string")
    if len(text) > MAX_ID:
        raise MessageError(f"message_id is longer than {MAX_ID} characters")
    try:
        return uuid.UUID(text)
    except ValueError:
        return uuid.uuid5(MESSAGE_NAMESPACE, text)


def _timestamp(message: Message, received_at: datetime, sent_at: Any, warnings: list[str],
               oldest: datetime | None, implicit_ts: datetime | None) -> datetime:
    """Client time, corrected for client clock skew when sentAt is known (as Segment does), within
    ``[oldest, received_at]``: a future time becomes server time (with a warning), and the skew correction never
    moves a time out of the window. No client time: ``implicit_ts`` (the request's time, in request order)."""
    raw_ts = first(message.timestamp, message.originalTimestamp)
    sent = first(message.sentAt, message.sent_at, sent_at)
    if raw_ts is None:
        if sent is not None:
            parse_timestamp(sent, "sentAt")
        return implicit_ts or received_at
    ts = parse_timestamp(raw_ts, "timestamp")
    if sent is not None:
        skew = received_at - parse_timestamp(sent, "sentAt")
        # Correct only a real clock error: within the tolerance the client's timestamp is kept exactly,
        # so a retry carries the same ts and the (message_id, ts) unique index catches it even after
        # the 24 h Redis dedupe window (corrected times shift by each attempt's network delay).
        if abs(skew.total_seconds()) > SKEW_TOLERANCE_SECONDS:
            corrected = ts + skew
            if oldest is not None and corrected < oldest <= ts:
                corrected = oldest  # the correction may not push an event out of the window
            ts = corrected
    if ts > received_at:
        warnings.append("timestamp is in the future; replaced by server time")
        return received_at
    return ts


def _event_name(message: Message) -> str:
    if isinstance(message, Track):
        return message.event.strip()
    if isinstance(message, Page):
        return PAGEVIEW
    if isinstance(message, Screen):
        return SCREEN
    return f"${message.kind}"


def _properties(message: Message) -> dict[str, Any]:
    """The message's properties, with what its kind adds (a page's name, a group's traits, a previous id)."""
    properties = first(message.properties, message.metadata) or {}
    if isinstance(message, Page | Screen) and message.name:
        properties = {**properties, "name": message.name[:MAX_NAME]}
    elif isinstance(message, Group):
        properties = {**properties, **(message.traits or {}), "group_id": _ident(first(message.group_id,
                                                                                       message.groupId))}
    elif isinstance(message, Alias):
        properties = {**properties, "previous_id": _ident(first(message.previous_id, message.previousId))}
    return properties


def _truncate(properties: dict[str, Any], limit: int = MAX_PROPERTIES_BYTES) -> tuple[dict[str, Any], list[str]]:
    """Keep keys, in order, while they fit in ``limit`` bytes of JSON; return what was dropped."""
    if len(msgspec.json.encode(properties)) <= limit:
        return properties, []
    kept: dict[str, Any] = {"$truncated": True}
    dropped: list[str] = []
    size = _TRUNCATED_OVERHEAD
    for key, value in properties.items():
        item = len(msgspec.json.encode({key: value})) - 1
        if size + item <= limit:
            kept[key] = value
            size += item
        else:
            dropped.append(str(key))
    return kept, dropped


def truncate_properties(properties: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Properties kept within 4 KB of JSON (keys in order, ``$truncated`` marks a cut), and the dropped keys."""
    return _truncate(properties)


def _short(text: Any, limit: int = MAX_TEXT) -> str | None:
    return text[:limit] if isinstance(text, str) and text else None


def _sub(context: dict[str, Any], name: str) -> dict[str, Any]:
    value = context.get(name)
    return value if isinstance(value, dict) else {}


def _url_parts(url: str | None, field: str) -> tuple[str | None, str | None]:
    """(hostname, path) of a page URL; MessageError when it cannot be parsed (e.g. ``http://[::1``)."""
    if not url:
        return None, None
    try:
        parts = urlsplit(url)
        return parts.hostname, parts.path or "/"
    except ValueError:
        raise MessageError(f"{field} is not a valid URL") from None


def _page_fields(message: Message, context: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """site, path and referrer: from properties, else context.page; site and path default from the URL."""
    page = _sub(context, "page")
    url = _short(properties.get("url") or page.get("url"))
    url_host, url_path = _url_parts(url, "properties.url" if properties.get("url") else "context.page.url")
    site = _short(message.site) or url_host
    path = _short(properties.get("path") or page.get("path")) or url_path
    referrer = _short(properties.get("referrer") or page.get("referrer"))
    return {"site": site.lower() if site else None, "path": path, "referrer": referrer}


def _client_fields(message: Message, context: dict[str, Any]) -> dict[str, Any]:
    """session_id, language and screen_width: what the client tells about itself."""
    session = first(message.session_id, message.sessionId, context.get("sessionId"))
    width = _sub(context, "screen").get("width")
    return {
        "session_id": _short(str(session) if session is not None else None, MAX_SESSION),
        "language": _short(context.get("locale"), 35),
        "screen_width": int(width) if isinstance(width, int | float) and 0 < width < 32768 else None,
    }


def _identify_record(message: Identify, ts: datetime, message_id: uuid.UUID, account: str) -> IdentifyRecord:
    context = message.context or {}
    traits = message.traits or _sub(context, "traits")
    user_id = _ident(first(message.user_id, message.userId))
    assert user_id is not None  # Identify.__post_init__ requires it
    return IdentifyRecord(message_id=message_id, ts=ts, source_account_id=account, user_id=user_id,
                          anonymous_id=_ident(first(message.anonymous_id, message.anonymousId)), traits=traits)


def to_record(message: Message, received_at: datetime, sent_at: Any = None,
              source_account_id: str = "primary", *, retention_days: int | None = None,
              implicit_ts: datetime | None = None) -> Normalized:
    """Normalize a validated message into its record (the stream payload); MessageError for a bad timestamp.
    With ``retention_days``, a time before the retention window marks the result ``too_old`` (not stored)."""
    warnings: list[str] = []
    oldest = received_at - timedelta(days=retention_days) if retention_days is not None else None
    ts = _timestamp(message, received_at, sent_at, warnings, oldest, implicit_ts)
    message_id = _message_uuid(first(message.message_id, message.messageId))
    too_old = oldest is not None and ts < oldest
    if too_old:
        warnings.append(f"timestamp {ts.isoformat()} is older than the retention window ({retention_days} days); "
                        "not stored")
    if isinstance(message, Identify):
        return Normalized(_identify_record(message, ts, message_id, source_account_id), warnings)
    properties, dropped = _truncate(_properties(message))
    if dropped:
        warnings.append(f"properties exceed 4 KB; truncated (dropped: {', '.join(dropped[:20])})")
    full_context = message.context or {}
    context, dropped = _truncate(full_context, MAX_CONTEXT_BYTES)
    if dropped:
        warnings.append(f"context exceeds 4 KB; truncated (dropped: {', '.join(dropped[:20])})")
    record = EventRecord(
        type=message.kind, message_id=message_id, ts=ts, source_account_id=source_account_id,
        event=_event_name(message), user_id=_ident(first(message.user_id, message.userId)),
        anonymous_id=_ident(first(message.anonymous_id, message.anonymousId)),
        properties=properties or None, context=({**context, "$warnings": warnings} if warnings else context) or None,
        **_page_fields(message, full_context, properties), **_client_fields(message, full_context),
    )
    return Normalized(record, warnings, too_old)


def normalize(body: Any, kind: str, received_at: datetime, sent_at: Any = None,
              source_account_id: str = "primary", *, retention_days: int | None = None) -> Normalized:
    """Validate one message of ``kind`` (track/page/identify/...) and normalize it into its record."""
    return to_record(validate(body, kind), received_at, sent_at, source_account_id, retention_days=retention_days)

