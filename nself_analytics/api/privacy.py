"""A person's data rights (issue 25 items 3 and 4): erasure (DELETE /persons/{distinct_id}, GET
/persons/erasures/{job}), the suppression list (GET /suppressions, DELETE /suppressions/{distinct_id}) and the
export of one person (GET /persons/{distinct_id}/export, NDJSON).

Token only; the request's account. An id is normalized as ingest normalizes it (model/wire.py subject_id: surrounding
white space trimmed, ingest stores " u1" as "u1"), 1-255 characters (MAX_ID, as ingest), without NUL. Erasing an id
never seen answers 202 too (``known``: false): its events may still be queued, and the suppression drops them and
any later one (Segment's SUPPRESS_WITH_DELETE accepts any subject id; PostHog answers 404 for an unknown person,
which would let queued events land). The command line (``nself-analytics persons``, host/persons_cli.py) does the
same through the same store modules and job runner, without the HTTP API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec
from aiohttp import web

from ..model.wire import MAX_ID, SUBJECT_MESSAGE, subject_id
from ..store import erasure, person_export, suppressions
from ..store.erasure import JobReport, State
from ..web import params
from ..web.auth import grant_of
from ..web.errors import ApiError
from ..web.pools import reading, writing
from ..web.routing import TOKEN, Body, Route

__all__ = ["ROUTES", "actor_of"]

def actor_of(request: web.Request) -> str:
    """Who asks, for the audit log: the credential's role and the account it is bound to (never a secret)."""
    grant = grant_of(request)
    if grant is None:
        return "unknown"
    return f"{grant.role}:{grant.account}" if grant.account else f"{grant.role}:*"


class PersonId(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(description=(
        f"A distinct id (user or anonymous id), percent-encoded in the path: 1-{MAX_ID} characters once trimmed"))]

    MESSAGES: ClassVar[dict[str, str]] = {"id": SUBJECT_MESSAGE, "id:missing": SUBJECT_MESSAGE}

    def __post_init__(self) -> None:
        self.id = subject_id(self.id)


class JobParams(msgspec.Struct, kw_only=True):
    job: Annotated[uuid.UUID, msgspec.Meta(description="The job id DELETE /persons/{id} answered")]

    MESSAGES: ClassVar[dict[str, str]] = {"job": "job must be a UUID"}


class SuppressionsParams(msgspec.Struct, kw_only=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000, description="Rows per page")] = 100
    offset: Annotated[int, msgspec.Meta(ge=0, le=1_000_000, description="Rows to skip")] = 0


