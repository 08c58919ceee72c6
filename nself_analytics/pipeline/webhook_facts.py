"""funnel.completed: a drained event that is the last step of a saved funnel, reached by its user in order.

Called by the facts task (pipeline/facts.py) for the events of the event outbox, in the transaction that deletes
their outbox rows: if the process dies before its commit, the rows are read again and the completions found again
(the delivery's dedupe key, ``funnel:<funnel id>:<message id>``, keeps them once). The check follows the funnel's
semantics (store/funnels.py): steps in order, each strictly after the previous, all within the funnel's window
of the first; the user is ``user_id``, else ``anonymous_id``; bot events are left out. Events that
arrive after the last step (out of order) do not complete it retroactively.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import aiopg

from ..store import webhooks
from ..store.event_outbox import NewEvent

__all__ = ["WEBHOOK_EVENTS", "completes", "record_funnel_completions"]

# The events a webhook can subscribe to (alert.fired / alert.resolved: pipeline/alert_checks.py).
WEBHOOK_EVENTS = ("quota.exceeded", "funnel.completed", "event.tracked", "alert.fired", "alert.resolved")

# Per drained batch: saved funnels looked at, and candidate (funnel, last-step event) pairs checked.
MAX_FUNNELS = 1000
MAX_CHECKS = 1000
# Step events read per check (a user's events in one funnel window).
MAX_STEP_EVENTS = 10_000


def completes(steps: list[str], events: Iterable[tuple[str, datetime]], until: datetime) -> datetime | None:
    """When ``events`` (time-ordered) hold the steps in order, strictly increasing in time, ending at or before
    ``until``: the start of the earliest such path (the greedy earliest path is the first to finish)."""
    index, start, last = 0, None, None
    for event, ts in events:
        if ts > until:
            break
        if event == steps[index] and (last is None or ts > last):
            start = ts if index == 0 else start
            last = ts
            index += 1
            if index == len(steps):
                return start
    return None


async def record_funnel_completions(conn: aiopg.Connection, items: list[NewEvent]) -> int:
    """Outbox rows for the batch's events that complete a saved funnel of an account with a
    ``funnel.completed`` webhook. Returns the completions found (before deduplication)."""
    tracked = [i for i in items if i.type in ("track", "page") and not i.is_bot and (i.user_id or i.anonymous_id)]
    if not tracked:
        return 0
    accounts = sorted({i.source_account_id for i in tracked})
    funnels = await webhooks.subscribed_funnels(conn, accounts, MAX_FUNNELS)
    if not funnels:
        return 0
    by_last: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for funnel in funnels:
        by_last.setdefault((funnel["account"], funnel["steps"][-1]), []).append(funnel)
    found = checks = 0
    for item in tracked:
        account = item.source_account_id
        for funnel in by_last.get((account, item.event or ""), []):
            if checks >= MAX_CHECKS:
                return found
            checks += 1
            user = item.user_id or item.anonymous_id
            if user is None:  # an event of nobody cannot complete a person's funnel
                continue
            until = item.ts
            window = timedelta(seconds=funnel["window_seconds"])
            events = await webhooks.user_step_events(conn, account=account, user=user, steps=funnel["steps"],
                                                     since=until - window, until=until, limit=MAX_STEP_EVENTS)
            started = completes(funnel["steps"], events, until)
            if started is None:
                continue
            found += 1
            message_id = str(item.message_id)
            await webhooks.enqueue(conn, account=account, event="funnel.completed",
                                   dedupe_key=f"funnel:{funnel['id']}:{message_id}", payload={
                                       "funnel_id": funnel["id"], "funnel_name": funnel["name"],
                                       "steps": funnel["steps"], "user_id": item.user_id,
                                       "anonymous_id": item.anonymous_id, "started_at": started.isoformat(),
                                       "completed_at": until.isoformat(), "message_id": message_id})
    return found
