"""Alerts (np_analytics_alerts) and their check history (np_analytics_alert_checks).

A check is one row per (alert, interval start), inserted by ``record_check`` in the transaction that moves the
alert's state and writes its notifications (webhook outbox rows and np_analytics_notifications): when two
instances (or a retried job) check the same interval, the second insert finds the row and changes nothing, so a
notification is written once. History older than the retention window is pruned (``prune_checks``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiopg

from .saved_objects import SavedTable, iso
from .tx import transaction

__all__ = ["ALERTS", "due_alerts", "list_checks", "prune_checks", "record_check", "set_state"]

_COLUMNS = ("id, name, spec, enabled, state, firing, last_period_start, last_checked_at, last_value, last_error, "
            "last_notified_at, created_at, updated_at")
SET_STATE = "UPDATE np_analytics_alerts SET state = %(state)s WHERE id = %(id)s AND state <> %(state)s"
INSERT_CHECK = """
INSERT INTO np_analytics_alert_checks (source_account_id, alert_id, period_start, period_end, state, value, current,
                                       previous, error, notified)
SELECT a.source_account_id, a.id, %(period_start)s, %(period_end)s, %(state)s, %(value)s, %(current)s,
       %(previous)s, %(error)s, %(notified)s
FROM np_analytics_alerts a WHERE a.id = %(id)s
ON CONFLICT (alert_id, period_start) DO NOTHING
RETURNING alert_id
"""
AFTER_CHECK = """
UPDATE np_analytics_alerts SET state = %(state)s, firing = %(firing)s, last_period_start = %(period_start)s,
    last_checked_at = now(), last_value = %(value)s, last_error = %(error)s,
    last_notified_at = CASE WHEN %(notified)s::text IS NOT NULL THEN now() ELSE last_notified_at END
WHERE id = %(id)s
"""
SELECT_CHECKS = """
SELECT c.period_start, c.period_end, c.checked_at, c.state, c.value, c.current, c.previous, c.error, c.notified
FROM np_analytics_alert_checks c JOIN np_analytics_alerts a ON a.id = c.alert_id
WHERE a.source_account_id = %(account)s AND a.id = %(id)s
ORDER BY c.period_start DESC LIMIT %(limit)s
"""
PRUNE_CHECKS = "DELETE FROM np_analytics_alert_checks WHERE checked_at < now() - make_interval(days => %(days)s)"


def _alert(row: tuple[Any, ...]) -> dict[str, Any]:
    (aid, name, spec, enabled, state, firing, period, checked, value, error, notified, created, updated) = row
    return {"id": aid, "name": name, "spec": spec, "enabled": enabled, "state": state, "firing": firing,
            "last_period_start": iso(period), "last_checked_at": iso(checked), "last_value": value,
            "last_error": error, "last_notified_at": iso(notified), "created_at": iso(created),
            "updated_at": iso(updated)}


# A changed definition starts over: its state is evaluated again at the next interval.
ALERTS = SavedTable("np_analytics_alerts", _COLUMNS, _alert,
                    on_update=", last_period_start = CASE WHEN spec = %(spec)s::jsonb THEN last_period_start END")


async def due_alerts(conn: aiopg.Connection, limit: int) -> list[dict[str, Any]]:
    """The enabled alerts of every account (the checker decides which interval each is due for)."""
    return await ALERTS.due(conn, limit)


async def set_state(conn: aiopg.Connection, alert_id: int, state: str) -> None:
    async with conn.cursor() as cur:
        await cur.execute(SET_STATE, {"id": alert_id, "state": state})


async def record_check(conn: aiopg.Connection, check: dict[str, Any],
                       notify: Callable[[], Awaitable[None]] | None) -> bool:
    """Insert the check of one interval, move the alert's state and write its notifications (``notify`` writes
    them on ``conn``), in one transaction. False (nothing written) when the interval was already checked, by this
    instance or another."""
    async with transaction(conn) as cur:
        await cur.execute(INSERT_CHECK, check)
        if await cur.fetchone() is None:
            return False
        await cur.execute(AFTER_CHECK, check)
        if notify is not None and check["notified"] is not None:
            await notify()
    return True


async def list_checks(conn: aiopg.Connection, account: str, alert_id: int, limit: int) -> list[dict[str, Any]]:
    """The alert's checks, newest first."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_CHECKS, {"account": account, "id": alert_id, "limit": limit})
        rows = await cur.fetchall()
    return [{"period_start": iso(start), "period_end": iso(end), "checked_at": iso(checked), "state": state,
             "value": value, "current": current, "previous": previous, "error": error, "notified": notified}
            for start, end, checked, state, value, current, previous, error, notified in rows]


async def prune_checks(conn: aiopg.Connection, days: int) -> int:
    """Delete checks older than ``days``; return how many."""
    async with conn.cursor() as cur:
        await cur.execute(PRUNE_CHECKS, {"days": days})
        return int(cur.rowcount)
