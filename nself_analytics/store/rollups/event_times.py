"""Event times per (account, event name, UTC hour, distinct id): what funnels and sessions read.

``np_analytics_event_times`` (migration 0090) keeps, for each distinct id (``coalesce(user_id,
anonymous_id)``), the sorted times of its events of one name in one UTC hour (bots and events
without a distinct id left out: no funnel or session counts them), at most ``MAX_TIMES`` per row
(``chunk`` numbers the rows of a busier hour). A query reads only the rows of the names it asks for
and unnests their times: the same (id, name, time) triples the raw rows give, so every figure
stays exact; the person of each id is applied when read (store/identity.py), so a link made later
applies to these rows too.

Kept by the aggregator (:func:`refresh`): the rows of each claimed dirty hour are replaced from
that hour's raw events (per (event, hour, id) present in them: raw events of an hour only ever grow,
so they cover every old key; a pruned hour has no raw rows and keeps its rows). The work is proportional to the
claimed hours, and a row's size is bounded by ``MAX_TIMES``.

Readers (:func:`plan` then :func:`source`) read the hours still dirty (the drain wrote to them after
the aggregator last ran: typically the current hour) from raw events and every other hour from the
rollup, in one snapshot; when the dirty hours span ``MAX_DIRTY_SPAN`` or more (a backlog, e.g. an
import), everything comes from raw events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg

from .dirty import dirty_hours

__all__ = ["EXPIRE", "MAX_DIRTY_SPAN", "MAX_TIMES", "TimesSource", "plan", "refresh", "source"]

# Times per row: a distinct id sending a flood of one event in one hour makes more rows, not a huge array.
MAX_TIMES = 4096
# When the account's dirty hours in a range span this long or more (a backlog), read raw events only.
MAX_DIRTY_SPAN = timedelta(days=7)

_HOUR_OF_TS = "date_trunc('hour', e.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
_DISTINCT = "coalesce(e.user_id, e.anonymous_id)"

# The rows of the claimed hours (any hour: one whose raw events were pruned has none and keeps its rows),
# rebuilt from one scan of [lo, hi) (bounds known when planning: only those partitions are read): the rows of
# every (event, hour, id) with raw events are deleted and inserted afresh in one statement (one snapshot).
REFRESH = f"""
WITH claimed AS (
    SELECT DISTINCT c.source_account_id, c.hour
    FROM jsonb_to_recordset(%(claimed)s::jsonb) AS c(source_account_id text, hour timestamptz)
),
fresh AS MATERIALIZED (
    SELECT source_account_id, event, hour, u, (n - 1) / {MAX_TIMES} AS chunk, array_agg(ts ORDER BY ts) AS ts
    FROM (
        SELECT e.source_account_id, e.event, b.hour, {_DISTINCT} COLLATE "C" AS u, e.ts,
               row_number() OVER (PARTITION BY e.source_account_id, e.event, b.hour, {_DISTINCT} ORDER BY e.ts) AS n
        FROM np_analytics_events e
        CROSS JOIN LATERAL (SELECT {_HOUR_OF_TS} AS hour) AS b
        WHERE e.ts >= %(lo)s AND e.ts < %(hi)s AND NOT e.is_bot AND {_DISTINCT} IS NOT NULL
          AND (e.source_account_id, b.hour) IN (SELECT source_account_id, hour FROM claimed)
    ) AS x
    GROUP BY 1, 2, 3, 4, 5
),
replaced AS (
    -- the rows of the claimed hours (read once) against the keys of the fresh rows (hashed)
    DELETE FROM np_analytics_event_times r
    WHERE r.hour >= %(lo)s AND r.hour < %(hi)s
      AND (r.source_account_id, r.event, r.hour, r.u) IN (SELECT source_account_id, event, hour, u FROM fresh)
)
INSERT INTO np_analytics_event_times (source_account_id, event, hour, u, chunk, ts)
SELECT source_account_id, event, hour, u, chunk, ts FROM fresh
"""

# No unique key to conflict on: one replacement at a time (the aggregator runs in the leader; this also holds
# if two runs overlap while leadership moves), each seeing the rows the previous one committed.
LOCK = "SELECT pg_advisory_xact_lock(hashtext('np_analytics_event_times'))"

EXPIRE = """
DELETE FROM np_analytics_event_times
WHERE hour < (date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => %(days)s)) AT TIME ZONE 'UTC'
"""

# Raw events named in %(names)s of the account with lo <= ts < hi, as (u, event, ts); {extra}: more conditions.
_RAW = f"""
SELECT {_DISTINCT} COLLATE "C" AS u, e.event, e.ts
FROM np_analytics_events e
WHERE e.source_account_id = %(account)s AND e.event = ANY(%(names)s::text[]) AND NOT e.is_bot
  AND {_DISTINCT} IS NOT NULL AND e.ts >= {{lo}} AND e.ts < {{hi}}{{extra}}"""

RAW = _RAW.format(lo="%(lo)s", hi="%(hi)s::timestamptz", extra="")

# The rollup's rows of the hours not dirty, and the dirty hours' raw events (their partitions only).
MIXED = """
SELECT u, event, ts FROM (
    SELECT r.u, r.event, unnest(r.ts) AS ts
    FROM np_analytics_event_times r
    WHERE r.source_account_id = %(account)s AND r.event = ANY(%(names)s::text[])
      AND r.hour >= %(lo_hour)s AND r.hour < %(hi)s::timestamptz AND r.hour <> ALL(%(dirty)s::timestamptz[])
) AS r
WHERE ts >= %(lo)s AND ts < %(hi)s::timestamptz
UNION ALL""" + _RAW.format(
    lo="greatest(%(lo)s, %(dirty_lo)s)", hi="least(%(hi)s::timestamptz, %(dirty_hi)s)",
    extra=f"\n  AND {_HOUR_OF_TS} = ANY(%(dirty)s::timestamptz[])")


@dataclass(frozen=True)
class TimesSource:
    """Where a read's events come from: the rollup with raw dirty hours, or raw events only."""

    rollup: bool
    params: dict[str, Any]


