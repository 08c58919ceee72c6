"""Funnel analysis in one SQL statement.

Semantics (SPEC "Query semantics"): an attempt starts at a step-1 event inside ``[start, end)``;
step k+1 of an attempt is the first event named ``steps[k+1]`` strictly after its step k, at most
``window`` after the attempt's start (inclusive). A user is a person (the person of
``coalesce(user_id, anonymous_id)``, store/identity.py: an anonymous visitor who signs up later is
one person) and counts once, at the furthest step any of their attempts reaches. The times
reported are those of one attempt per user: the attempt reaching furthest, the earliest-starting
such one. Bot events are left out.

Read from np_analytics_event_times (store/rollups/event_times.py: the step events' exact times per distinct
id and hour, with the hours not aggregated yet from raw events) unless a breakdown is asked for (the
step-1 events' property is only in raw events). Only the events of users with an attempt in range,
from their first attempt's start to their last one's window end, are walked.

How: one window pass over the matching events of each user, newest first, gives every event the
time of the first later event of each step (``nx``; a frame of later peer groups only, so ties are
never "after"). Attempts sharing their step-2 event share their path from there on, so a recursive
CTE walks one path per such group (with its latest start, the one that gets furthest) through
hash joins, one iteration per step; the earliest start of the group that reaches as far is then
picked from the group's starts. With a breakdown property, attempts are grouped by that property
of their step-1 event too: a user counts once per value. Steps: at most ``MAX_STEPS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiopg

from .identity import EVENT_PERSON, EVENT_PERSON_JOIN, person_expr, person_join
from .rollups import event_times
from .tx import read_snapshot

__all__ = ["MAX_BREAKDOWN_VALUES", "MAX_STEPS", "FunnelGroup", "FunnelResult", "StepStats", "run_funnel"]

MAX_BREAKDOWN_VALUES = 50

# The intermediate sets (one row per matching event) are sorted and hashed; keep that in memory.

MAX_STEPS = 20

# Without a breakdown: the step events from np_analytics_event_times (store/rollups/event_times.py: the
# rollup and the hours still dirty from raw events, or raw events only), as (u, ts, event, bv).
EV_TIMES = """
ev AS (
    SELECT {person} AS u, x.ts, x.event, NULL::text AS bv
    FROM ({source}) AS x {join}
),"""

# With a breakdown, the property of the step-1 events is needed: raw events.
EV_RAW = f"""
ev AS (
    SELECT {EVENT_PERSON} AS u, e.ts, e.event,
           CASE WHEN %(breakdown)s::text IS NULL THEN NULL ELSE e.properties ->> %(breakdown)s::text END AS bv
    FROM np_analytics_events e {EVENT_PERSON_JOIN}
    WHERE e.source_account_id = %(account)s AND e.event = ANY(%(steps)s::text[])
      AND e.ts >= %(start)s AND e.ts < %(end)s::timestamptz + make_interval(secs => %(window)s)
      AND NOT e.is_bot AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
),"""

FUNNEL = """
WITH RECURSIVE
{ev}
m0 AS (
    SELECT ev.u, ev.ts, ev.bv, s.j::int AS j
    FROM ev JOIN unnest(%(steps)s::text[]) WITH ORDINALITY AS s(name, j) ON s.name = ev.event
),
-- the users with an attempt (a step-1 event in range): only their events from their first start to
-- their last start + window can be part of an attempt
starters AS (
    SELECT u, min(ts) AS lo, max(ts) + make_interval(secs => %(window)s) AS hi FROM m0
    WHERE j = 1 AND ts >= %(start)s AND ts < %(end)s GROUP BY u
),
m AS (SELECT m0.* FROM m0 JOIN starters s ON s.u = m0.u WHERE m0.ts >= s.lo AND m0.ts <= s.hi),
-- per matching event: the time of the first event of each step k strictly later (the frame ends
-- one peer group before the current row: later times only, ties excluded), then that of step j+1
nx AS MATERIALIZED (
    SELECT u, ts, bv, j, (ARRAY[{next_columns}])[j] AS nts
    FROM m
    WINDOW w AS (PARTITION BY u ORDER BY ts DESC GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
-- attempts: one per step-1 event in range; t2 = its step-2 candidate (the first one after it)
attempts AS (SELECT u, bv, ts AS t0, nts AS t2 FROM nx WHERE j = 1 AND ts >= %(start)s AND ts < %(end)s),
-- later steps, unique per (user, step, time) for the walk below
nxt AS MATERIALIZED (SELECT DISTINCT u, j, ts, nts FROM nx WHERE j > 1 AND nts IS NOT NULL),
-- attempts sharing (user, value, t2) share their path after step 1: the latest start reaches furthest
grp AS MATERIALIZED (
    SELECT row_number() OVER () AS gid, u, bv, t2, max(t0) AS smax, array_agg(t0) AS starts
    FROM attempts GROUP BY u, bv, t2
),
chain (gid, u, smax, j, ts) AS (
    SELECT gid, u, smax, 2, t2 FROM grp WHERE t2 <= smax + make_interval(secs => %(window)s)
    UNION ALL
    SELECT c.gid, c.u, c.smax, c.j + 1, n.nts
    FROM chain c JOIN nxt n ON n.u = c.u AND n.j = c.j AND n.ts = c.ts AND n.nts IS NOT NULL
    WHERE n.nts <= c.smax + make_interval(secs => %(window)s)
),
paths AS (SELECT gid, max(j) AS reached, array_agg(ts ORDER BY j) AS times FROM chain GROUP BY gid),
-- per group, the earliest start reaching as far as the latest one does, with its step times
chosen AS (
    SELECT g.u, g.bv, coalesce(p.reached, 1) AS reached, x.t0, x.t0 || p.times AS times
    FROM grp g LEFT JOIN paths p ON p.gid = g.gid
    CROSS JOIN LATERAL (
        SELECT min(s) AS t0 FROM unnest(g.starts) AS s
        WHERE p.gid IS NULL OR s >= p.times[p.reached - 1] - make_interval(secs => %(window)s)
    ) AS x
),
best AS (
    (SELECT DISTINCT ON (u) false AS grouped, NULL::text AS bv, u, reached, times
     FROM chosen ORDER BY u, reached DESC, t0)
    UNION ALL
    (SELECT DISTINCT ON (bv, u) true, bv, u, reached, times
     FROM chosen WHERE %(breakdown)s::text IS NOT NULL ORDER BY bv, u, reached DESC, t0)
),
top AS (
    SELECT bv FROM best WHERE grouped GROUP BY bv ORDER BY count(*) DESC, bv NULLS LAST LIMIT %(max_groups)s
)
SELECT b.grouped, b.bv, k, count(*) AS users,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM b.times[k] - b.times[k - 1]))
           FILTER (WHERE k > 1) AS median_seconds,
       (SELECT count(*) FROM (SELECT DISTINCT bv FROM best WHERE grouped) AS d) AS groups_total
