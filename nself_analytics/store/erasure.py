"""Erasure jobs (migration 0102): created by DELETE /persons/{distinct_id} (or ``nself-analytics persons erase``),
run by the leader's ``erasures`` loop (pipeline/erasures.py), reported by GET /persons/erasures/{job}.

Creating a job, in one transaction under the account's identity lock (the advisory lock of np_analytics_link_ids,
so no link moves meanwhile): the person's ids (the id's person root and every id mapped to it; at most
ANALYTICS_MAX_IDS_PER_PERSON), their suppression, the job row and an audit row. The job then goes through
:data:`PHASES`, each a set of bounded, idempotent statements (store/erasure_steps.py), so a restart resumes where
it stopped. When done, the row keeps only counts: its ids, hours and names are set to NULL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import aiopg
import msgspec

from . import suppressions
from .tx import transaction

__all__ = ["PHASES", "Job", "JobReport", "State", "add_counts", "create_job", "finish_job", "get_job", "open_jobs",
           "person_ids", "set_phase"]

# wait: until every statement older than the suppression has ended (a drain batch that did not see it has
# committed, so the deletes below see its rows); events, scrub, people, rollup_rows, outbox: Postgres; redis: the
# counters, de-duplication keys and dead letters; rollups: the aggregator has recomputed every hour concerned.
State = Literal["pending", "running", "done", "failed"]
PHASES = ("wait", "events", "scrub", "people", "rollup_rows", "outbox", "redis", "rollups", "done")

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('np_analytics_person_map:' || %(account)s, 0))"

PERSON_IDS = """
WITH root AS (
    SELECT coalesce((SELECT m.person_id FROM np_analytics_person_map m
                     WHERE m.source_account_id = %(account)s AND m.distinct_id = %(id)s COLLATE "C"),
                    %(id)s COLLATE "C") AS person
)
SELECT root.person FROM root
UNION
SELECT m.distinct_id FROM root JOIN np_analytics_person_map m
    ON m.source_account_id = %(account)s AND m.person_id = root.person
"""


class Job(msgspec.Struct, frozen=True):
    """An erasure job as reported: never an id (``ids`` is internal and None once done)."""

    id: str
    source_account_id: str
    state: State
    phase: str
    counts: dict[str, int]
    requested_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None
    ids: list[str] | None = None
    hours: list[datetime] | None = None
    names: list[str] | None = None
    barrier: datetime | None = None

    def report(self) -> JobReport:
        return JobReport(self.id, self.state, self.phase,
                         round(PHASES.index(self.phase) / (len(PHASES) - 1), 3) if self.phase in PHASES else 0.0,
                         self.counts, self.requested_by, self.created_at, self.updated_at, self.finished_at,
                         self.error)


class JobReport(msgspec.Struct, frozen=True):
    """What GET /persons/erasures/{job} and ``nself-analytics persons erase`` show of a job (never an id)."""

    job: str
    state: State
    phase: str
    progress: float
    counts: dict[str, int]
    requested_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None


_JOB_COLUMNS = ("id::text, source_account_id, state, phase, counts, requested_by, created_at, updated_at, finished_at, "
                "error, ids, hours, names, barrier")


async def person_ids(cur: aiopg.Cursor, account: str, distinct_id: str) -> list[str]:
    await cur.execute(PERSON_IDS, {"account": account, "id": distinct_id})
    return sorted(str(i) for (i,) in await cur.fetchall())


async def create_job(conn: aiopg.Connection, *, account: str, distinct_id: str, actor: str) -> tuple[Job, bool]:
    """Suppress the person of ``distinct_id`` and queue its erasure; return the job and whether the id was known
    (seen in an event, a link or a user: an unknown id is suppressed all the same, its events may be queued)."""
    job_id = str(uuid.uuid4())
    async with transaction(conn) as cur:
        await cur.execute(_LOCK, {"account": account})
        await cur.execute("SELECT np_analytics_known_id(%(account)s, %(id)s)", {"account": account, "id": distinct_id})
        (known,) = await cur.fetchone()
        ids = await person_ids(cur, account, distinct_id)
        await suppressions.add(cur, account, ids, job_id)
        await cur.execute("""
            INSERT INTO np_analytics_erasures (id, source_account_id, subject_hash, ids, requested_by, counts)
            VALUES (%(job)s, %(account)s, np_analytics_id_hash(%(account)s, %(id)s), %(ids)s, %(actor)s,
                    jsonb_build_object('ids', %(n)s::int))""",
                          {"job": job_id, "account": account, "id": distinct_id, "ids": ids, "actor": actor,
                           "n": len(ids)})
        await cur.execute("SELECT np_analytics_id_hash(%(account)s, %(id)s)", {"account": account, "id": distinct_id})
        (subject,) = await cur.fetchone()
        await suppressions.audit(cur, account=account, actor=actor, action="erase_requested", job_id=job_id,
                                 subject_hash=subject, detail={"ids": len(ids), "known": bool(known)})
    job = await get_job(conn, job_id)
    assert job is not None
    return job, bool(known)


async def get_job(conn: aiopg.Connection, job_id: str, account: str | None = None) -> Job | None:
    """The job ``job_id`` (of ``account`` when given), or None."""
    async with conn.cursor() as cur:
        await cur.execute(f"SELECT {_JOB_COLUMNS} FROM np_analytics_erasures WHERE id = %(id)s::uuid "
                          "AND (%(account)s::text IS NULL OR source_account_id = %(account)s)",
                          {"id": job_id, "account": account})
        row = await cur.fetchone()
    return None if row is None else Job(*row)


async def open_jobs(conn: aiopg.Connection) -> list[str]:
    """Ids of the jobs not finished, oldest first."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT id::text FROM np_analytics_erasures WHERE state IN ('pending', 'running') "
                          "ORDER BY created_at")
        return [i for (i,) in await cur.fetchall()]


