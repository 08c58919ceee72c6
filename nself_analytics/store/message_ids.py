"""The de-duplication window of stored events: np_analytics_message_ids (migration 0080).

The drain records each stored event's (account, message id) in the same statement as the event
(store/events.py), so a redelivered stream entry or a client retry is stored once while its id is here.
The leader's maintenance job deletes the ids older than ANALYTICS_DEDUPE_WINDOW, a bounded batch per
statement, so the table holds about one window of ids and a prune never holds long locks. A retry arriving
after its id was pruned is stored again (as Segment's message-id de-duplication over a look-back window).
"""

from __future__ import annotations

import aiopg
import structlog

__all__ = ["PRUNE_BATCH", "prune_message_ids"]

log = structlog.get_logger("nself_analytics.message_ids")

# Ids deleted by one statement (one short transaction each); the job loops until none is left.
PRUNE_BATCH = 10_000
_PRUNE = """
DELETE FROM np_analytics_message_ids WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM np_analytics_message_ids WHERE received_at < now() - make_interval(secs => %(window)s)
    LIMIT %(batch)s))
"""


async def prune_message_ids(conn: aiopg.Connection, window_seconds: float, batch: int = PRUNE_BATCH) -> int:
    """Delete the ids recorded more than ``window_seconds`` ago, ``batch`` per statement; return how many."""
    total = 0
    while True:
        async with conn.cursor() as cur:  # autocommit: each batch is its own short transaction
            await cur.execute(_PRUNE, {"window": window_seconds, "batch": batch})
            deleted = cur.rowcount
        total += deleted
        if deleted < batch:
            break
    if total:
        log.info("message_ids_pruned", deleted=total, window_seconds=window_seconds)
    return total
