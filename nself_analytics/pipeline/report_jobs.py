"""The leader's ``reports`` job: send each enabled report subscription once per period, at its local hour.

A report of period P (daily, weekly Monday to Sunday, monthly) in zone Z is due once the last complete P in Z ended
``hour`` hours ago (local time) and that send time is not before the subscription was created. Its content
(pipeline/report_content.py) is read, then its email and chat notifications are written in the transaction that
moves the subscription's ``last_period_start`` (store/scheduled_reports.py ``claim_period``): N instances send it
once. The notifications go through the shared outbox and its sender (pipeline/notify/outbox.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import aiopg
import msgspec
import psycopg2
import structlog

from ..config import Settings
from ..model.alert_spec import zone
from ..model.report_spec import ReportBody
from ..store import notifications
from ..store import scheduled_reports as store
from ..store.tx import StatementTimeout, statement_timeouts
from .alert_series import period
from .notify.outbox import NotificationSender
from .report_content import build_report

__all__ = ["ReportScheduler", "queue_now", "report_link", "report_of", "send_at"]

log = structlog.get_logger("nself_analytics.pipeline.reports")

MAX_REPORTS = 10_000  # per run, all accounts


def report_of(row: dict[str, Any]) -> ReportBody:
    """The stored definition of a report row as its typed body."""
    return msgspec.convert({**row["spec"], "name": row["name"], "enabled": row["enabled"]}, ReportBody)


def send_at(body: ReportBody, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, end, send time) of the last complete period before ``now`` in the report's zone."""
    tz = zone(body.timezone)
    start, end = period(body.period, tz, now)
    local_end = end.astimezone(tz)
    when = datetime(local_end.year, local_end.month, local_end.day, body.hour, tzinfo=tz).astimezone(UTC)
    return start, end, when


class ReportScheduler:
    """``run_once`` is one round of the job (tests call it with a ``now``)."""

    def __init__(self, pool: aiopg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self.sender = NotificationSender(pool, settings)

    async def run_once(self, now: datetime | None = None) -> int:
        """Queue the due reports, send the due notifications; return the reports queued."""
        now = now or datetime.now(UTC)
        async with self.pool.acquire() as conn:
            rows = await store.due_reports(conn, MAX_REPORTS)
        queued = 0
        for row in rows:
            try:
                queued += await self._maybe_send(row, now)
            except (psycopg2.Error, StatementTimeout, OSError) as exc:
                log.warning("report_failed", report=row["id"], error=str(exc).strip()[:300])
        await self.sender.send_due()
        return queued

    async def _maybe_send(self, row: dict[str, Any], now: datetime) -> int:
        body = report_of(row)
        start, end, when = send_at(body, now)
        last = row["last_period_start"]
        if now < when or when < datetime.fromisoformat(row["created_at"]) or \
                (last is not None and datetime.fromisoformat(last) >= start):
            return 0
        payload = await self._content(row["account"], body, start, end)

        async with self.pool.acquire() as conn:

            async def notify() -> None:
                await _enqueue(conn, row, body, payload, key=f"report:{row['id']}:{start.isoformat()}")

            claimed = await store.claim_period(conn, row["id"], start, notify)
        if claimed:
            log.info("report_queued", report=row["id"], period_start=start.isoformat())
        return int(claimed)

    async def _content(self, account: str, body: ReportBody, start: datetime, end: datetime) -> dict[str, Any]:
        async with self.pool.acquire() as conn, statement_timeouts():
            return await build_report(conn, account, body, start, end, report_link(self.settings, body))


def report_link(settings: Settings, body: ReportBody) -> str:
    return f"{settings.public_url or ''}/analytics/dashboard" + (f"#site={body.site}" if body.site else "")


async def _enqueue(conn: aiopg.Connection, row: dict[str, Any], body: ReportBody, payload: dict[str, Any],
                   key: str) -> int:
    channels = body.channels
    targets = [("telegram", channels.telegram_chat), ("discord", channels.discord_channel),
               *(("email", address) for address in channels.emails)]
    count = 0
    for channel, target in targets:
        if target:
            await notifications.enqueue(conn, account=row["account"], source="report", channel=channel,
                                        target=target, dedupe_key=f"{key}:{channel}:{target}",
                                        payload={**payload, "report_id": row["id"]})
            count += 1
    return count


async def queue_now(conn: aiopg.Connection, row: dict[str, Any], settings: Settings,
                    now: datetime | None = None) -> int:
    """Queue the report of the last complete period now, whatever was sent before (POST /reports/{id}/send);
    return the messages queued (the leader's next round sends them)."""
    body = report_of(row)
    start, end, _when = send_at(body, now or datetime.now(UTC))
    payload = await build_report(conn, row["account"], body, start, end, report_link(settings, body))
    return await _enqueue(conn, row, body, payload, key=f"report:{row['id']}:now:{uuid.uuid4().hex}")
