"""Shared helpers of the alert tests: times relative to now, events in a given hour, an alert created through the
API, and one round of the leader's alerts job at a chosen instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from nself_analytics.pipeline.alert_checks import AlertChecker
from nself_analytics.web.appkeys import ANALYTICS_APP, SETTINGS, WORKER_POOL

from .clock_support import iso


def hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def hours_back(n: int) -> datetime:
    """The start of the UTC hour ``n`` hours before the current one."""
    return hour_floor(datetime.now(UTC)) - timedelta(hours=n)


async def track_at(client: Any, auth: Any, event: str, at: datetime, count: int, **extra: Any) -> None:
    batch = [{"type": "track", "event": event, "userId": f"u{i}", "timestamp": iso(at + timedelta(seconds=i)),
              **extra} for i in range(count)]
    response = await client.post("/analytics/batch", headers=auth["write"], json={"batch": batch})
    assert response.status in (200, 202), await response.text()


async def create_alert(client: Any, auth: Any, status: int = 201, **body: Any) -> dict[str, Any]:
    response = await client.post("/analytics/alerts", headers=auth["secret"], json=body)
    data = await response.json()
    assert response.status == status, data
    return dict(data.get("alert") or data)


def checker(client: Any) -> AlertChecker:
    sub = client.app[ANALYTICS_APP]
    return AlertChecker(sub[WORKER_POOL], sub[SETTINGS])


async def run_at(client: Any, at: datetime) -> int:
    """One round of the alerts job as if it ran at ``at``."""
    return await checker(client).run_once(at)


async def checks(client: Any, auth: Any, alert_id: int) -> dict[str, Any]:
    response = await client.get(f"/analytics/alerts/{alert_id}/checks", headers=auth["secret"])
    assert response.status == 200
    return dict(await response.json())


def signup_alert(**extra: Any) -> dict[str, Any]:
    """Hourly: more than 2 signups an hour fires."""
    return {"name": "Signups surge", "series": {"kind": "trend", "event": "signup"}, "interval": "hourly",
            "condition": {"type": "absolute_value", "upper": 2}, **extra}
