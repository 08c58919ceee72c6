"""Alerts as msgspec Structs: the body of POST/PATCH /alerts, stored as the alert's ``spec`` (jsonb), and the rules
one field's type cannot say (``check``). An alert watches one series the read API computes (``Series``), compares
its value per interval with bounds (``Condition``) and notifies its ``Channels`` on entering ``firing``.

Traffic notifications (Plausible's) are the kinds ``traffic_spike`` (the site's current visitors, the last 5 minutes
as /api/realtime counts them, at or over ``threshold``) and ``traffic_drop`` (visitors over the last 12 hours under
``threshold``): checked every 15 minutes, at most one message per 12 hours per rule."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "INTERVALS", "KINDS", "MAX_NAME", "STATES", "TRAFFIC_KINDS", "AlertBody", "Channels", "Condition", "Series",
    "SpecError", "alert_schemas", "check", "decode_body", "zone",
]

INTERVALS = ("15m", "hourly", "daily", "weekly", "monthly")
KINDS = ("trend", "metric", "web", "funnel", "traffic_spike", "traffic_drop")
TRAFFIC_KINDS = ("traffic_spike", "traffic_drop")
STATES = ("firing", "not_firing", "errored", "snoozed")
MAX_NAME = 200
MAX_EMAILS = 10
MAX_BOUND = 1e15

Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
Site = Annotated[str, Meta(min_length=1, max_length=253, pattern=r"^[a-z0-9_.:\[\]-]+$")]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s<>,;:\"()\[\]\\]{1,64}@[A-Za-z0-9.-]{1,253}$")]
Bound = Annotated[float, Meta(ge=-MAX_BOUND, le=MAX_BOUND)]


class SpecError(ValueError):
    """A rule of an alert body that its types cannot say; the text is the 400 message."""


class Series(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What is measured per interval: ``kind`` says which of the other fields apply.

    trend: ``event``, ``measure`` (count, users, sum:<property>, avg:<property>), ``breakdown`` and
    ``breakdown_value`` (one of the top values /trends shows); metric: ``metric`` event_count (``event``,
    ``user_id``), sessions or session_duration (``start_event``/``stop_event``, as /sessions); web: ``site`` and
    ``stat`` (visitors, pageviews, sessions, bounce_rate, goal_conversions with ``goal`` path:/x or event:name);
    funnel: ``funnel_id`` (a saved funnel: its conversion from the first to the last step, 0 to 1);
    traffic_spike / traffic_drop: ``site``."""

    kind: Literal["trend", "metric", "web", "funnel", "traffic_spike", "traffic_drop"]
    event: Name | None = None
    measure: Annotated[str, Meta(max_length=MAX_NAME + 4)] = "count"
    breakdown: Name | None = None
    breakdown_value: Annotated[str, Meta(max_length=1024)] | None = None
    metric: Literal["event_count", "sessions", "session_duration"] | None = None
    start_event: Name | None = None
    stop_event: Name | None = None
    user_id: Name | None = None
    site: Site | None = None
    stat: Literal["visitors", "pageviews", "sessions", "bounce_rate", "goal_conversions"] | None = None
    goal: Annotated[str, Meta(max_length=1030)] | None = None
    funnel_id: Annotated[int, Meta(ge=1, le=2**62)] | None = None


