"""Validation and normalization of incoming messages (native and Segment field names).

A message becomes a flat dict whose keys are the columns of np_analytics_events (or, for
identify, of a user upsert). Pure functions: no I/O, so the rules are easy to test.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "MAX_BATCH",
    "MAX_PROPERTIES_BYTES",
    "MessageError",
    "Normalized",
    "normalize",
    "parse_timestamp",
]

MAX_BATCH = 100
MAX_PROPERTIES_BYTES = 4096
MAX_NAME = 200
MAX_ID = 255
# Namespace for deriving a uuid from a client message id that is not itself a uuid.
MESSAGE_NAMESPACE = uuid.UUID("6f1c7a52-5d0e-4a55-9d46-1f3c3b7f8a10")
SKEW_TOLERANCE_SECONDS = 60
PAGEVIEW = "$pageview"
SCREEN = "$screen"
KINDS = ("track", "page", "identify", "screen", "group", "alias")


class MessageError(ValueError):
    """A message breaks a rule; the text says which and why (it becomes the 400 message)."""


@dataclass
class Normalized:
    """One validated message: the stream payload, its counter identity, and the warnings it raised."""

    record: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def message_id(self) -> str:
        return str(self.record["message_id"])

    @property
    def user_key(self) -> str:
        return str(self.record.get("user_id") or self.record.get("anonymous_id"))


def parse_timestamp(value: Any, name: str) -> datetime:
    """ISO-8601 text (a trailing Z and naive times mean UTC) or Unix seconds; MessageError otherwise."""
    if isinstance(value, bool) or value is None:
        raise MessageError(f"{name} must be an ISO-8601 string")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise MessageError(f"{name} is not a valid Unix time") from None
    if not isinstance(value, str):
        raise MessageError(f"{name} must be an ISO-8601 string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MessageError(f"{name} is not a valid ISO-8601 timestamp: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year < 1970:
        raise MessageError(f"{name} is before 1970")
    return parsed.astimezone(UTC)


def _pick(body: dict[str, Any], *names: str) -> Any:
    for name in names:
        if body.get(name) is not None:
            return body[name]
    return None


def _ident(body: dict[str, Any], snake: str, camel: str) -> str | None:
    value = _pick(body, snake, camel)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MessageError(f"{snake} must be a string")
    text = str(value).strip()
    if not text:
        return None
    if len(text) > MAX_ID:
        raise MessageError(f"{snake} is longer than {MAX_ID} characters")
    return text


def _object(body: dict[str, Any], *names: str) -> dict[str, Any]:
    value = _pick(body, *names)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(f"{names[0]} must be a JSON object")
    return value


def _message_uuid(value: Any) -> str:
    if value is None:
        return str(uuid.uuid4())
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise MessageError("message_id must be a non-empty string")
    text = str(value).strip()
    if len(text) > MAX_ID:
        raise MessageError(f"message_id is longer than {MAX_ID} characters")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(MESSAGE_NAMESPACE, text))


def _truncate(properties: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Keep properties, in order, while they fit in 4 KB of JSON; return what was dropped."""
    encoded = json.dumps(properties, separators=(",", ":"), ensure_ascii=False).encode()
    if len(encoded) <= MAX_PROPERTIES_BYTES:
        return properties, []
    kept: dict[str, Any] = {"$truncated": True}
    dropped: list[str] = []
    size = len(b'{"$truncated":true}')
    for key, value in properties.items():
        item = len(json.dumps({key: value}, separators=(",", ":"), ensure_ascii=False).encode()) - 1
        if size + item <= MAX_PROPERTIES_BYTES:
            kept[key] = value
            size += item
        else:
            dropped.append(str(key))
    return kept, dropped


def _short(text: Any, limit: int = 2048) -> str | None:
    return text[:limit] if isinstance(text, str) and text else None


