"""GET /counters/{event} from Redis, quota rules (/quotas), POST /quota/check and violations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from nself_analytics.ingest.counter_keys import counter_key, period_bounds

from .conftest import pg_execute
from .queries_support import insert


async def track(client: Any, auth: Any, event: str, user_id: str, times: int = 1) -> None:
    for _ in range(times):
        response = await client.post("/analytics/track", headers=auth["write"],
                                     json={"event": event, "user_id": user_id})
        assert response.status in (200, 202), await response.text()


def same_bucket(period: str, before: datetime) -> bool:
    """Whether ``before`` and now fall in one ``period`` bucket (else the count may have restarted)."""
    return counter_key(period, "e", before) == counter_key(period, "e", datetime.now(UTC))


async def test_counters_count_tracked_events_before_any_drain(client: Any, auth: Any) -> None:
    started = datetime.now(UTC)
    await track(client, auth, "play", "u1", 3)
    await track(client, auth, "play", "u2", 2)
    await track(client, auth, "stop", "u1")
    response = await client.get("/analytics/counters/play", headers=auth["secret"])
    body = await response.json()
    assert response.status == 200
    assert body["counts"]["total"] == 5
    for period in ("minute", "hour", "day"):
        assert body["counts"][period] == 5 if same_bucket(period, started) else body["counts"][period] <= 5
    one = await (await client.get("/analytics/counters/stop", headers=auth["secret"], params={"period": "day"})).json()
    assert one["count"] == 1 and one["period"] == "day"
    assert datetime.fromisoformat(one["resets_at"]) == period_bounds("day", datetime.now(UTC))[1]
    total = await (await client.get("/analytics/counters/stop", headers=auth["secret"],
                                    params={"period": "total"})).json()
    assert total["count"] == 1 and total["resets_at"] is None
    nothing = await (await client.get("/analytics/counters/never", headers=auth["secret"])).json()
    assert nothing["counts"] == {"minute": 0, "hour": 0, "day": 0, "total": 0}


async def test_counters_read_the_current_bucket(client: Any, auth: Any, settings: Any) -> None:
    """A count is the current period's bucket: last minute's key is not this minute's count."""
    now = datetime.now(UTC)
    r = redis.Redis.from_url(settings.redis_url)
    r.set(counter_key("minute", "beat", now - timedelta(minutes=2)), 7)
    r.set(counter_key("day", "beat", now), 4)
    r.set(counter_key("total", "beat", now), 40)
    body = await (await client.get("/analytics/counters/beat", headers=auth["secret"])).json()
    assert body["counts"] == {"minute": 0, "hour": 0, "day": 4, "total": 40}


async def test_per_user_counters_need_quotas(client: Any, auth: Any, make_client: Any, settings: Any) -> None:
    response = await client.get("/analytics/counters/play", headers=auth["secret"], params={"user_id": "u1"})
    assert response.status == 409
    assert "ANALYTICS_QUOTA_ENABLED=true" in (await response.json())["message"]
    enabled = await make_client(settings.with_(quota_enabled=True))
    started = datetime.now(UTC)
    await track(enabled, auth, "play", "u1", 2)
    await track(enabled, auth, "play", "u2")
    body = await (await enabled.get("/analytics/counters/play", headers=auth["secret"],
                                    params={"user_id": "u1"})).json()
    assert set(body["counts"]) == {"minute", "hour", "day", "month", "total"} and body["counts"]["total"] == 2
    for period in ("minute", "hour", "day", "month"):
        assert body["counts"][period] == 2 if same_bucket(period, started) else body["counts"][period] <= 2
    month = await (await enabled.get("/analytics/counters/play", headers=auth["secret"],
                                     params={"user_id": "u2", "period": "month"})).json()
    assert month["count"] == 1


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"period": "week"}, 400, "Invalid period 'week': use one of minute, hour, day, total"),
    ({"period": "month"}, 400, "Invalid period 'month': use one of minute, hour, day, total (month is counted per "
                               "user only)"),
])
async def test_counters_validation(client: Any, auth: Any, params: dict[str, str], status: int, message: str) -> None:
    response = await client.get("/analytics/counters/play", headers=auth["secret"], params=params)
    assert response.status == status and (await response.json())["message"] == message


async def test_counters_need_the_secret(client: Any, auth: Any) -> None:
    for headers in ({}, auth["write"]):
        assert (await client.get("/analytics/counters/play", headers=headers)).status == 401


# --- quotas ---------------------------------------------------------------------------------------

@pytest.fixture
async def quota_client(make_client: Any, settings: Any) -> Any:
    return await make_client(settings.with_(quota_enabled=True))


