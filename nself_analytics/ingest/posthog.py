"""PostHog's capture API, translated: a request body (already unwrapped from its encodings by web/posthog_body.py)
becomes the messages of model/wire.py, normalized by ingest/normalize.py like any other, for the ingest service.

What each PostHog event becomes:

- ``$pageview``: a page view (``$current_url``, ``$pathname``, ``$referrer``: the web stats count it);
  ``$screen``: a screen view (``$screen_name``);
- ``$identify``: an identify of ``distinct_id`` with ``$anon_distinct_id`` as its anonymous id and, as traits,
  ``$set`` and ``$set_once`` (each from the top level and from ``properties``, merged); a ``$set_once`` trait is
  stored only where the user has none of that name (IdentifyRecord.traits_once);
- ``$set`` and ``$set_once``: an identify of ``distinct_id`` carrying those traits;
- ``$create_alias``: links ``properties.alias`` and the current id (``properties.distinct_id``, else
  ``distinct_id``). Our alias merges its previous id's person into its user's, and refuses when that previous id's
  person is identified (store/identity.py), so the identified side is the user: the current id when the browser
  SDK says it is identified (``$is_identified``: ``posthog.alias(new_id)`` after ``identify``), else ``alias``
  (posthog-python's ``alias(previous_id, distinct_id)`` and posthog-node's ``alias({distinctId, alias})`` name the
  user ``alias`` and the previous id ``distinct_id``, as Segment's ``alias(userId, previousId)`` does);
- ``$groupidentify``: a group: ``$group_key`` is the group id; ``$group_type`` and ``$group_set`` are its traits;
- anything else: a track of that event name.

``$session_id`` is the session. ``distinct_id`` is the person: a user id, or an anonymous id when the browser SDK
says the visitor is not identified (``$is_identified`` false, or ``distinct_id`` equal to ``$device_id``). ``uuid``
is the message id (de-duplicated as every message id is). Time: ``timestamp`` corrected by the clock skew
``now - sent_at`` (PostHog's ``now + (timestamp - sent_at)``; ``sent_at`` from the batch, else the query's
``sent_at``/``_`` in milliseconds), as ingest/normalize.py corrects every client clock (a skew within its tolerance
keeps the client's time, so a retry keeps its time and is caught as a duplicate); else ``now - offset`` ms; else
now, in request order. Every bound of the other ingest paths applies: MAX_BATCH events a request (TooLarge past it,
a 413, so posthog-node halves its batch), the field lengths of model/wire.py, 4 KB of properties, the time window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ..model.record import IdentifyRecord
from ..model.wire import MAX_BATCH, MAX_SESSION, MessageError
from ..model.wire_posthog import PostHogBatch, PostHogEvent
from .normalize import Normalized, to_record, validate
from .refusals import TooLarge

__all__ = ["translate"]

# Properties not kept as properties: the key (a credential); what moves to context or a column (the IP and user
# agent, read by enrichment, which never stores a raw IP when hashing is on; the screen, language, browser, OS and
# device, which enrichment derives); and the browser SDK's own bookkeeping (about 1 KB an event otherwise).
_DROPPED = frozenset({
    "token", "distinct_id", "$set", "$set_once", "$anon_distinct_id", "$ip", "$raw_user_agent", "$lib", "$lib_version",
    "$os", "$os_version", "$browser", "$browser_version", "$device_type", "$screen_width", "$screen_height",
    "$viewport_width", "$viewport_height", "$browser_language", "$browser_language_prefix", "$timezone_offset",
    "$insert_id", "$time", "$is_identified", "$process_person_profile", "$lib_custom_api_host", "$config_defaults",
    "$sdk_dist_channel", "$initialization_time", "$recording_status", "$configured_session_timeout_ms",
    "$lib_rate_limit_remaining_tokens", "$sdk_debug_extensions_init_method", "$sdk_debug_extensions_init_time_ms",
})


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _events(body: Any) -> tuple[list[Any], Any]:
    """The raw events of a body (a batch, a bare array, or one event) and the batch's ``sent_at``."""
    if isinstance(body, list):
        return body, None
    if "event" in body and "batch" not in body:
        return [body], None
    try:
        batch = msgspec.convert(body, PostHogBatch)
    except msgspec.ValidationError as exc:
        raise MessageError(f"Invalid batch: {exc}") from None
    events = batch.batch if batch.batch is not None else batch.data
    if events is None:
        raise MessageError("batch is required: an array of events (or send one event, or a bare array)")
    return events, batch.sent_at


def _who(event: PostHogEvent, properties: dict[str, Any]) -> dict[str, str]:
    distinct = event.distinct_id if event.distinct_id is not None else properties.get("distinct_id")
    if isinstance(distinct, bool) or not isinstance(distinct, str | int) or not str(distinct).strip():
        raise MessageError("distinct_id is required")
    text = str(distinct).strip()
    identified = properties.get("$is_identified")
    anonymous = identified is False or (identified is not True and properties.get("$device_id") == text)
    return {"anonymous_id" if anonymous else "user_id": text}


def _context(properties: dict[str, Any]) -> dict[str, Any]:
    """What the browser SDK tells about the page and the client, where the ingest service reads it."""
    referrer = _text(properties.get("$referrer"))
    page = {"url": _text(properties.get("$current_url")), "path": _text(properties.get("$pathname")),
            "referrer": None if referrer == "$direct" else referrer}
    context: dict[str, Any] = {"page": {k: v for k, v in page.items() if v}}
    width = properties.get("$screen_width")
    if isinstance(width, int | float) and not isinstance(width, bool):
        context["screen"] = {"width": width}
    for key, name in (("locale", "$browser_language"), ("userAgent", "$raw_user_agent"), ("ip", "$ip")):
        if _text(properties.get(name)):
            context[key] = properties[name]
    library = {"name": _text(properties.get("$lib")), "version": _text(properties.get("$lib_version"))}
    if library["name"]:
        context["library"] = {k: v for k, v in library.items() if v}
    return {k: v for k, v in context.items() if v}


