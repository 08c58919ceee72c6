"""A person's data rights (issue 25 items 3 and 4): erasure (DELETE /persons/{distinct_id}, GET
/persons/erasures/{job}), the suppression list (GET /suppressions, DELETE /suppressions/{distinct_id}) and the
export of one person (GET /persons/{distinct_id}/export, NDJSON).

Token only (api/routes.py); the request's account. An id is normalized as ingest normalizes it (surrounding
white space trimmed: ingest stores " u1" as "u1"), 1-255 characters (MAX_ID, as ingest), without NUL. Erasing an
id never seen answers 202 too (``known``: false): its events may still be queued, and the suppression drops them
and any later one (Segment's SUPPRESS_WITH_DELETE accepts any subject id; PostHog answers 404 for an unknown
person, which would let queued events land).
"""

from __future__ import annotations

import uuid

from aiohttp import web

from ..model.ndjson import encode_line, event_line, identify_line
from ..model.wire import MAX_ID
from ..store import erasure, person_export, suppressions
from ..web import params
from ..web.auth import grant_of
from ..web.errors import ApiError
from ..web.pools import reading, writing

__all__ = ["actor_of", "distinct_id", "routes"]

routes = web.RouteTableDef()


def distinct_id(value: str) -> str:
    value = value.strip()  # as ingest/normalize.py _ident: the stored id
    if not value or len(value) > MAX_ID or "\x00" in value:
        raise ApiError(400, f"distinct_id must be 1-{MAX_ID} characters, without NUL")
    return value


def actor_of(request: web.Request) -> str:
    """Who asks, for the audit log: the credential's role and the account it is bound to (never a secret)."""
    grant = grant_of(request)
    if grant is None:
        return "unknown"
    return f"{grant.role}:{grant.account}" if grant.account else f"{grant.role}:*"


@routes.delete(r"/persons/{id:[^/]+}", name="privacy.erase")
async def erase(request: web.Request) -> web.Response:
    account = params.account(request)
    subject = distinct_id(request.match_info["id"])
    async with writing(request) as conn:
        job, known = await erasure.create_job(conn, account=account, distinct_id=subject, actor=actor_of(request))
    return web.json_response({"status": "success", "known": known, **job.report()}, status=202)


@routes.get(r"/persons/erasures/{job:[^/]+}", name="privacy.erasure")
async def erasure_status(request: web.Request) -> web.Response:
    account = params.account(request)
    try:
        job_id = str(uuid.UUID(request.match_info["job"]))
    except ValueError:
        raise ApiError(400, "job must be a UUID") from None
    async with writing(request) as conn:  # the primary: a replica may not have the job yet
        job = await erasure.get_job(conn, job_id, account)
    if job is None:
        raise ApiError(404, "Erasure job not found")
    return web.json_response({"status": "success", **job.report()})


@routes.get("/suppressions", name="privacy.suppressions")
async def list_suppressions(request: web.Request) -> web.Response:
    account = params.account(request)
    limit = params.integer(request.query, "limit", 100, 1, 1000)
    offset = params.integer(request.query, "offset", 0, 0, 1_000_000)
    async with writing(request) as conn:
        rows, total = await suppressions.listing(conn, account, limit, offset)
    return web.json_response({"status": "success", "total": total, "limit": limit, "offset": offset,
                              "data": [{"id_hash": r.id_hash, "job": r.job_id, "created_at": r.created_at.isoformat()}
                                       for r in rows]})


@routes.delete(r"/suppressions/{id:[^/]+}", name="privacy.unsuppress")
async def lift_suppression(request: web.Request) -> web.Response:
    account = params.account(request)
    subject = distinct_id(request.match_info["id"])
    async with writing(request) as conn:
        lifted = await suppressions.lift(conn, account, subject, actor_of(request))
    if not lifted:
        raise ApiError(404, "This id is not suppressed")
    # the leader's erasures loop republishes the Redis copy within seconds; the drain reads the table at once
    return web.json_response({"status": "success", "lifted": True})


@routes.get(r"/persons/{id:[^/]+}/export", name="privacy.export")
async def export(request: web.Request) -> web.StreamResponse:
    account = params.account(request)
    subject = distinct_id(request.match_info["id"])
    async with reading(request) as conn:
        ids = await person_export.ids_of(conn, account, subject)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson; charset=utf-8",
                                               "Content-Disposition": 'attachment; filename="person.ndjson"'})
        await response.prepare(request)
        async for record in person_export.events(conn, account, ids):
            await response.write(encode_line(event_line(record)))
        for user, anonymous_ids in await person_export.users(conn, account, ids):
            await response.write(encode_line(identify_line(user, stable_id=True)))
            for anonymous_id in anonymous_ids:  # the anonymous ids the user was identified with
                await response.write(encode_line({"type": "alias", "userId": user.user_id, "previousId": anonymous_id,
                                                  "source": "identify"}))
        for link in await person_export.links(conn, account, ids):
            await response.write(encode_line({"type": "alias", "userId": link.person_id,
                                              "previousId": link.distinct_id, "timestamp": link.linked_at.isoformat(),
                                              "source": "person_map"}))
    await response.write_eof()
    return response
