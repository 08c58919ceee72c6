"""GET /counters/{event}: real-time counts from the Redis counters the ingest script increments.

Per event, always: minute, hour, day and total. Per event and user (``user_id=``), only when
ANALYTICS_QUOTA_ENABLED=true: minute, hour, day, month and total. A count is that of the current
UTC period bucket, so it includes events still queued for Postgres.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from ..ingest.counter_keys import counter_key, period_bounds
from ..web import params
from ..web.appkeys import REDIS, SETTINGS
from ..web.errors import ApiError
from ..web.routing import TOKEN, Route

EVENT_PERIODS = ("minute", "hour", "day", "total")
USER_PERIODS = ("minute", "hour", "day", "month", "total")


class CountersParams(msgspec.Struct, kw_only=True):
    event: Annotated[str, msgspec.Meta(max_length=params.MAX_NAME_LENGTH, description="The event name")]
    user_id: Annotated[str, msgspec.Meta(max_length=params.MAX_NAME_LENGTH, description=(
        "Count this user's events only (needs ANALYTICS_QUOTA_ENABLED=true)"))] | None = None
    # checked against the user's or the event's periods below (their messages); the enum documents them
    period: Annotated[str, msgspec.Meta(description="One period only (month: per user only)", extra_json_schema={
        "enum": ["minute", "hour", "day", "month", "total"]})] | None = None


class CountersAnswer(msgspec.Struct, frozen=True):
    status: Literal["success"]
    event: str
    user_id: str | None
    counts: dict[str, int]
    # with period= only
    period: str | msgspec.UnsetType = msgspec.UNSET
    count: int | msgspec.UnsetType = msgspec.UNSET
    resets_at: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})] | msgspec.UnsetType | None = (
        msgspec.UNSET)


async def counters(request: web.Request, query: CountersParams) -> CountersAnswer:
    """Per event, always: minute, hour, day and total; per event and user, only with quotas enabled: minute, hour,
    day, month and total. A count is that of the current UTC period, events still queued included."""
    event = params.event_name(query.event)
    user_id = query.user_id
    if user_id is not None and not request.config_dict[SETTINGS].quota_enabled:
        raise ApiError(409, "Per-user counters need ANALYTICS_QUOTA_ENABLED=true")
    allowed = USER_PERIODS if user_id is not None else EVENT_PERIODS
    period = query.period
    if period is not None and period not in allowed:
        hint = " (month is counted per user only)" if period == "month" else ""
        raise ApiError(400, f"Invalid period {period!r}: use one of {', '.join(allowed)}{hint}")
    now = datetime.now(UTC)
    periods = [period] if period else list(allowed)
    account = params.account(request)
    values = await request.config_dict[REDIS].mget([counter_key(p, event, now, user_id, account) for p in periods])
    counts = {p: int(v or 0) for p, v in zip(periods, values, strict=True)}
    if not period:
        return CountersAnswer("success", event, user_id, counts)
    _start, end = period_bounds(period, now)
    return CountersAnswer("success", event, user_id, counts, period, counts[period], end.isoformat() if end else None)


ROUTES = [
    Route("GET", "/counters/{event}", counters, TOKEN, name="counters", tags=("Counters",),
          summary="Real-time count of an event (from Redis)", params=CountersParams, answer=CountersAnswer),
]