async def check(client: Any, auth: Any, user_id: str, event: str) -> dict[str, Any]:
    response = await client.post("/analytics/quota/check", headers=auth["secret"],
                                 json={"user_id": user_id, "event": event})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_quota_rules_crud(client: Any, auth: Any) -> None:
    secret = auth["secret"]
    created = await client.post("/analytics/quotas", headers=secret,
                                json={"event": "export", "segment": {"plan": "free"}, "limit": 10, "period": "day"})
    assert created.status == 201
    rule = (await created.json())["quota"]
    assert (rule["event"], rule["segment"], rule["limit"], rule["period"]) == ("export", {"plan": "free"}, 10, "day")
    await client.post("/analytics/quotas", headers=secret, json={"event": "upload", "limit": 1, "period": "hour"})
    listed = (await (await client.get("/analytics/quotas", headers=secret)).json())["quotas"]
    assert [q["event"] for q in listed] == ["export", "upload"] and listed[1]["segment"] == {}
    only = (await (await client.get("/analytics/quotas", headers=secret, params={"event": "upload"})).json())["quotas"]
    assert [q["event"] for q in only] == ["upload"]
    updated = await client.put(f"/analytics/quotas/{rule['id']}", headers=secret,
                               json={"event": "export", "limit": 20, "period": "month"})
    assert (await updated.json())["quota"]["limit"] == 20
    got = (await (await client.get(f"/analytics/quotas/{rule['id']}", headers=secret)).json())["quota"]
    assert (got["limit"], got["period"], got["segment"]) == (20, "month", {})
    other = await client.get(f"/analytics/quotas/{rule['id']}", headers={**secret, "X-Source-Account-Id": "b"})
    assert other.status == 404
    assert (await client.delete(f"/analytics/quotas/{rule['id']}", headers=secret)).status == 200
    assert (await client.get(f"/analytics/quotas/{rule['id']}", headers=secret)).status == 404
    assert (await client.put(f"/analytics/quotas/{rule['id']}", headers=secret,
                             json={"event": "x", "limit": 1, "period": "day"})).status == 404


@pytest.mark.parametrize(("body", "message"), [
    ({"limit": 1, "period": "day"}, "event is required"),
    ({"event": "e", "limit": -1, "period": "day"}, "limit must be a non-negative integer"),
    ({"event": "e", "limit": "5", "period": "day"}, "limit must be a non-negative integer"),
    ({"event": "e", "limit": True, "period": "day"}, "limit must be a non-negative integer"),
    ({"event": "e", "limit": 1, "period": "week"}, "period must be one of minute, hour, day, month"),
    ({"event": "e", "limit": 1, "period": "day", "segment": ["free"]},
     'segment must be an object of user traits, e.g. {"plan": "free"}'),
])
async def test_quota_rule_validation(client: Any, auth: Any, settings: Any, body: dict[str, Any],
                                     message: str) -> None:
    response = await client.post("/analytics/quotas", headers=auth["secret"], json=body)
    assert response.status == 400 and await response.json() == {"status": "error", "message": message}
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_quotas") == [(0,)]


async def test_quota_check_needs_quotas_enabled(client: Any, auth: Any) -> None:
    response = await client.post("/analytics/quota/check", headers=auth["secret"], json={"user_id": "u", "event": "e"})
    assert response.status == 409
    assert (await response.json())["message"] == "Quota counting is disabled: set ANALYTICS_QUOTA_ENABLED=true"


async def test_quota_check_counts_and_records_the_first_crossing(quota_client: Any, auth: Any, settings: Any) -> None:
    client, secret = quota_client, auth["secret"]
    no_rule = await check(client, auth, "u1", "export")
    assert no_rule["allowed"] is True and no_rule["limit"] is None and no_rule["used"] is None
    rule = (await (await client.post("/analytics/quotas", headers=secret,
                                     json={"event": "export", "limit": 2, "period": "day"})).json())["quota"]
    first = await check(client, auth, "u1", "export")
    assert (first["allowed"], first["used"], first["limit"], first["remaining"]) == (True, 0, 2, 2)
    assert datetime.fromisoformat(first["resets_at"]) == period_bounds("day", datetime.now(UTC))[1]
    await track(client, auth, "export", "u1", 2)
    await track(client, auth, "export", "u2")
    denied = await check(client, auth, "u1", "export")
    assert (denied["allowed"], denied["used"], denied["remaining"], denied["quota_id"]) == (False, 2, 0, rule["id"])
    other_user = await check(client, auth, "u2", "export")
    assert (other_user["allowed"], other_user["used"], other_user["remaining"]) == (True, 1, 1)
    await track(client, auth, "export", "u1")
    again = await check(client, auth, "u1", "export")
    assert (again["allowed"], again["used"]) == (False, 3)
    violations = (await (await client.get("/analytics/quotas/violations", headers=secret)).json())["violations"]
    assert len(violations) == 1  # the first crossing only, for this rule, user and day
    v = violations[0]
    assert (v["quota_id"], v["user_id"], v["used"], v["limit"], v["event"]) == (rule["id"], "u1", 2, 2, "export")
    assert datetime.fromisoformat(v["period_start"]) == period_bounds("day", datetime.now(UTC))[0]
    by_user = await client.get("/analytics/quotas/violations", headers=secret, params={"user_id": "u2"})
    assert (await by_user.json())["violations"] == []

    # a rule change takes effect at once
    await client.put(f"/analytics/quotas/{rule['id']}", headers=secret,
                     json={"event": "export", "limit": 10, "period": "day"})
    raised = await check(client, auth, "u1", "export")
    assert (raised["allowed"], raised["used"], raised["limit"], raised["remaining"]) == (True, 3, 10, 7)
    await client.delete(f"/analytics/quotas/{rule['id']}", headers=secret)
    assert (await check(client, auth, "u1", "export"))["limit"] is None