def _traits(event: PostHogEvent, properties: dict[str, Any], name: str) -> dict[str, Any]:
    """``$set`` or ``$set_once``: from the top level, then from properties (which win)."""
    top = {"$set": event.set, "$set_once": event.set_once}
    return {**_obj(top.get(name)), **_obj(properties.get(name))}


def _message(event: PostHogEvent) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The kind and the body (model/wire.py's fields) of one PostHog event, and its once-only traits."""
    given = _obj(event.properties)
    properties = {k: v for k, v in given.items() if k not in _DROPPED}
    name = event.event
    message: dict[str, Any] = {**_who(event, given), "context": _context(given)}
    if event.uuid is not None:
        message["message_id"] = event.uuid
    session = given.get("$session_id")
    if isinstance(session, str) and session:
        message["session_id"] = session[:MAX_SESSION]
    if name == "$identify":
        user = message.pop("user_id", None) or message.pop("anonymous_id")
        anonymous = event.anon_distinct_id if event.anon_distinct_id is not None else given.get("$anon_distinct_id")
        message.update(user_id=user, traits=_traits(event, given, "$set"))
        if isinstance(anonymous, str | int) and not isinstance(anonymous, bool) and str(anonymous).strip():
            message["anonymous_id"] = str(anonymous).strip()
        return "identify", message, _traits(event, given, "$set_once")
    if name in ("$set", "$set_once"):
        user = message.pop("user_id", None) or message.pop("anonymous_id")
        return "identify", {**message, "user_id": user, "traits": _traits(event, given, "$set")}, _traits(
            event, given, "$set_once")
    message["properties"] = properties
    if name == "$pageview":
        return "page", message, {}
    if name == "$screen":
        return "screen", {**message, "name": _text(given.get("$screen_name"))}, {}
    if name == "$create_alias":
        alias = given.get("alias")
        if not isinstance(alias, str | int) or isinstance(alias, bool) or not str(alias).strip():
            raise MessageError("$create_alias needs properties.alias")
        current = message.pop("user_id", None) or message.pop("anonymous_id")
        original = given.get("distinct_id")  # posthog-js: alias(alias, original) sends the original here
        if isinstance(original, str | int) and not isinstance(original, bool) and str(original).strip():
            current = str(original).strip()
        if given.get("$is_identified") is True:  # the browser's identified user: the alias joins that person
            return "alias", {**message, "user_id": current, "previous_id": str(alias).strip()}, {}
        return "alias", {**message, "user_id": str(alias).strip(), "previous_id": current}, {}
    if name == "$groupidentify":
        key = given.get("$group_key")
        if not isinstance(key, str | int) or isinstance(key, bool) or not str(key).strip():
            raise MessageError("$groupidentify needs properties.$group_key")
        traits = {**_obj(given.get("$group_set_once")), **_obj(given.get("$group_set"))}
        if _text(given.get("$group_type")):
            traits["group_type"] = given["$group_type"]
        return "group", {**message, "group_id": str(key).strip(), "traits": traits}, {}
    return "track", {**message, "event": name}, {}


def _sent_at(batch_sent_at: Any, query_ms: str | None) -> Any:
    if batch_sent_at is not None:
        return batch_sent_at
    if query_ms and query_ms.strip().isdigit() and len(query_ms.strip()) <= 15:
        return int(query_ms) / 1000  # Unix milliseconds; anything else there is a cache-buster, not a time
    return None


def translate(body: Any, received_at: datetime, *, account: str, retention_days: int,
              query_sent_at: str | None = None) -> list[Normalized]:
    """The normalized messages of a PostHog capture body; MessageError (a 400, with the index of the bad event)
    or TooLarge (a 413: more than MAX_BATCH events)."""
    events, batch_sent_at = _events(body)
    if not events:
        raise MessageError("batch holds no events")
    if len(events) > MAX_BATCH:
        raise TooLarge(f"This request holds {len(events)} events; at most {MAX_BATCH} are allowed")
    sent_at = _sent_at(batch_sent_at, query_sent_at)
    parsed: list[PostHogEvent] = []
    for index, raw in enumerate(events):
        try:
            parsed.append(msgspec.convert(raw, PostHogEvent))
        except msgspec.ValidationError as exc:
            raise MessageError(f"batch[{index}]: {exc}", index) from None
    # events without a time of their own keep the request's order, 1 us apart, ending now (as api/ingest.py's batch)
    untimed = sum(1 for event in parsed if event.timestamp is None and event.offset is None)
    items: list[Normalized] = []
    rank = 0
    for index, event in enumerate(parsed):
        try:
            kind, message, once = _message(event)
            implicit = None
            if event.timestamp is not None:
                message["timestamp"] = event.timestamp
            elif event.offset is not None:
                offset = timedelta(milliseconds=min(event.offset, 10 * 365 * 86_400_000))  # past any retention
                message["timestamp"] = (received_at - offset).astimezone(UTC).isoformat()
            else:
                implicit = received_at - timedelta(microseconds=untimed - 1 - rank)
                rank += 1
            item = to_record(validate(message, kind), received_at,
                             sent_at=sent_at if event.timestamp is not None else None,
                             source_account_id=account, retention_days=retention_days, implicit_ts=implicit)
            if once and isinstance(item.record, IdentifyRecord):
                item.record.traits_once = once
            items.append(item)
        except MessageError as exc:
            raise MessageError(f"batch[{index}]: {exc}", index) from None
    return items
