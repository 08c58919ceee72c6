"""Scheduled reports as msgspec Structs: the body of POST/PATCH /reports, stored as the subscription's ``spec``
(jsonb). A report summarizes the last complete day, week (Monday to Sunday) or month in its time zone and is sent
at ``hour`` o'clock local time after that period ends, to its email and chat recipients (``ReportChannels``)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from .alert_spec import MAX_EMAILS, MAX_NAME, Email, Site, SpecError, zone

__all__ = ["PERIODS", "ReportBody", "ReportChannels", "decode_report", "report_schemas"]

PERIODS = ("daily", "weekly", "monthly")
MAX_GOALS = 10
Goal = Annotated[str, Meta(min_length=6, max_length=300, pattern=r"^(path:/|event:\S)")]


class ReportChannels(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Where a report goes: a Telegram chat (id or @channel), a Discord channel id, email addresses."""

    telegram_chat: Annotated[str, Meta(max_length=40, pattern=r"^(-?\d{1,20}|@[A-Za-z0-9_]{5,32})$")] | None = None
    discord_channel: Annotated[str, Meta(max_length=20, pattern=r"^\d{1,20}$")] | None = None
    emails: Annotated[list[Email], Meta(max_length=MAX_EMAILS)] = []


class ReportBody(Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """POST /reports (a PATCH is merged onto the stored body, field by field, and checked again)."""

    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
    period: Literal["daily", "weekly", "monthly"] = "weekly"
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "UTC"
    hour: Annotated[int, Meta(ge=0, le=23, description="local hour the report is sent at")] = 8
    site: Site | None = None  # the web side (top stats, chart, pages, sources, goals); without it: product only
    goals: Annotated[list[Goal], Meta(max_length=MAX_GOALS)] = []  # path:/page or event:name
    funnel_id: Annotated[int, Meta(ge=1, le=2**62)] | None = None  # a saved funnel whose conversion is shown
    enabled: bool = True
    channels: ReportChannels = msgspec.field(default_factory=ReportChannels)


def decode_report(data: object) -> ReportBody:
    """A ReportBody from decoded JSON, checked; SpecError with msgspec's or the rule's message."""
    try:
        body = msgspec.convert(data, ReportBody)
    except msgspec.ValidationError as exc:
        raise SpecError(str(exc)[:300]) from None
    if not body.name.strip() or "\x00" in body.name:
        raise SpecError("name must not be blank nor contain a NUL character")
    zone(body.timezone)
    if any("\x00" in goal or not goal.partition(":")[2].strip() for goal in body.goals):
        raise SpecError("each goal is path:/some/page or event:name")
    channels = body.channels
    if not (channels.telegram_chat or channels.discord_channel or channels.emails):
        raise SpecError("channels needs a recipient: emails, telegram_chat or discord_channel")
    return body


def report_schemas() -> dict[str, dict[str, object]]:
    """components/schemas entries of the report body (ReportBody, ReportChannels) for the OpenAPI document."""
    _refs, components = msgspec.json.schema_components([ReportBody], ref_template="#/components/schemas/{name}")
    return components
