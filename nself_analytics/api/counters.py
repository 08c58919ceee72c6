"""GET /counters/{event}: real-time counts from the Redis counters the ingest script increments.

Per event, always: minute, hour, day and total. Per event and user (``user_id=``), only when
ANALYTICS_QUOTA_ENABLED=true: minute, hour, day, month and total. A count is that of the current
UTC period bucket, so it includes events still queued for Postgres.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from ..ingest.counter_keys import counter_key, period_bounds
from ..web import params
from ..web.appkeys import REDIS, SETTINGS
from ..web.errors import ApiError
from ..web.routing import TOKEN, Route

EVENT_PERIODS = ("minute", "hour", "day", "total")
USER_PERIODS = ("minute", "hour", "day", "month", "total")


async def counters(request: web.Request) -> web.Response:
    event = params.event_name(request.match_info["event"])
    user_id = request.query.get("user_id", "").strip() or None
    if user_id is not None and not request.config_dict[SETTINGS].quota_enabled:
        raise ApiError(409, "Per-user counters need ANALYTICS_QUOTA_ENABLED=true")
    allowed = USER_PERIODS if user_id is not None else EVENT_PERIODS
    period = request.query.get("period", "").strip() or None
    if period is not None and period not in allowed:
        hint = " (month is counted per user only)" if period == "month" else ""
        raise ApiError(400, f"Invalid period {period!r}: use one of {', '.join(allowed)}{hint}")
    now = datetime.now(UTC)
    periods = [period] if period else list(allowed)
    account = params.account(request)
    values = await request.config_dict[REDIS].mget([counter_key(p, event, now, user_id, account) for p in periods])
    counts = {p: int(v or 0) for p, v in zip(periods, values, strict=True)}
    body: dict[str, object] = {"status": "success", "event": event, "user_id": user_id, "counts": counts}
    if period:
        _start, end = period_bounds(period, now)
        body.update(period=period, count=counts[period], resets_at=end.isoformat() if end else None)
    return web.json_response(body)


ROUTES = [
    Route("GET", "/counters/{event}", counters, TOKEN, name="counters", tags=("Counters",),
          summary="Real-time count of an event (from Redis)"),
]
