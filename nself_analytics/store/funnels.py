"""Funnel analysis in one SQL statement.

Semantics (SPEC "Query semantics"): an attempt starts at a step-1 event inside ``[start, end)``;
step k+1 of an attempt is the first event named ``steps[k+1]`` strictly after its step k, at most
``window`` after the attempt's start (inclusive). A user (``coalesce(user_id, anonymous_id)``)
counts once, at the furthest step any of their attempts reaches. The times reported are those of
one attempt per user: the attempt reaching furthest, the earliest-starting such one. Bot events
are left out.

How: ``nxt`` holds, for every event that can be step k, the time of the first step-(k+1) event
strictly after it. It comes from one window pass (a reverse running ``min``) over the events of
each user and step, sources and targets sorted together. A recursive CTE then walks each attempt
through ``nxt`` with hash joins, at most one iteration per step. With a breakdown property, each
attempt is also grouped by that property of its step-1 event: a user counts once per value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import aiopg

from .tx import transaction

__all__ = ["MAX_BREAKDOWN_VALUES", "FunnelGroup", "FunnelResult", "StepStats", "run_funnel"]

MAX_BREAKDOWN_VALUES = 50

# The intermediate sets (one row per matching event) are sorted and hashed; keep that in memory.
QUERY_SETTINGS = "SET LOCAL work_mem = '64MB'"

FUNNEL = """
WITH RECURSIVE
ev AS (
    SELECT coalesce(e.user_id, e.anonymous_id) COLLATE "C" AS u, e.ts, e.event,
           CASE WHEN %(breakdown)s::text IS NULL THEN NULL ELSE e.properties ->> %(breakdown)s::text END AS bv
    FROM np_analytics_events e
    WHERE e.source_account_id = %(account)s AND e.event = ANY(%(steps)s::text[])
      AND e.ts >= %(start)s AND e.ts < %(end)s::timestamptz + make_interval(secs => %(window)s)
      AND NOT e.is_bot AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
),
m AS (
    SELECT ev.u, ev.ts, ev.bv, s.j::int AS j
    FROM ev JOIN unnest(%(steps)s::text[]) WITH ORDINALITY AS s(name, j) ON s.name = ev.event
),
-- sources (a possible step k, keyed k+1) and targets (a step k+1) of one user sorted by time
-- descending, sources first on ties: the running min over targets is the next one strictly later
nxt AS MATERIALIZED (
    SELECT u, key - 1 AS j, ts, bv, nts FROM (
        SELECT u, key, ts, bv, src,
               min(ts) FILTER (WHERE NOT src) OVER (PARTITION BY u, key ORDER BY ts DESC, src DESC) AS nts
        FROM (SELECT u, 2 AS key, ts, bv, true AS src FROM m WHERE j = 1
              UNION ALL
              -- later steps must be unique per (user, step, time) for the walk below
              SELECT DISTINCT u, j + 1, ts, NULL, true FROM m WHERE j > 1 AND j < %(n)s
              UNION ALL
              SELECT u, j, ts, NULL, false FROM m WHERE j > 1) AS x
    ) AS y
    WHERE src
),
-- attempts: one per step-1 event in range; t2 = its step-2 candidate (the first one after it)
attempts AS (SELECT u, bv, ts AS t0, nts AS t2 FROM nxt WHERE j = 1 AND ts >= %(start)s AND ts < %(end)s),
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
    async with transaction(conn) as cur:
        await cur.execute(QUERY_SETTINGS)
        await cur.execute(FUNNEL, params)
        rows = await cur.fetchall()
    total = FunnelGroup(None, [StepStats() for _ in steps])
    groups: dict[str | None, FunnelGroup] = {}
    for grouped, value, k, users, median, _groups in rows:
        group = groups.setdefault(value, FunnelGroup(value, [StepStats() for _ in steps])) if grouped else total
        group.steps[k - 1] = StepStats(int(users), None if median is None else float(median))
    ordered = sorted(groups.values(), key=lambda g: (-g.steps[0].users, g.value is None, g.value or ""))
    return FunnelResult(total, ordered, int(rows[0][5]) if rows else 0)
