"""The leader's ``alerts`` job: check every enabled alert once per interval, then send the due notifications.

For each alert: snoozed (``snooze_until`` ahead) -> state ``snoozed``, nothing checked; the last complete interval in
its zone (pipeline/alert_series.py) already checked, or a weekend day with ``skip_weekends`` -> nothing; otherwise
its value (and the previous interval's, for a relative condition) is computed and compared with its bounds. A
computation that fails leaves the firing flag as it was and records ``errored``. Notifications (``alert.fired`` on
entering firing, ``alert.resolved`` on leaving it with ``notify_on_resolve``; the traffic kinds: whenever their
condition holds, at most once per 12 hours) are written in the transaction that inserts the interval's check row
(store/alerts.py ``record_check``), whose (alert, interval) key is unique: N instances notify once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg
import msgspec
import psycopg2
import structlog

from ..config import Settings
from ..model.alert_spec import TRAFFIC_KINDS, AlertBody, zone
from ..store import alerts as store
from ..store import notifications, webhooks
from ..store.tx import StatementTimeout, statement_timeouts
from .alert_series import SeriesError, measure, period, previous_period
from .notify.outbox import NotificationSender

__all__ = ["AlertChecker", "evaluate", "spec_of"]

log = structlog.get_logger("nself_analytics.pipeline.alerts")

MAX_ALERTS = 10_000  # per run, all accounts (an account has at most api/alerts.py MAX_ALERTS_PER_ACCOUNT)
TRAFFIC_QUIET = timedelta(hours=12)
HISTORY_POINTS = 30
PRUNE_EVERY_SECONDS = 3600.0


def spec_of(alert: dict[str, Any]) -> AlertBody:
    """The stored definition of an alert row as its typed body."""
    return msgspec.convert({**alert["spec"], "name": alert["name"], "enabled": alert["enabled"]}, AlertBody)


def evaluate(body: AlertBody, current: float | None, previous: float | None) -> tuple[bool, float | None]:
    """(firing, compared value) of one check."""
    condition = body.condition
    if body.series.kind in TRAFFIC_KINDS:
        threshold = float(condition.threshold or 0)
        if current is None:
            return False, None
        return (current >= threshold if body.series.kind == "traffic_spike" else current < threshold), current
    value: float | None = current
    if condition.type != "absolute_value":
        if current is None or previous is None:
            value = None
        else:
            change = current - previous if condition.type == "relative_increase" else previous - current
            if condition.mode == "absolute":
                value = change
            else:
                value = round(change / previous * 100, 6) if previous else None
    if value is None:
        return False, None
    low, high = condition.lower, condition.upper
    return (low is not None and value < low) or (high is not None and value > high), value


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value == int(value) and abs(value) < 1e15 else f"{value:,.4g}"


class AlertChecker:
    """``run_once`` is one round of the job (tests call it with a ``now``)."""

    def __init__(self, pool: aiopg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self.sender = NotificationSender(pool, settings)
        self._next_prune = 0.0

    def link(self, alert_id: int) -> str:
        return f"{self.settings.public_url or ''}/analytics/dashboard#alerts/{alert_id}"

    async def run_once(self, now: datetime | None = None) -> int:
        """Check the due alerts, send the due notifications, prune old history; return the checks recorded."""
        now = now or datetime.now(UTC)
        async with self.pool.acquire() as conn:
            due = await store.due_alerts(conn, MAX_ALERTS)
        checked = 0
        for alert in due:
            try:
                checked += await self.check(alert, now)
            except (psycopg2.Error, OSError) as exc:
                log.warning("alert_check_failed", alert=alert["id"], error=str(exc).strip()[:300])
        await self.sender.send_due()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            async with self.pool.acquire() as conn:
                await store.prune_checks(conn, self.settings.retention_days)
                await notifications.prune(conn, self.settings.retention_days)
        return checked

    async def check(self, alert: dict[str, Any], now: datetime) -> int:
        body = spec_of(alert)
        if body.snooze_until is not None and now < body.snooze_until:
            async with self.pool.acquire() as conn:
                await store.set_state(conn, alert["id"], "snoozed")
            return 0
        tz = zone(body.timezone)
        start, end = period(body.interval, tz, now)
        last = alert["last_period_start"]
        if last is not None and datetime.fromisoformat(last) >= start:
            return 0
        if body.skip_weekends and body.interval in ("15m", "hourly", "daily") and start.astimezone(tz).weekday() >= 5:
            return 0
        current = previous = None
        error = None
        try:
            async with self.pool.acquire() as conn, statement_timeouts():
                current = await measure(conn, alert["account"], body.series, start, end, now)
                if body.condition.type != "absolute_value" and body.series.kind not in TRAFFIC_KINDS:
                    before = previous_period(body.interval, tz, start)
                    previous = await measure(conn, alert["account"], body.series, *before, now)
        except (SeriesError, StatementTimeout, psycopg2.Error) as exc:
            error = f"{type(exc).__name__}: {exc}".strip()[:500]
        return await self._record(alert, body, now, (start, end), current, previous, error)

    async def _record(self, alert: dict[str, Any], body: AlertBody, now: datetime, bounds: tuple[datetime, datetime],
                      current: float | None, previous: float | None, error: str | None) -> int:
        was = bool(alert["firing"])
        firing, value = (was, None) if error else evaluate(body, current, previous)
        event = None
        if error is None and body.series.kind in TRAFFIC_KINDS:
            quiet = alert["last_notified_at"] is not None and \
                now - datetime.fromisoformat(alert["last_notified_at"]) < TRAFFIC_QUIET
            event = "alert.fired" if firing and not quiet else None
        elif error is None and firing != was:
            event = "alert.fired" if firing else ("alert.resolved" if body.notify_on_resolve else None)
        state = "errored" if error else ("firing" if firing else "not_firing")
        check = {"id": alert["id"], "period_start": bounds[0], "period_end": bounds[1], "state": state,
                 "value": value, "current": current, "previous": previous, "error": error, "firing": firing,
                 "notified": event}
        async with self.pool.acquire() as conn:
            history = [c["value"] for c in reversed(await store.list_checks(conn, alert["account"], alert["id"],
                                                                           HISTORY_POINTS - 1))]
            payload = self._payload(alert, body, check, [*history, value])

            async def notify() -> None:
                await self._notify(conn, alert, body, check, payload)

            recorded = await store.record_check(conn, check, notify)
        if recorded and event:
            log.info("alert_notified", alert=alert["id"], fact=event, value=value)
        return int(recorded)

    def _payload(self, alert: dict[str, Any], body: AlertBody, check: dict[str, Any],
                 values: list[float | None]) -> dict[str, Any]:
        condition = body.condition
        fired = check["notified"] == "alert.fired"
        series = msgspec.to_builtins(body.series)
        what = body.series.kind.replace("_", " ")
        title = f"Alert {'firing' if fired else 'resolved'}: {alert['name']}"
        start = check["period_start"].astimezone(zone(body.timezone))
        summary = (f"{what} = {_fmt(check['current'])}" if body.series.kind in TRAFFIC_KINDS else
                   f"{condition.type.replace('_', ' ')} = {_fmt(check['value'])}"
                   f"{'%' if condition.mode == 'percentage' else ''} for the {body.interval} interval from "
                   f"{start.isoformat(timespec='minutes')} ({body.timezone})")
        bounds = [condition.lower, condition.upper] if condition.threshold is None else [float(condition.threshold)]
        facts = [["Series", " ".join(f"{k}={v}" for k, v in series.items())], ["Value", _fmt(check["value"])],
                 ["Current", _fmt(check["current"])], ["Previous", _fmt(check["previous"])],
                 ["Lower bound", _fmt(condition.lower)], ["Upper bound", _fmt(condition.upper)]]
        if condition.threshold is not None:
            facts = [*facts[:3], ["Threshold", _fmt(float(condition.threshold))]]
        return {"alert_id": alert["id"], "alert_name": alert["name"], "event": check["notified"],
                "state": check["state"], "series": series, "condition": msgspec.to_builtins(condition),
                "interval": body.interval, "timezone": body.timezone,
                "period_start": check["period_start"].isoformat(), "period_end": check["period_end"].isoformat(),
                "value": check["value"], "current": check["current"], "previous": check["previous"],
                "lower": condition.lower, "upper": condition.upper, "threshold": condition.threshold,
                "dashboard_url": self.link(alert["id"]),
                "title": title, "summary": summary, "facts": facts, "link": self.link(alert["id"]),
                "chart": {"values": values, "bounds": bounds}}

    async def _notify(self, conn: aiopg.Connection, alert: dict[str, Any], body: AlertBody, check: dict[str, Any],
                      payload: dict[str, Any]) -> None:
        account, event = alert["account"], check["notified"]
        key = f"alert:{alert['id']}:{check['period_start'].isoformat()}:{event}"
        channels = body.channels
        if channels.webhook:
            await webhooks.enqueue(conn, account=account, event=event, dedupe_key=key, payload=payload)
        targets = [("telegram", channels.telegram_chat), ("discord", channels.discord_channel),
                   *(("email", address) for address in channels.emails)]
        for channel, target in targets:
            if target:
                await notifications.enqueue(conn, account=account, source="alert", channel=channel, target=target,
                                            dedupe_key=f"{key}:{channel}:{target}", payload=payload)
