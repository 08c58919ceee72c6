"""Bytes, time and growth are bounded where events are (issue 10, items 2, 3 and 5): context capped like
properties, a request's stored bytes budgeted, the queue bounded in bytes, drain batches cut by bytes, times
kept inside [now - retention, now] and in request order, event names per account bounded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nself_analytics.ingest.redis_keys import COUNTER_PREFIX, DROPPED_KEY
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.pipeline.runtime import Worker
from nself_analytics.web.appkeys import ANALYTICS_APP, REDIS, SETTINGS, WORKER_POOL

from .conftest import SECRET, WRITE_KEY, pg_execute

WRITE = {"Authorization": f"Bearer {WRITE_KEY}"}
FULL_TOKEN = {"Authorization": f"Bearer {SECRET}"}


def _rows(settings: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return pg_execute(settings.database_url, sql, params)


def _drainer(client: Any) -> Drainer:
    sub = client.app[ANALYTICS_APP]
    return Drainer(sub[WORKER_POOL], sub[REDIS], sub[SETTINGS], name=f"bounds-{uuid.uuid4().hex[:6]}")


async def test_context_is_capped_like_properties_with_a_warning(client: Any, settings: Any, drain: Any) -> None:
    body = {"event": "ctx", "userId": "u", "context": {"big": "x" * 5000, "small": 1}}
    response = await client.post("/analytics/track", headers=WRITE, json=body)
    assert response.status == 202
    assert (await response.json())["warnings"] == ["context exceeds 4 KB; truncated (dropped: big)"]
    await drain()
    [(context,)] = _rows(settings, "SELECT context FROM np_analytics_events WHERE event = 'ctx'")
    assert context["small"] == 1 and context["$truncated"] is True and "big" not in context


async def test_a_batch_shared_context_is_stored_capped_not_copied_whole(client: Any, settings: Any,
                                                                        drain: Any) -> None:
    """The issue's case: ~200 KB of shared context in a 100-message batch used to store 100 copies of it."""
    body = {"context": {"z": [0] * 100_000}, "batch": [{"type": "track", "event": "shared", "userId": f"u{i}"}
                                                       for i in range(100)]}
    response = await client.post("/analytics/batch", headers=WRITE, json=body)
    assert response.status == 202, await response.text()
    await drain()
    [(count, total)] = _rows(settings, "SELECT count(*), sum(octet_length(context::text)) FROM np_analytics_events "
                                       "WHERE event = 'shared'")
    assert count == 100 and total < 100 * 4096


async def test_a_request_over_its_stored_bytes_budget_is_413(make_client: Any, settings: Any) -> None:
    client = await make_client(settings.with_(request_bytes=64 * 1024))
    big = {"p": "y" * 3900}
    body = {"batch": [{"type": "track", "event": "budget", "userId": "u", "properties": big} for _ in range(40)]}
    response = await client.post("/analytics/batch", headers=WRITE, json=body)
    assert response.status == 413, await response.text()
    assert "ANALYTICS_REQUEST_BYTES" in (await response.json())["message"]
    assert await client.app[ANALYTICS_APP][REDIS].xlen("np_analytics:events") == 0
    body["batch"] = body["batch"][:10]
    assert (await client.post("/analytics/batch", headers=WRITE, json=body)).status == 202


async def test_queue_bound_in_bytes_gives_503_then_recovers(make_client: Any, settings: Any) -> None:
    client = await make_client(settings.with_(queue_bytes=64 * 1024))
    big = {"p": "y" * 3900}
    statuses = []
    for _ in range(8):  # ~40 KB a request: the third passes the bound
        body = {"batch": [{"type": "track", "event": "qb", "userId": "u", "properties": big} for _ in range(10)]}
        response = await client.post("/analytics/batch", headers=WRITE, json=body)
        statuses.append(response.status)
        if response.status == 503:
            assert response.headers["Retry-After"]
    assert 503 in statuses and statuses.index(503) <= 3, statuses
    assert await _drainer(client).drain_until_empty() > 0
    body = {"batch": [{"type": "track", "event": "qb", "userId": "u", "properties": big} for _ in range(10)]}
    assert (await client.post("/analytics/batch", headers=WRITE, json=body)).status == 202


async def test_drain_batches_are_cut_by_bytes(make_client: Any, settings: Any) -> None:
    client = await make_client(settings.with_(batch_bytes=64 * 1024))
    big = {"p": "y" * 3900}
    for _ in range(5):
        body = {"batch": [{"type": "track", "event": "cut", "userId": "u", "properties": big} for _ in range(10)]}
        assert (await client.post("/analytics/batch", headers=WRITE, json=body)).status == 202
    drainer = _drainer(client)
    first = await drainer.drain_once()
    assert 1 <= first <= 17  # 64 KB of ~4 KB payloads, not the 50 a count-only batch would take
    assert first + await drainer.drain_until_empty() == 50
    assert _rows(settings, "SELECT count(*), count(DISTINCT message_id) FROM np_analytics_events "
                           "WHERE event = 'cut'") == [(50, 50)]


async def test_events_older_than_retention_are_not_stored_and_counted(client: Any, settings: Any,
                                                                      drain: Any) -> None:
    old = (datetime.now(UTC) - timedelta(days=settings.retention_days + 10)).isoformat()
    body = {"batch": [{"type": "track", "event": "aged", "userId": "u", "timestamp": old},
                      {"type": "track", "event": "fresh", "userId": "u"}]}
    response = await client.post("/analytics/batch", headers=WRITE, json=body)
    assert response.status == 202
    warnings = (await response.json())["warnings"]
    assert [w["index"] for w in warnings] == [0] and "older than the retention window" in warnings[0]["message"]
    await drain()
    assert _rows(settings, "SELECT event FROM np_analytics_events") == [("fresh",)]
    assert await client.app[ANALYTICS_APP][REDIS].hget(DROPPED_KEY, "primary") == "1"
    health = await (await client.get("/analytics/health", headers=FULL_TOKEN)).json()
    assert health["dropped_too_old"] == 1


