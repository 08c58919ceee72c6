"""Erasure of one person (issue 25 item 3): DELETE /persons/{id} erases every id of the person and everything
derived, suppresses the ids, and leaves every figure equal to an account loaded with the same data minus the person
(the oracle). A scan of every np_analytics_* table (every column as text) and every Redis key and value finds no
erased id. Hostile: a write key, another account, odd characters, unknown ids, a drain racing the erasure, a restart
mid-job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from nself_analytics.pipeline.drain import Drainer
from nself_analytics.pipeline.erasures import ErasureRunner
from nself_analytics.store import erasure
from nself_analytics.store.rollups.aggregates import materialize
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .conftest import pg_execute

ALICE = "alice+é/q?x y%'\"*"        # odd characters: path, query, glob, quotes, percent, space
ANON = "anon Ω:1\\[x]"
DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
DATE = DAY.date().isoformat()


def _iso(minutes: int) -> str:
    return (DAY + timedelta(minutes=minutes)).isoformat()


def _messages(with_alice: bool) -> list[dict[str, Any]]:
    def page(who: dict[str, str], path: str, minutes: int, session: str) -> dict[str, Any]:
        return {"type": "page", **who, "timestamp": _iso(minutes), "messageId": str(uuid.uuid4()),
                "properties": {"url": f"https://shop.example{path}", "path": path},
                "context": {"sessionId": session}}

    def track(who: dict[str, str], event: str, minutes: int) -> dict[str, Any]:
        return {"type": "track", **who, "event": event, "timestamp": _iso(minutes), "messageId": str(uuid.uuid4()),
                "properties": {"plan": "pro"}}

    bob, carol = {"userId": "bob"}, {"userId": "carol"}
    out = [page({"anonymousId": "anon-b"}, "/home", 0, "s-b"), track(bob, "signup", 3),
           page(bob, "/checkout", 4, "s-b"),
           {"type": "identify", "userId": "bob", "anonymousId": "anon-b", "traits": {"plan": "free"},
            "timestamp": _iso(2)},
           {"type": "alias", "userId": "carol", "previousId": "anon-c", "timestamp": _iso(1)},
           page({"anonymousId": "anon-c"}, "/home", 5, "s-c"), track(carol, "signup", 70),
           track(bob, "purchase", 24 * 60 + 5)]
    if with_alice:
        alice, anon = {"userId": ALICE}, {"anonymousId": ANON}
        out += [page(anon, "/home", 1, "s-a"),
                {"type": "identify", "userId": ALICE, "anonymousId": ANON,
                 "traits": {"email": "alice@example.com", "name": ALICE}, "timestamp": _iso(2)},
                track(alice, "signup", 5), page(alice, "/checkout", 6, "s-a"), track(alice, "purchase", 9),
                track({**alice, "anonymousId": ANON}, "purchase", 24 * 60 + 9),
                # bob's later alias of alice's anonymous id is refused (alice is identified): it names her id
                {"type": "alias", "userId": "bob", "previousId": ANON, "timestamp": _iso(30)}]
    return out


async def _send(client: Any, auth: Any, account: str, messages: list[dict[str, Any]]) -> None:
    response = await client.post("/analytics/v1/batch", json={"batch": messages},
                                 headers={**auth["write"], "X-Source-Account-Id": account})
    assert response.status == 200, await response.text()


def _drainer(client: Any, settings: Any, name: str = "t") -> Drainer:
    app = client.app[ANALYTICS_APP]
    return Drainer(app[PG_POOL], app[REDIS], settings, name=name)


def _runner(client: Any, settings: Any) -> ErasureRunner:
    app = client.app[ANALYTICS_APP]
    return ErasureRunner(app[PG_POOL], app[REDIS], settings)


async def _aggregate(client: Any, settings: Any) -> None:
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        while await materialize(conn, settings.retention_days):
            pass


async def _run_jobs(client: Any, settings: Any) -> None:
    runner = _runner(client, settings)
    for _ in range(50):
        await runner.run_open()
        async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
            if not await erasure.open_jobs(conn):
                return
    raise AssertionError("erasure jobs did not finish")


def _traces(database_url: str, redis_url: str, ids: list[str]) -> list[str]:
    """Every table row and Redis key or value holding one of ``ids`` (as text, JSON-escaped too)."""
    found = []
    tables = [t for (t,) in pg_execute(database_url, "SELECT tablename FROM pg_tables "
                                       "WHERE tablename LIKE 'np\\_analytics\\_%%' AND schemaname = 'public'")]
    needles = {n for i in ids for n in (i, i.replace("\\", "\\\\").replace('"', '\\"'))}
    for table in tables:
        for needle in needles:
            rows = pg_execute(database_url, f"SELECT count(*) FROM {table} t WHERE strpos(t::text, %s) > 0",
                              (needle,))
            if rows[0][0]:
                found.append(f"{table}: {needle!r}")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            values: list[str] = [key]
            if kind == "string":
                values.append(str(client.get(key)))
            elif kind == "hash":
                values += [f"{k}={v}" for k, v in client.hgetall(key).items()]
            elif kind == "set":
                values += list(client.smembers(key))
            elif kind == "zset":
                values += list(client.zrange(key, 0, -1))
            elif kind == "stream":
                values += [str(fields) for _id, fields in client.xrange(key)]
            elif kind == "list":
                values += list(client.lrange(key, 0, -1))
            for value in values:
                if any(n in value for n in needles):
                    found.append(f"redis {key}")
    finally:
        client.close()
    return found


FIGURES = [
    ("/analytics/metrics", {"start_date": DATE, "end_date": (DAY + timedelta(days=1)).date().isoformat()}),
    ("/analytics/trends", {"events": "signup,purchase", "start_date": DATE,
                           "end_date": (DAY + timedelta(days=1)).date().isoformat(), "interval": "day"}),
    ("/analytics/trends", {"events": "signup,purchase", "start_date": DATE,
                           "end_date": (DAY + timedelta(days=1)).date().isoformat(), "measure": "users"}),
    ("/analytics/funnel", {"steps": "$pageview,signup,purchase", "start_date": DATE,
                           "end_date": (DAY + timedelta(days=1)).date().isoformat()}),
    ("/analytics/retention", {"start_date": DATE, "end_date": (DAY + timedelta(days=1)).date().isoformat(),
                              "period": "day", "periods": "3"}),
    ("/analytics/users", {}),
    ("/analytics/sessions", {"start_date": DATE, "end_date": DATE}),
    *((f"/analytics/api/{name}", {"site": "shop.example", "start_date": DATE,
                                  "end_date": (DAY + timedelta(days=1)).date().isoformat()})
      for name in ("pageviews", "pages", "entry-pages", "exit-pages", "bounce-rates", "session-duration",
                   "timeseries", "devices", "peak-hours/week")),
]


def _strip(body: Any) -> Any:
    """An answer without what differs between two accounts by construction (meta timings, request ids)."""
    if isinstance(body, dict):
        return {k: _strip(v) for k, v in body.items() if k not in ("meta", "request_id", "source_account_id")}
    if isinstance(body, list):
        return [_strip(v) for v in body]
    return body


async def _figures(client: Any, auth: Any, account: str) -> list[Any]:
    out = []
    for path, query in FIGURES:
        response = await client.get(path, params=query, headers={**auth["secret"], "X-Source-Account-Id": account})
        assert response.status == 200, (path, await response.text())
        out.append((path, _strip(await response.json())))
    return out


async def test_erasure_leaves_no_trace_and_figures_of_the_oracle(client: Any, auth: Any, settings: Any,
                                                                  clean: Any) -> None:
    await _send(client, auth, "primary", _messages(with_alice=True))
    await _send(client, auth, "oracle", _messages(with_alice=False))
    await _send(client, auth, "other", _messages(with_alice=True))
    await _drainer(client, settings).drain_until_empty()
    await _aggregate(client, settings)
    before = await _figures(client, auth, "primary")
    assert before != await _figures(client, auth, "oracle")  # alice counts before the erasure

    response = await client.delete(f"/analytics/persons/{uuid_quote(ANON)}", headers=auth["secret"])
    assert response.status == 202, await response.text()
    body = await response.json()
    assert body["known"] is True and body["counts"]["ids"] == 2 and body["state"] == "pending"
    await _run_jobs(client, settings)
    status = await (await client.get(f"/analytics/persons/erasures/{body['job']}", headers=auth["secret"])).json()
    assert status["state"] == "done" and status["phase"] == "done" and status["progress"] == 1
    assert status["counts"]["events"] == 5 and status["counts"]["users"] == 1, status
    await _aggregate(client, settings)

    assert await _figures(client, auth, "primary") == await _figures(client, auth, "oracle")
    other = await _figures(client, auth, "other")
    assert other == before  # another account's alice is untouched

    # no trace in the primary account: the other account's alice is the only holder of the ids
    pg_execute(settings.database_url, "DELETE FROM np_analytics_events WHERE source_account_id = 'other'")
    for table in ("np_analytics_users", "np_analytics_person_map", "np_analytics_activity",
                  "np_analytics_event_times", "np_analytics_web_sessions", "np_analytics_web_day_stats",
                  "np_analytics_web_day_sessions", "np_analytics_web_session_events",
                  "np_analytics_seen", "np_analytics_aggregate_dirty",
                  "np_analytics_event_outbox"):
        pg_execute(settings.database_url, f"DELETE FROM {table} WHERE source_account_id = 'other'")
    redis.Redis.from_url(settings.redis_url).delete("np_analytics:names:other")
    assert _traces(settings.database_url, settings.redis_url, [ALICE, ANON, "alice@example.com"]) == []
    audit = pg_execute(settings.database_url, "SELECT actor, action, subject_hash IS NOT NULL FROM np_analytics_audit "
                       "ORDER BY id")
    assert audit == [("token:*", "erase_requested", True), ("token:*", "erase_completed", True)]


def uuid_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