class ErasureAnswer(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["success"]
    job: Annotated[str, msgspec.Meta(description="the job id (a UUID)")]
    state: State
    phase: Annotated[str, msgspec.Meta(description=f"queued, then {', '.join(erasure.PHASES)}")]
    progress: Annotated[float, msgspec.Meta(ge=0, le=1)]
    counts: Annotated[dict[str, int], msgspec.Meta(
        description="rows and keys deleted so far, by kind (ids: the person's ids)")]
    requested_by: Annotated[str, msgspec.Meta(description="the credential's role and bound account")]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None
    known: Annotated[bool, msgspec.Meta(
        description="(the 202 only) whether the id was seen: an unknown id is suppressed all the same")
    ] | msgspec.UnsetType = msgspec.UNSET


def _answer(report: JobReport, known: bool | msgspec.UnsetType = msgspec.UNSET) -> ErasureAnswer:
    return ErasureAnswer(status="success", known=known, **msgspec.structs.asdict(report))


class SuppressionRow(msgspec.Struct, frozen=True):
    id_hash: Annotated[str, msgspec.Meta(description="salted SHA-256 of (account, id): never the id")]
    job: str | None
    created_at: datetime


class SuppressionList(msgspec.Struct, frozen=True):
    status: Literal["success"]
    total: int
    limit: int
    offset: int
    data: list[SuppressionRow]


class Lifted(msgspec.Struct, frozen=True):
    status: Literal["success"]
    lifted: Literal[True]


async def erase(request: web.Request, query: PersonId) -> ErasureAnswer:
    """Deletes the person's events, traits, identity links and per-id rollup rows, recomputes every rollup from the
    remaining events, deletes its webhook deliveries, dead letters, per-user counters and de-duplication keys, and
    suppresses its ids: later (and still queued) events carrying them are dropped and counted in /health
    (dropped_suppressed) until DELETE /suppressions/{id}. An unknown id is suppressed too (202, known false)."""
    account = params.account(request)
    async with writing(request) as conn:
        job, known = await erasure.create_job(conn, account=account, distinct_id=query.id, actor=actor_of(request))
    return _answer(job.report(), known)


async def erasure_status(request: web.Request, query: JobParams) -> ErasureAnswer:
    """404 for a job of another account."""
    account = params.account(request)
    async with writing(request) as conn:  # the primary: a replica may not have the job yet
        job = await erasure.get_job(conn, str(query.job), account)
    if job is None:
        raise ApiError(404, "Erasure job not found")
    return _answer(job.report())


async def list_suppressions(request: web.Request, query: SuppressionsParams) -> SuppressionList:
    """Newest first; an id is never shown, only its salted hash."""
    account = params.account(request)
    async with writing(request) as conn:
        rows, total = await suppressions.listing(conn, account, query.limit, query.offset)
    return SuppressionList("success", total, query.limit, query.offset,
                           [SuppressionRow(r.id_hash, r.job_id, r.created_at) for r in rows])


async def lift_suppression(request: web.Request, query: PersonId) -> Lifted:
    """404 when the id is not suppressed. The drain reads the list at once; ingest's copy within seconds."""
    account = params.account(request)
    async with writing(request) as conn:
        lifted = await suppressions.lift(conn, account, query.id, actor_of(request))
    if not lifted:
        raise ApiError(404, "This id is not suppressed")
    return Lifted("success", True)


async def export(request: web.Request, query: PersonId) -> web.StreamResponse:
    """One JSON object a line (application/x-ndjson), in constant memory: the person's events in the export's
    Segment-like shape (with messageId), then identify lines (traits) and alias lines (links). An unknown id
    answers an empty body."""
    account = params.account(request)
    async with reading(request) as conn:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson; charset=utf-8",
                                               "Content-Disposition": 'attachment; filename="person.ndjson"'})
        await response.prepare(request)
        async for line in person_export.lines(conn, account, query.id):
            await response.write(line)
    await response.write_eof()
    return response


ROUTES = [
    Route("DELETE", r"/persons/{id:[^/]+}", erase, TOKEN, name="privacy.erase", tags=("People",),
          op_id="persons_erase", params=PersonId, answer=ErasureAnswer, status=202,
          summary="Erase a person: every id linked to it and everything derived (SUPPRESS_WITH_DELETE)"),
    Route("GET", r"/persons/erasures/{job:[^/]+}", erasure_status, TOKEN, name="privacy.erasure", tags=("People",),
          op_id="persons_erasure", params=JobParams, answer=ErasureAnswer,
          summary="The progress of an erasure job"),
    Route("GET", r"/persons/{id:[^/]+}/export", export, TOKEN, name="privacy.export", tags=("People",),
          op_id="persons_export", params=PersonId, answer=Body("application/x-ndjson", (
              "One JSON object a line: events in the export's Segment-like shape (model/ndjson.py, with messageId), "
              "then identify lines (traits) and alias lines (links); empty for an unknown id")),
          summary="Export a person: every event, trait and identity link of all its ids, as NDJSON"),
    Route("GET", "/suppressions", list_suppressions, TOKEN, name="privacy.suppressions", tags=("People",),
          op_id="suppressions_list", params=SuppressionsParams, answer=SuppressionList,
          summary="The suppressed (erased) ids, as salted hashes"),
    Route("DELETE", r"/suppressions/{id:[^/]+}", lift_suppression, TOKEN, name="privacy.unsuppress",
          tags=("People",), op_id="suppressions_lift", params=PersonId, answer=Lifted,
          summary="Lift the suppression of an id (UNSUPPRESS): its later events are stored again"),
]