def _floor_hour(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def plan(cur: aiopg.Cursor, account: str, lo: datetime, hi: datetime | None) -> TimesSource:
    """The source of the events with ``lo <= ts < hi`` (``hi`` None: no upper bound) of ``account``.
    Run inside the read's transaction, at REPEATABLE READ, so the dirty hours and the rows agree."""
    params: dict[str, Any] = {"account": account, "lo": lo, "hi": "infinity" if hi is None else hi,
                              "lo_hour": _floor_hour(lo)}
    marks = await dirty_hours(cur, account, _floor_hour(lo), hi)
    dirty = marks["dirty"]
    if dirty and dirty[-1] - dirty[0] >= MAX_DIRTY_SPAN:
        return TimesSource(False, params)
    return TimesSource(True, {**params, **marks})


def source(times: TimesSource) -> str:
    """SQL of a subquery giving (u: distinct id, event, ts) of the events named in ``%(names)s``, within the
    planned bounds; its parameters are ``times.params`` plus ``names``."""
    return MIXED if times.rollup else RAW


async def refresh(cur: aiopg.Cursor, claimed: str, lo: datetime | None, hi: datetime | None) -> None:
    """Rebuild the rows of the claimed hours (JSON of (source_account_id, hour)) within ``[lo, hi)``."""
    if lo is None:
        return
    await cur.execute(LOCK)
    # The delete's estimate of the fresh keys is a guess: a nested loop (or merge join) on the (account, event, hour)
    # index filters every id of an event's hour once per key, quadratic in the hour's rows (0.35 s for one hour at
    # 3M events); a hash semi-join on all four keys reads the claimed hours' rows once (7 ms).
    await cur.execute("SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off")
    await cur.execute(REFRESH, {"claimed": claimed, "lo": lo, "hi": hi})
    await cur.execute("RESET enable_nestloop; RESET enable_mergejoin")