async def test_quota_segments_and_most_restrictive_rule(quota_client: Any, auth: Any, pool_conn: Any) -> None:
    client, secret = quota_client, auth["secret"]
    now = datetime.now(UTC).isoformat()
    await insert(pool_conn, [], identifies=[
        {"user_id": "free-user", "traits": {"plan": "free", "team": "a"}, "ts": now},
        {"user_id": "pro-user", "traits": {"plan": "pro"}, "ts": now},
    ])
    free_rule = (await (await client.post("/analytics/quotas", headers=secret, json={
        "event": "export", "segment": {"plan": "free"}, "limit": 1, "period": "hour"})).json())["quota"]
    await client.post("/analytics/quotas", headers=secret, json={"event": "export", "limit": 5, "period": "month"})
    await track(client, auth, "export", "free-user")
    await track(client, auth, "export", "pro-user")
    free = await check(client, auth, "free-user", "export")
    assert (free["allowed"], free["limit"], free["used"], free["quota_id"]) == (False, 1, 1, free_rule["id"])
    assert {r["limit"]: r["allowed"] for r in free["rules"]} == {1: False, 5: True}
    pro = await check(client, auth, "pro-user", "export")
    assert (pro["allowed"], pro["limit"], pro["used"], pro["remaining"]) == (True, 5, 1, 4)
    stranger = await check(client, auth, "nobody", "export")  # no profile: only segment-less rules apply
    assert (stranger["limit"], stranger["used"]) == (5, 0)
    # the segment now names a trait the free user lacks: the rule no longer applies to them
    await client.put(f"/analytics/quotas/{free_rule['id']}", headers=secret, json={
        "event": "export", "segment": {"plan": "free", "team": "b"}, "limit": 1, "period": "hour"})
    assert (await check(client, auth, "free-user", "export"))["limit"] == 5


async def test_quota_check_validation(quota_client: Any, auth: Any) -> None:
    for body, message in [({"event": "e"}, "user_id is required"), ({"user_id": "u"}, "event is required")]:
        response = await quota_client.post("/analytics/quota/check", headers=auth["secret"], json=body)
        assert response.status == 400 and (await response.json())["message"] == message
    refused = await quota_client.post("/analytics/quota/check", headers=auth["write"],
                                      json={"user_id": "u", "event": "e"})
    assert refused.status == 401


async def test_drain_records_crossings_without_any_check(quota_client: Any, auth: Any, settings: Any,
                                                         pool_conn: Any) -> None:
    """A user who goes over a limit is recorded once the drain stores the event, even if nobody checks."""
    client, secret = quota_client, auth["secret"]
    now = datetime.now(UTC).isoformat()
    await insert(pool_conn, [], identifies=[{"user_id": "free", "traits": {"plan": "free"}, "ts": now}])
    rule = (await (await client.post("/analytics/quotas", headers=secret, json={
        "event": "upload", "segment": {"plan": "free"}, "limit": 2, "period": "day"})).json())["quota"]
    await track(client, auth, "upload", "free", 2)  # at the limit: not a crossing
    await track(client, auth, "upload", "paid", 5)  # the segment does not apply to this user
    from nself_analytics.pipeline.drain import Drainer
    from nself_analytics.pipeline.facts import Facts
    from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

    sub = client.app[ANALYTICS_APP]
    quota_settings = settings.with_(quota_enabled=True)
    await Drainer(sub[PG_POOL], sub[REDIS], quota_settings).drain_until_empty()
    # crossings are found by the facts task, after the drain's acknowledgement (pipeline/facts.py)
    await Facts(sub[PG_POOL], sub[REDIS], quota_settings).run_until_empty()
    violations = (await (await client.get("/analytics/quotas/violations", headers=secret)).json())["violations"]
    assert violations == []
    await track(client, auth, "upload", "free", 2)  # crosses it
    await Drainer(sub[PG_POOL], sub[REDIS], quota_settings).drain_until_empty()
    # crossings are found by the facts task, after the drain's acknowledgement (pipeline/facts.py)
    await Facts(sub[PG_POOL], sub[REDIS], quota_settings).run_until_empty()
    violations = (await (await client.get("/analytics/quotas/violations", headers=secret)).json())["violations"]
    assert [(v["quota_id"], v["user_id"], v["used"], v["limit"]) for v in violations] == [(rule["id"], "free", 4, 2)]