FROM best b CROSS JOIN generate_series(1, %(n)s) AS k
WHERE b.reached >= k AND (NOT b.grouped OR EXISTS (SELECT 1 FROM top WHERE top.bv IS NOT DISTINCT FROM b.bv))
GROUP BY b.grouped, b.bv, k
"""

@dataclass
class StepStats:
    """Users reaching one step and the median seconds from the previous step (None for step 1)."""

    users: int = 0
    median_seconds: float | None = None


@dataclass
class FunnelGroup:
    """Per-step results of all users, or of the attempts with one breakdown value."""

    value: str | None
    steps: list[StepStats]


@dataclass
class FunnelResult:
    total: FunnelGroup
    groups: list[FunnelGroup] = field(default_factory=list)
    groups_total: int = 0


async def run_funnel(conn: aiopg.Connection, *, account: str, steps: list[str], start: datetime, end: datetime,
                     window_seconds: float, breakdown: str | None = None) -> FunnelResult:
    """Compute the funnel of ``steps`` for attempts starting in ``[start, end)``."""
    params = {"account": account, "steps": steps, "n": len(steps), "start": start, "end": end,
              "window": window_seconds, "breakdown": breakdown, "max_groups": MAX_BREAKDOWN_VALUES}
    # only the columns of the steps asked for (a window aggregate each); the count is a validated integer
    next_columns = ", ".join(f"min(ts) FILTER (WHERE j = {k}) OVER w" for k in range(2, len(steps) + 1))
    async with read_snapshot(conn) as cur:
        if breakdown is None:
            times = await event_times.plan(cur, account, start, end + timedelta(seconds=window_seconds))
            params = {**times.params, **params, "names": steps}
            ev = EV_TIMES.format(person=person_expr("x.u"), source=event_times.source(times), join=person_join("x.u"))
        else:
            ev = EV_RAW
        await cur.execute(FUNNEL.format(ev=ev, next_columns=next_columns), params)
        rows = await cur.fetchall()
    total = FunnelGroup(None, [StepStats() for _ in steps])
    groups: dict[str | None, FunnelGroup] = {}
    for grouped, value, k, users, median, _groups in rows:
        group = groups.setdefault(value, FunnelGroup(value, [StepStats() for _ in steps])) if grouped else total
        group.steps[k - 1] = StepStats(int(users), None if median is None else float(median))
    ordered = sorted(groups.values(), key=lambda g: (-g.steps[0].users, g.value is None, g.value or ""))
    return FunnelResult(total, ordered, int(rows[0][5]) if rows else 0)