async def set_phase(conn: aiopg.Connection, job_id: str, phase: str, counts: dict[str, int] | None = None,
                    barrier: bool = False) -> None:
    """Move the job to ``phase`` adding ``counts`` to its counts (``barrier``: also note the time the wait ends at:
    now, after the suppression committed)."""
    async with conn.cursor() as cur:
        await cur.execute("""
            UPDATE np_analytics_erasures SET phase = %(phase)s, state = 'running', updated_at = now(),
                counts = counts || %(counts)s::jsonb,
                barrier = CASE WHEN %(barrier)s THEN clock_timestamp() ELSE barrier END
            WHERE id = %(id)s::uuid""", {"id": job_id, "phase": phase, "counts": msgspec.json.encode(counts or {})
                                         .decode(), "barrier": barrier})


async def add_counts(cur: aiopg.Cursor, job_id: str, counts: dict[str, int], hours: Sequence[datetime] = (),
                     names: Sequence[str] = ()) -> None:
    """Add to the job's counts (and the hours and event names its deletes touched), in the caller's transaction."""
    await cur.execute("""
        UPDATE np_analytics_erasures e SET updated_at = now(),
            counts = (SELECT jsonb_object_agg(k, coalesce((e.counts->>k)::bigint, 0) + coalesce((n.c->>k)::bigint, 0))
                      FROM (SELECT %(counts)s::jsonb AS c) AS n,
                           LATERAL (SELECT jsonb_object_keys(e.counts) UNION SELECT jsonb_object_keys(n.c)) AS x(k)),
            hours = ARRAY(SELECT DISTINCT h FROM unnest(coalesce(e.hours, '{}') || %(hours)s::timestamptz[]) AS h
                          ORDER BY h),
            names = ARRAY(SELECT DISTINCT n FROM unnest(coalesce(e.names, '{}') || %(names)s::text[]) AS n ORDER BY n)
        WHERE id = %(id)s::uuid""", {"id": job_id, "counts": msgspec.json.encode(counts).decode(),
                                     "hours": list(hours), "names": list(names)})


async def finish_job(conn: aiopg.Connection, job: Job, error: str | None = None) -> None:
    """End the job (done, or failed with ``error``): drop its ids, hours and names; audit it with its counts."""
    async with transaction(conn) as cur:
        await cur.execute("""
            UPDATE np_analytics_erasures SET state = %(state)s, phase = CASE WHEN %(state)s = 'done' THEN 'done'
                ELSE phase END, ids = NULL, hours = NULL, names = NULL, error = %(error)s, updated_at = now(),
                finished_at = now()
            WHERE id = %(id)s::uuid RETURNING subject_hash, counts""",
                          {"id": job.id, "state": "failed" if error else "done", "error": error})
        subject, counts = await cur.fetchone()
        await suppressions.audit(cur, account=job.source_account_id, actor=job.requested_by,
                                 action="erase_failed" if error else "erase_completed", job_id=job.id,
                                 subject_hash=subject, detail=counts)