async def test_skew_correction_never_leaves_the_window(client: Any, settings: Any, drain: Any) -> None:
    """A client clock 200 days ahead (sentAt) would move yesterday's event 200 days back: it stays in the window."""
    now = datetime.now(UTC)
    body = {"event": "skewed", "userId": "u", "timestamp": (now - timedelta(days=1)).isoformat(),
            "sentAt": (now + timedelta(days=200)).isoformat()}
    assert (await client.post("/analytics/track", headers=WRITE, json=body)).status == 202
    await drain()
    [(ts,)] = _rows(settings, "SELECT ts FROM np_analytics_events WHERE event = 'skewed'")
    assert now - timedelta(days=settings.retention_days, minutes=1) <= ts <= datetime.now(UTC)


async def test_untimed_messages_keep_the_request_order(client: Any, settings: Any, auth: Any, drain: Any) -> None:
    steps = ["signup", "activate", "purchase"]
    body = {"batch": [{"type": "track", "event": e, "userId": "ordered"} for e in steps]}
    assert (await client.post("/analytics/batch", headers=WRITE, json=body)).status == 202
    await drain()
    stored = _rows(settings, "SELECT event FROM np_analytics_events WHERE user_id = 'ordered' ORDER BY ts")
    assert [e for (e,) in stored] == steps
    assert len({ts for (ts,) in _rows(settings, "SELECT ts FROM np_analytics_events")}) == 3
    today = datetime.now(UTC).date().isoformat()
    response = await client.get("/analytics/funnel", headers=auth["secret"],
                                params={"steps": ",".join(steps), "start_date": today, "end_date": today})
    assert [s["users"] for s in (await response.json())["steps"]] == [1, 1, 1]


async def test_event_names_per_account_are_bounded(make_client: Any, settings: Any) -> None:
    client = await make_client(settings.with_(max_event_names=3))
    for name in ("a", "b", "c"):
        response = await client.post("/analytics/track", headers=WRITE, json={"event": name, "userId": "u"})
        assert (await response.json())["warnings"] == []
    refused = await (await client.post("/analytics/track", headers=WRITE, json={"event": "d", "userId": "u"})).json()
    assert len(refused["warnings"]) == 1 and "ANALYTICS_MAX_EVENT_NAMES" in refused["warnings"][0]
    again = await (await client.post("/analytics/track", headers=WRITE, json={"event": "a", "userId": "u"})).json()
    assert again["warnings"] == []
    other = {**WRITE, "X-Source-Account-Id": "other"}
    assert (await (await client.post("/analytics/track", headers=other, json={"event": "d", "userId": "u"})).json()
            )["warnings"] == []
    assert await _drainer(client).drain_until_empty() == 5
    stored = _rows(settings, "SELECT source_account_id, event FROM np_analytics_events ORDER BY 1, 2")
    assert stored == [("other", "d"), ("primary", "a"), ("primary", "a"), ("primary", "b"), ("primary", "c")]


async def test_total_counters_and_activity_rows_expire_with_retention(make_client: Any, settings: Any) -> None:
    client = await make_client(settings.with_(quota_enabled=True))
    assert (await client.post("/analytics/track", headers=WRITE, json={"event": "t", "userId": "u"})).status == 202
    r = client.app[ANALYTICS_APP][REDIS]
    totals = [key async for key in r.scan_iter(match=COUNTER_PREFIX + "*total*")]
    assert len(totals) == 2  # the event's and the user's
    for key in totals:
        assert 0 < await r.ttl(key) <= settings.retention_days * 86_400
    old_day = (datetime.now(UTC) - timedelta(days=settings.retention_days + 3)).date()
    pg_execute(settings.database_url, "INSERT INTO np_analytics_activity (source_account_id, day, u, events) "
                                      "VALUES ('primary', %s, 'u', '{t}'), ('primary', current_date, 'u', '{t}')",
               (old_day,))
    sub = client.app[ANALYTICS_APP]
    await Worker(sub[WORKER_POOL], r, sub[SETTINGS]).maintain()
    assert _rows(settings, "SELECT day FROM np_analytics_activity") == [(datetime.now(UTC).date(),)]


async def test_metrics_answer_at_most_limit_event_names(client: Any, settings: Any, auth: Any, drain: Any) -> None:
    """10,000 names over 366 days made /metrics answer 712 MB: it answers the `limit` most frequent names."""
    batch = [{"type": "track", "event": f"name{i}", "userId": "u"} for i in range(5) for _ in range(i + 1)]
    assert (await client.post("/analytics/batch", headers=WRITE, json={"batch": batch})).status == 202
    await drain()
    today = datetime.now(UTC).date()
    query = {"start_date": (today - timedelta(days=365)).isoformat(), "end_date": today.isoformat(), "limit": "2"}
    body = await (await client.get("/analytics/metrics", headers=auth["secret"], params=query)).json()
    assert body["events"] == ["name3", "name4"] and body["events_truncated"] is True
    assert set(body["data"][-1]["counts"]) == {"name3", "name4"}
    query["limit"] = "1001"
    assert (await client.get("/analytics/metrics", headers=auth["secret"], params=query)).status == 400