def normalize(body: Any, kind: str, received_at: datetime, sent_at: Any = None,
              source_account_id: str = "primary") -> Normalized:
    """Validate one message of ``kind`` (track/page/identify/...) and flatten it into a stream record."""
    if not isinstance(body, dict):
        raise MessageError("each message must be a JSON object")
    if kind not in KINDS:
        raise MessageError(f"type must be one of {', '.join(KINDS)}")
    warnings: list[str] = []
    user_id = _ident(body, "user_id", "userId")
    anonymous_id = _ident(body, "anonymous_id", "anonymousId")
    if kind == "identify" and user_id is None:
        raise MessageError("identify needs a user_id")
    if user_id is None and anonymous_id is None:
        raise MessageError("user_id or anonymous_id is required")
    context = _object(body, "context")
    properties = _object(body, "properties", "metadata")

    if kind == "track":
        event = body.get("event")
        if event is None or (isinstance(event, str) and not event.strip()):
            raise MessageError("event is required")
        if not isinstance(event, str):
            raise MessageError("event must be a string")
        event = event.strip()
        if len(event) > MAX_NAME:
            raise MessageError(f"event is longer than {MAX_NAME} characters")
    elif kind in ("page", "screen"):
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise MessageError("name must be a string")
        if name:
            properties = {**properties, "name": name[:MAX_NAME]}
        event = PAGEVIEW if kind == "page" else SCREEN
    else:
        event = f"${kind}"

    # Timestamp: client time, corrected for client clock skew when sentAt is known (as Segment does).
    raw_ts = _pick(body, "timestamp", "originalTimestamp")
    sent = _pick(body, "sentAt", "sent_at")
    sent = sent if sent is not None else sent_at
    ts = received_at
    if raw_ts is not None:
        ts = parse_timestamp(raw_ts, "timestamp")
        if sent is not None:
            skew = received_at - parse_timestamp(sent, "sentAt")
            # Correct only a real clock error: within the tolerance the client's timestamp is kept exactly,
            # so a retry carries the same ts and the (message_id, ts) unique index catches it even after
            # the 24 h Redis dedupe window (corrected times shift by each attempt's network delay).
            if abs(skew.total_seconds()) > SKEW_TOLERANCE_SECONDS:
                ts = ts + skew
        if ts > received_at:
            warnings.append("timestamp is in the future; replaced by server time")
            ts = received_at
    elif sent is not None:
        parse_timestamp(sent, "sentAt")

    message_id = _message_uuid(_pick(body, "message_id", "messageId"))

    if kind == "identify":
        traits = _object(body, "traits") or (context.get("traits") if isinstance(context.get("traits"), dict) else {})
        record: dict[str, Any] = {
            "type": "identify", "message_id": message_id, "ts": ts.isoformat(), "user_id": user_id,
            "anonymous_id": anonymous_id, "traits": traits, "source_account_id": source_account_id,
        }
        return Normalized(record, warnings)

    if kind == "group":
        group_id = _ident(body, "group_id", "groupId")
        if group_id is None:
            raise MessageError("group needs a group_id")
        properties = {**properties, **_object(body, "traits"), "group_id": group_id}
    elif kind == "alias":
        previous_id = _ident(body, "previous_id", "previousId")
        if previous_id is None or user_id is None:
            raise MessageError("alias needs a user_id and a previous_id")
        properties = {**properties, "previous_id": previous_id}

    properties, dropped = _truncate(properties)
    if dropped:
        warnings.append(f"properties exceed 4 KB; truncated (dropped: {', '.join(dropped[:20])})")

    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    url = _short(_pick(properties, "url") or page.get("url"))
    site = _short(_pick(body, "site")) or (urlsplit(url).hostname if url else None)
    path = _short(_pick(properties, "path") or page.get("path")) or (urlsplit(url).path or "/" if url else None)
    screen = context.get("screen") if isinstance(context.get("screen"), dict) else {}
    width = screen.get("width")
    session = _pick(body, "session_id", "sessionId") or context.get("sessionId")
    record = {
        "type": kind,
        "message_id": message_id,
        "ts": ts.isoformat(),
        "source_account_id": source_account_id,
        "event": event,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "session_id": _short(str(session) if session is not None else None, 128),
        "site": site.lower() if site else None,
        "path": path,
        "referrer": _short(_pick(properties, "referrer") or page.get("referrer")),
        "language": _short(context.get("locale"), 35),
        "screen_width": int(width) if isinstance(width, int | float) and 0 < width < 32768 else None,
        "properties": properties or None,
        "context": context or None,
    }
    if warnings:
        record["context"] = {**context, "$warnings": warnings}
    return Normalized(record, warnings)
