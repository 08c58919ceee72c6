"""The event outbox (np_analytics_event_outbox, migration 0104): one narrow row per event the drain stored, read in
order by the facts task (pipeline/facts.py) inside one transaction that also writes the facts (webhook deliveries,
quota violations) and deletes the rows: a crash in between rolls both back, and the facts' own keys (a delivery's
``(webhook_id, dedupe_key)``, a violation's first crossing) keep a fact once if rows are read again."""

from __future__ import annotations

from datetime import datetime

import aiopg
import msgspec

__all__ = ["NewEvent", "claim", "drop", "fan_out_tracked", "pending_count"]


class NewEvent(msgspec.Struct, frozen=True):
    """An event newly stored by the drain, as the facts task sees it."""

    seq: int
    source_account_id: str
    message_id: str
    ts: datetime
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    is_bot: bool


# The oldest rows, locked for this transaction (another process's facts task skips them) and deleted at its commit.
CLAIM = """
DELETE FROM np_analytics_event_outbox o
WHERE o.seq IN (SELECT seq FROM np_analytics_event_outbox ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING o.seq, o.source_account_id, o.message_id::text, o.ts, o.type, o.event, o.user_id, o.anonymous_id, o.is_bot
"""

DROP = "DELETE FROM np_analytics_event_outbox WHERE seq = ANY (%(seqs)s::bigint[])"

PENDING = "SELECT count(*) FROM np_analytics_event_outbox"

# event.tracked deliveries of the claimed events, one per active webhook of their account that lists the event's
# name; the payload from the stored event (found by the (account, event, ts) index and its message id).
FAN_OUT_TRACKED = """
WITH claimed AS (
    SELECT * FROM jsonb_to_recordset(%(events)s::jsonb)
         AS c(source_account_id text, message_id uuid, ts timestamptz, event text)
), hooks AS (
    SELECT w.id, w.source_account_id, w.event_names FROM np_analytics_webhooks w
    WHERE w.active AND 'event.tracked' = ANY (w.events)
      AND w.source_account_id IN (SELECT source_account_id FROM claimed)
)
INSERT INTO np_analytics_webhook_deliveries (id, source_account_id, webhook_id, event, dedupe_key, payload)
SELECT gen_random_uuid(), e.source_account_id, h.id, 'event.tracked', e.message_id::text,
       jsonb_build_object('message_id', e.message_id, 'type', e.type, 'event', e.event, 'timestamp', e.ts,
                          'user_id', e.user_id, 'anonymous_id', e.anonymous_id, 'site', e.site, 'path', e.path,
                          'properties', coalesce(e.properties, '{}'::jsonb))
FROM claimed c
JOIN hooks h ON h.source_account_id = c.source_account_id AND c.event = ANY (h.event_names)
JOIN np_analytics_events e ON e.source_account_id = c.source_account_id AND e.event = c.event AND e.ts = c.ts
     AND e.message_id = c.message_id
ON CONFLICT (webhook_id, dedupe_key) DO NOTHING
"""

_ROW = msgspec.json.Encoder()


async def claim(conn: aiopg.Connection, limit: int) -> list[NewEvent]:
    """The oldest ``limit`` rows, deleted when the caller's transaction commits."""
    async with conn.cursor() as cur:
        await cur.execute(CLAIM, {"limit": limit})
        rows = await cur.fetchall()
    return sorted((NewEvent(*row) for row in rows), key=lambda e: e.seq)


async def fan_out_tracked(conn: aiopg.Connection, events: list[NewEvent]) -> int:
    """event.tracked deliveries of ``events``; return how many were enqueued."""
    named = [{"source_account_id": e.source_account_id, "message_id": e.message_id, "ts": e.ts, "event": e.event}
             for e in events if e.event]
    if not named:
        return 0
    async with conn.cursor() as cur:
        await cur.execute(FAN_OUT_TRACKED, {"events": _ROW.encode(named).decode()})
        return int(cur.rowcount)


async def drop(conn: aiopg.Connection, seqs: list[int]) -> None:
    """Delete rows whose facts cannot be found within a statement timeout (a data fault: never retried forever)."""
    async with conn.cursor() as cur:
        await cur.execute(DROP, {"seqs": seqs})


async def pending_count(conn: aiopg.Connection) -> int:
    async with conn.cursor() as cur:
        await cur.execute(PENDING)
        (count,) = await cur.fetchone()
        return int(count)
