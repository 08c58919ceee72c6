"""PostHog's capture API bodies as msgspec Structs (what ingest/posthog.py translates into the messages of
model/wire.py). Fields PostHog's SDKs send that we do not use are ignored, as PostHog's own server does."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from .wire import MAX_ID, MAX_NAME

__all__ = ["PostHogBatch", "PostHogEvent"]

Ident = Annotated[str, Meta(max_length=MAX_ID)] | int
Time = str | float
Object = dict[str, Any]


class PostHogEvent(Struct, kw_only=True):
    """One event: ``event`` and ``distinct_id`` (or ``properties.distinct_id``) are required; ``uuid`` is its message
    id; its time is ``timestamp`` (with the batch's ``sent_at``) or ``offset`` milliseconds before now."""

    event: Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
    distinct_id: Ident | None = None
    properties: Object | None = None
    timestamp: Time | None = None
    sent_at: Time | None = None
    offset: Annotated[float, Meta(ge=0)] | None = None
    uuid: Annotated[str, Meta(min_length=1, max_length=MAX_ID)] | None = None
    set: Object | None = msgspec.field(default=None, name="$set")
    set_once: Object | None = msgspec.field(default=None, name="$set_once")
    anon_distinct_id: Ident | None = msgspec.field(default=None, name="$anon_distinct_id")


class PostHogBatch(Struct, kw_only=True):
    """``{"api_key", "batch": [...], "sent_at", "historical_migration"}`` (``data`` is an older spelling of
    ``batch``); each item is checked on its own, so an error names its index."""

    batch: list[Any] | None = None
    data: list[Any] | None = None
    sent_at: Time | None = None
    api_key: str | None = None
    historical_migration: bool | None = None
