"""Erasure and export beside their happy path (issue 25 items 3-5): credentials, unknown and odd ids, a drain
racing the erasure (the suppression), a restart mid-job, lifting a suppression, the person's NDJSON export, and
the MCP server exposing no erasure."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from nself_analytics.ingest.suppressed import shared
from nself_analytics.integrations.mcp_server import TOOLS
from nself_analytics.store import erasure
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .conftest import pg_execute
from .test_erasure import ALICE, ANON, _drainer, _messages, _run_jobs, _runner, _send


def _path(text: str) -> str:
    return quote(text, safe="")


async def test_credentials_and_bad_ids(client: Any, auth: Any) -> None:
    assert (await client.delete("/analytics/persons/u1", headers=auth["write"])).status == 401
    assert (await client.delete("/analytics/persons/u1")).status == 401
    assert (await client.get("/analytics/persons/u1/export", headers=auth["write"])).status == 401
    assert (await client.get("/analytics/suppressions", headers=auth["write"])).status == 401
    too_long = await client.delete(f"/analytics/persons/{'x' * 256}", headers=auth["secret"])
    assert too_long.status == 400 and (await too_long.json())["status"] == "error"
    nul = await client.delete("/analytics/persons/a%00b", headers=auth["secret"])
    assert nul.status == 400
    bad_job = await client.get("/analytics/persons/erasures/not-a-uuid", headers=auth["secret"])
    assert bad_job.status == 400
    missing = await client.get(f"/analytics/persons/erasures/{uuid.uuid4()}", headers=auth["secret"])
    assert missing.status == 404
    assert (await client.delete("/analytics/suppressions/nobody", headers=auth["secret"])).status == 404


async def test_unknown_id_is_suppressed_and_lifted(client: Any, auth: Any, settings: Any) -> None:
    """An id never seen: 202 (known false), no rows; its later events are dropped and counted until lifted."""
    response = await client.delete(f"/analytics/persons/{_path(' ghost ')}", headers=auth["secret"])
    assert response.status == 202
    body = await response.json()
    assert body["known"] is False and body["counts"]["ids"] == 1
    await _run_jobs(client, settings)
    listing = await (await client.get("/analytics/suppressions", headers=auth["secret"])).json()
    assert listing["total"] == 1 and "ghost" not in json.dumps(listing)
    # another account's job is not visible
    other = await client.get(f"/analytics/persons/erasures/{body['job']}",
                             headers={**auth["secret"], "X-Source-Account-Id": "other"})
    assert other.status == 404
    event = {"type": "track", "userId": " ghost ", "event": "e", "messageId": str(uuid.uuid4())}
    await _send(client, auth, "primary", [event])
    await _send(client, auth, "primary", [{**event, "userId": "ghost", "messageId": str(uuid.uuid4())}])
    await _drainer(client, settings).drain_until_empty()
    # ids are normalized as ingest does (trimmed): " ghost " and "ghost" are one id, both dropped
    assert pg_execute(settings.database_url, "SELECT user_id FROM np_analytics_events") == []
    health = await (await client.get("/analytics/health", headers=auth["secret"])).json()
    assert health["dropped_suppressed"] == 2
    lifted = await client.delete(f"/analytics/suppressions/{_path(' ghost ')}", headers=auth["secret"])
    assert lifted.status == 200
    await _runner(client, settings).sync_suppressions()
    await shared(client.app[ANALYTICS_APP][REDIS]).refresh(force=True)  # what each process does within a second
    await _send(client, auth, "primary", [{**event, "messageId": str(uuid.uuid4())}])
    await _drainer(client, settings).drain_until_empty()
    assert pg_execute(settings.database_url, "SELECT user_id FROM np_analytics_events") == [("ghost",)]
    actions = pg_execute(settings.database_url, "SELECT action FROM np_analytics_audit ORDER BY id")
    assert [a for (a,) in actions] == ["erase_requested", "erase_completed", "suppression_lifted"]


async def test_queued_events_racing_the_erasure_never_land(client: Any, auth: Any, settings: Any) -> None:
    """Events of the person queued before the erasure and drained after it (and sent after it) are dropped; the
    drain reads the suppression itself (the ingest copy may lag by a second)."""
    await _send(client, auth, "primary", _messages(with_alice=True))
    await _drainer(client, settings).drain_until_empty()
    late = [{"type": "track", "userId": ALICE, "event": "late", "messageId": str(uuid.uuid4())},
            {"type": "track", "anonymousId": ANON, "event": "late", "messageId": str(uuid.uuid4())}]
    await _send(client, auth, "primary", late)  # queued, not drained
    response = await client.delete(f"/analytics/persons/{_path(ALICE)}", headers=auth["secret"])
    assert response.status == 202
    await _drainer(client, settings, name="racer").drain_until_empty()  # drains after the suppression committed
    await _run_jobs(client, settings)
    health = await (await client.get("/analytics/health", headers=auth["secret"])).json()
    assert health["dropped_suppressed"] == 2  # the queued ones, by the drain
    # after: dropped at ingest, the resent ids and new ones alike (the suppression is checked before the
    # de-duplication); the ingest copy is refreshed as each process does within a second, so the count does not
    # depend on how long the steps above took
    await shared(client.app[ANALYTICS_APP][REDIS]).refresh(force=True)
    await _send(client, auth, "primary", late)
    await _send(client, auth, "primary", [{**m, "messageId": str(uuid.uuid4())} for m in late])
    await _drainer(client, settings).drain_until_empty()
    rows = pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_events WHERE user_id = %s "
                      "OR anonymous_id = %s", (ALICE, ANON))
    assert rows == [(0,)]
    health = await (await client.get("/analytics/health", headers=auth["secret"])).json()
    assert health["dropped_suppressed"] == 6


async def test_restart_mid_job_resumes(client: Any, auth: Any, settings: Any) -> None:
    """A job stopped after its events phase (the process died) is finished by a new runner, exactly."""
    await _send(client, auth, "primary", _messages(with_alice=True))
    await _drainer(client, settings).drain_until_empty()
    body = await (await client.delete(f"/analytics/persons/{_path(ANON)}", headers=auth["secret"])).json()
    pool = client.app[ANALYTICS_APP][PG_POOL]
    runner = _runner(client, settings)
    async with pool.acquire() as conn:
        await erasure.set_phase(conn, body["job"], "wait", barrier=True)
        job = await erasure.get_job(conn, body["job"])
        assert job is not None
        assert await runner._step(conn, job)
        await erasure.set_phase(conn, body["job"], "events")
        job = await erasure.get_job(conn, body["job"])
        assert job is not None
        await runner._step(conn, job)
    status = await (await client.get(f"/analytics/persons/erasures/{body['job']}", headers=auth["secret"])).json()
    assert status["state"] == "running" and status["phase"] == "events" and status["counts"]["events"] == 5
    await _run_jobs(client, settings)  # a new process: the events phase runs again (finds none), then the rest
    status = await (await client.get(f"/analytics/persons/erasures/{body['job']}", headers=auth["secret"])).json()
    assert status["state"] == "done" and status["counts"]["events"] == 5 and status["counts"]["users"] == 1
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_users WHERE user_id = %s",
                      (ALICE,)) == [(0,)]


async def test_export_of_a_person(client: Any, auth: Any, settings: Any) -> None:
    """Every event of both ids, the traits and the links, as NDJSON lines; another account's person is not in it."""
    await _send(client, auth, "primary", _messages(with_alice=True))
    await _send(client, auth, "other", [{"type": "track", "userId": ALICE, "event": "elsewhere",
                                         "messageId": str(uuid.uuid4())}])
    await _drainer(client, settings).drain_until_empty()
    response = await client.get(f"/analytics/persons/{_path(ALICE)}/export", headers=auth["secret"])
    assert response.status == 200 and response.content_type == "application/x-ndjson"
    lines = [json.loads(line) for line in (await response.text()).splitlines()]
    events = [line for line in lines if line["type"] in ("track", "page")]
    assert len(events) == 5 and all(line.get("userId") == ALICE or line.get("anonymousId") == ANON for line in events)
    assert all(uuid.UUID(line["messageId"]) for line in events)
    assert "elsewhere" not in json.dumps(lines)
    identify = [line for line in lines if line["type"] == "identify"]
    assert identify and identify[0]["traits"]["email"] == "alice@example.com"
    aliases = [line for line in lines if line["type"] == "alias" and line.get("source") == "person_map"]
    assert aliases == [{"type": "alias", "userId": ALICE, "previousId": ANON, "timestamp": aliases[0]["timestamp"],
                        "source": "person_map"}]
    unknown = await client.get("/analytics/persons/nobody/export", headers=auth["secret"])
    assert unknown.status == 200 and await unknown.text() == ""


def test_mcp_exposes_no_erasure() -> None:
    assert not [tool for tool in TOOLS if any(w in tool for w in ("erase", "delete", "suppress", "export"))]
