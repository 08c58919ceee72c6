"""Scheduled report subscriptions (np_analytics_reports).

A period is sent once: ``claim_period`` moves ``last_period_start`` forward in the transaction that writes the
period's notifications (store/notifications.py), with a condition that only one claimer of a period can meet, so
N instances (or a retried job) send it once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiopg

from .saved_objects import SavedTable, iso
from .tx import transaction

__all__ = ["REPORTS", "claim_period", "due_reports"]

_COLUMNS = "id, name, spec, enabled, last_period_start, last_sent_at, created_at, updated_at"
CLAIM = """
UPDATE np_analytics_reports SET last_period_start = %(start)s, last_sent_at = now()
WHERE id = %(id)s AND (last_period_start IS NULL OR last_period_start < %(start)s) RETURNING id
"""


def _report(row: tuple[Any, ...]) -> dict[str, Any]:
    rid, name, spec, enabled, period, sent, created, updated = row
    return {"id": rid, "name": name, "spec": spec, "enabled": enabled, "last_period_start": iso(period),
            "last_sent_at": iso(sent), "created_at": iso(created), "updated_at": iso(updated)}


REPORTS = SavedTable("np_analytics_reports", _COLUMNS, _report)


async def due_reports(conn: aiopg.Connection, limit: int) -> list[dict[str, Any]]:
    """The enabled reports of every account (the scheduler decides which period each is due for)."""
    return await REPORTS.due(conn, limit)


async def claim_period(conn: aiopg.Connection, report_id: int, start: datetime,
                       notify: Callable[[], Awaitable[None]]) -> bool:
    """Mark the period starting at ``start`` sent and write its notifications (``notify`` writes them on ``conn``)
    in one transaction; False (nothing written) when that period (or a later one) was claimed already."""
    async with transaction(conn) as cur:
        await cur.execute(CLAIM, {"id": report_id, "start": start})
        if await cur.fetchone() is None:
            return False
        await notify()
    return True