class Condition(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """absolute_value: the interval's value against ``lower``/``upper``; relative_increase / relative_decrease:
    the change against the previous interval (``mode`` absolute: in the series' unit; percentage: in percent of
    the previous value) against them. Fires when the value is under ``lower`` or over ``upper``. The traffic kinds
    take ``threshold`` instead."""

    type: Literal["absolute_value", "relative_increase", "relative_decrease"] = "absolute_value"
    lower: Bound | None = None
    upper: Bound | None = None
    mode: Literal["absolute", "percentage"] = "absolute"
    threshold: Annotated[int, Meta(ge=1, le=10**9)] | None = None


class Channels(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Where a notification goes: the account's webhooks subscribed to alert.fired / alert.resolved, a Telegram
    chat (id or @channel), a Discord channel id, email addresses."""

    webhook: bool = False
    telegram_chat: Annotated[str, Meta(max_length=40, pattern=r"^(-?\d{1,20}|@[A-Za-z0-9_]{5,32})$")] | None = None
    discord_channel: Annotated[str, Meta(max_length=20, pattern=r"^\d{1,20}$")] | None = None
    emails: Annotated[list[Email], Meta(max_length=MAX_EMAILS)] = []


class AlertBody(Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """POST /alerts (a PATCH is merged onto the stored body, field by field, and checked again)."""

    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
    series: Series
    condition: Condition = msgspec.field(default_factory=Condition)
    interval: Literal["15m", "hourly", "daily", "weekly", "monthly"] = "daily"
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "UTC"
    skip_weekends: bool = False
    snooze_until: datetime | None = None
    notify_on_resolve: bool = False
    enabled: bool = True
    channels: Channels = msgspec.field(default_factory=Channels)


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; SpecError when there is none."""
    if name.startswith(("/", ".")) or ".." in name or "\x00" in name:
        raise SpecError(f"Unknown time zone {name[:64]!r}: use an IANA name such as Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SpecError(f"Unknown time zone {name[:64]!r}: use an IANA name such as Europe/Paris") from None


def _measure(text: str) -> None:
    kind, colon, prop = text.partition(":")
    if (kind in ("count", "users") and not colon) or (kind in ("sum", "avg") and colon and prop.strip()):
        return
    raise SpecError("series.measure must be count, users, sum:<property> or avg:<property>")


def _goal(text: str | None) -> None:
    kind, colon, value = (text or "").partition(":")
    if not colon or kind not in ("path", "event") or not value.strip() or "\x00" in value:
        raise SpecError("series.goal must be path:/some/page or event:name")
    if kind == "path" and not value.startswith("/"):
        raise SpecError("series.goal: a path goal starts with /")


def _series(series: Series) -> None:
    need = {"trend": ("event",), "web": ("site", "stat"), "funnel": ("funnel_id",), "metric": ("metric",),
            "traffic_spike": ("site",), "traffic_drop": ("site",)}[series.kind]
    for name in need:
        if getattr(series, name) is None:
            raise SpecError(f"series.{name} is required for a {series.kind} series")
    if series.kind == "trend":
        _measure(series.measure)
        if series.breakdown_value is not None and series.breakdown is None:
            raise SpecError("series.breakdown_value needs series.breakdown (the property)")
    if series.kind == "metric" and series.metric == "event_count" and series.event is None:
        raise SpecError("series.event is required for the event_count metric")
    if series.kind == "metric" and series.metric != "event_count" and \
            (series.start_event or "play") == (series.stop_event or "stop"):
        raise SpecError("series.start_event and series.stop_event must differ")
    if series.kind == "web" and series.stat == "goal_conversions":
        _goal(series.goal)
    for text in (series.event, series.breakdown, series.start_event, series.stop_event, series.user_id,
                 series.breakdown_value):
        if text is not None and (not text.strip() or "\x00" in text):
            raise SpecError("series names must not be blank nor contain a NUL character")


def _condition(body: AlertBody) -> None:
    condition = body.condition
    bounds = [b for b in (condition.lower, condition.upper) if b is not None]
    if any(not math.isfinite(b) for b in bounds):
        raise SpecError("condition bounds must be finite numbers")
    if body.series.kind in TRAFFIC_KINDS:
        if condition.threshold is None or bounds:
            raise SpecError(f"A {body.series.kind} alert takes condition.threshold (visitors), not lower/upper")
        if body.interval != "15m":
            raise SpecError(f"A {body.series.kind} alert is checked every 15 minutes: interval must be 15m")
        return
    if condition.threshold is not None:
        raise SpecError("condition.threshold is for traffic_spike and traffic_drop alerts: use lower/upper")
    if not bounds:
        raise SpecError("condition needs a lower or an upper bound (or both)")
    if condition.lower is not None and condition.upper is not None and condition.lower > condition.upper:
        raise SpecError("condition.lower must not be greater than condition.upper")
    if condition.mode == "percentage" and condition.type == "absolute_value":
        raise SpecError("condition.mode percentage applies to relative_increase and relative_decrease")


def check(body: AlertBody) -> AlertBody:
    """``body`` when every rule holds; SpecError naming the first that does not."""
    if not body.name.strip() or "\x00" in body.name:
        raise SpecError("name must not be blank nor contain a NUL character")
    zone(body.timezone)
    _series(body.series)
    _condition(body)
    if body.snooze_until is not None and body.snooze_until.tzinfo is None:
        raise SpecError("snooze_until must carry its offset (e.g. 2030-01-01T09:00:00Z)")
    return body


def decode_body(data: object) -> AlertBody:
    """An AlertBody from decoded JSON, checked; SpecError with msgspec's or the rule's message."""
    try:
        body = msgspec.convert(data, AlertBody)
    except msgspec.ValidationError as exc:
        raise SpecError(str(exc)[:300]) from None
    return check(body)


def alert_schemas() -> dict[str, dict[str, object]]:
    """components/schemas entries of the alert body (AlertBody, Series, Condition, Channels) for the OpenAPI
    document."""
    _refs, components = msgspec.json.schema_components([AlertBody], ref_template="#/components/schemas/{name}")
    return components
