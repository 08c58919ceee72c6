"""GET /users and /users/{id}: messages sent through the ingest API and drained, read back as people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nself_analytics.store.rollups.aggregates import materialize

# Days inside the retention window (older events are not stored): D[0] is 10 days ago, D[n] n days after it.
D = [((datetime.now(UTC) - timedelta(days=10)).date() + timedelta(days=n)).isoformat() for n in range(6)]


async def _send(client: Any, auth: Any, path: str, body: dict[str, Any], account: str | None = None) -> None:
    headers = {**auth["write"], **({"X-Source-Account-Id": account} if account else {})}
    response = await client.post(f"/analytics{path}", headers=headers, json=body)
    assert response.status in (200, 202), await response.text()


async def _people(client: Any, auth: Any, drain: Any) -> None:
    for i, (user, plan, email) in enumerate([("alice", "pro", "alice@example.com"), ("bob", "free", "bob@b.org"),
                                             ("carol", "pro", "carol@example.com")]):
        await _send(client, auth, "/v1/identify", {"userId": user, "anonymousId": f"anon-{user}",
                                                   "traits": {"plan": plan, "email": email, "seats": i + 1},
                                                   "timestamp": f"{D[i + 1]}T10:00:00Z"})
    for minute in range(5):
        await _send(client, auth, "/v1/track", {"anonymousId": "anon-alice", "event": "view",
                                                "timestamp": f"{D[0]}T09:0{minute}:00Z"})
    await _send(client, auth, "/v1/track", {"userId": "alice", "event": "purchase", "properties": {"amount": 5},
                                            "timestamp": f"{D[5]}T12:00:00Z"})
    await _send(client, auth, "/v1/identify", {"userId": "zed", "traits": {"plan": "pro"}}, account="app-b")
    await drain()


async def test_users_search_traits_and_pages(client: Any, auth: Any, drain: Any) -> None:
    await _people(client, auth, drain)

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/analytics/users", headers=auth["secret"], params=params)
        assert response.status == 200, await response.text()
        return [u["user_id"] for u in (await response.json())["data"]]

    assert await ids() == ["carol", "bob", "alice"]  # most recently seen first
    assert await ids(**{"trait.plan": "pro"}) == ["carol", "alice"]
    assert await ids(**{"trait.plan": "pro", "trait.seats": "1"}) == ["alice"]
    assert await ids(search="EXAMPLE.com") == ["carol", "alice"]
    assert await ids(search="bo") == ["bob"]
    assert await ids(**{"trait.plan": "enterprise"}) == []
    page = await (await client.get("/analytics/users", headers=auth["secret"], params={"limit": 2})).json()
    assert [u["user_id"] for u in page["data"]] == ["carol", "bob"] and page["has_more"] is True
    rest = await (await client.get("/analytics/users", headers=auth["secret"],
                                   params={"limit": 2, "offset": 2})).json()
    assert [u["user_id"] for u in rest["data"]] == ["alice"] and rest["has_more"] is False
    assert page["data"][0]["traits"] == {"plan": "pro", "email": "carol@example.com", "seats": 3}
    other = await client.get("/analytics/users", headers={**auth["secret"], "X-Source-Account-Id": "app-b"})
    assert [u["user_id"] for u in (await other.json())["data"]] == ["zed"]


async def test_users_sort_by_last_activity_and_show_the_profiles_first_and_last(client: Any, auth: Any, drain: Any,
                                                                                 pool_conn: Any) -> None:
    await _people(client, auth, drain)
    while await materialize(pool_conn, retention_days=36500):
        pass
    listed = (await (await client.get("/analytics/users", headers=auth["secret"])).json())["data"]
    # alice identified before the others but was active last (her purchase on D[5]): first; her anonymous
    # events before the identify (D[0]) are her first activity, not the identify time
    assert [u["user_id"] for u in listed] == ["alice", "carol", "bob"]
    for user in listed:
        profile = await (await client.get(f"/analytics/users/{user['user_id']}", headers=auth["secret"])).json()
        assert (user["first_seen"], user["last_seen"]) == (profile["first_seen"], profile["last_seen"])
    assert (listed[0]["first_seen"], listed[0]["last_seen"]) == (f"{D[0]}T09:00:00Z", f"{D[5]}T12:00:00Z")


async def test_person_with_linked_ids_counts_and_events(client: Any, auth: Any, drain: Any) -> None:
    await _people(client, auth, drain)
    response = await client.get("/analytics/users/alice", headers=auth["secret"], params={"limit": 3})
    assert response.status == 200, await response.text()
    alice = await response.json()
    assert (alice["person_id"], alice["distinct_ids"], alice["linked_ids"]) == (
        "alice", ["alice", "anon-alice"], ["anon-alice"])
    assert alice["traits"] == {"plan": "pro", "email": "alice@example.com", "seats": 1}
    assert (alice["first_seen"], alice["last_seen"]) == (f"{D[0]}T09:00:00Z", f"{D[5]}T12:00:00Z")
    assert alice["event_count"] == 6
    assert alice["event_counts"] == [{"event": "view", "count": 5}, {"event": "purchase", "count": 1}]
    assert [(e["ts"], e["event"], e["distinct_id"]) for e in alice["events"]] == [
        (f"{D[5]}T12:00:00Z", "purchase", "alice"), (f"{D[0]}T09:04:00Z", "view", "anon-alice"),
        (f"{D[0]}T09:03:00Z", "view", "anon-alice")]
    assert alice["events"][0]["properties"] == {"amount": 5} and alice["more_events"] is True
    page = await (await client.get("/analytics/users/alice", headers=auth["secret"],
                                   params={"limit": 3, "offset": 3})).json()
    assert [e["ts"][11:16] for e in page["events"]] == ["09:02", "09:01", "09:00"] and page["more_events"] is False
    # the anonymous id opens the same person
    anon = await (await client.get("/analytics/users/anon-alice", headers=auth["secret"])).json()
    assert (anon["person_id"], anon["linked_ids"], anon["event_count"]) == ("alice", ["alice"], 6)
    # a user known only from identify: no events
    bob = await (await client.get("/analytics/users/bob", headers=auth["secret"])).json()
    assert (bob["event_count"], bob["events"], bob["first_seen"]) == (0, [], f"{D[2]}T10:00:00Z")


async def test_person_is_per_account(client: Any, auth: Any, drain: Any) -> None:
    await _people(client, auth, drain)
    assert (await client.get("/analytics/users/zed", headers=auth["secret"])).status == 404
    zed = await client.get("/analytics/users/zed", headers={**auth["secret"], "X-Source-Account-Id": "app-b"})
    assert zed.status == 200 and (await zed.json())["traits"] == {"plan": "pro"}
    missing = await client.get("/analytics/users/nobody", headers=auth["secret"])
    assert missing.status == 404 and await missing.json() == {"status": "error", "message": "User not found"}


@pytest.mark.parametrize(("path", "params", "message"), [
    ("/analytics/users", {"limit": "0"}, "limit must be between 1 and 200"),
    ("/analytics/users", {"offset": "-1"}, "offset must be between 0 and 100000"),
    ("/analytics/users", {"search": "s" * 201}, "search is longer than 200 characters"),
    ("/analytics/users", {"trait.": "x"}, "trait key is required"),
    ("/analytics/users", {"trait.plan": "p" * 1001}, "trait.plan must be at most 1000 characters, without NUL"),
    ("/analytics/users", {f"trait.k{i}": "v" for i in range(11)}, "At most 10 trait filters"),
    ("/analytics/users/alice", {"limit": "201"}, "limit must be between 1 and 200"),
    ("/analytics/users/alice", {"offset": "x"}, "offset must be an integer"),
    (f"/analytics/users/{'u' * 201}", {}, "user id is longer than 200 characters"),
])
async def test_people_refuse_bad_parameters(client: Any, auth: Any, path: str, params: dict[str, str],
                                            message: str) -> None:
    response = await client.get(path, headers=auth["secret"], params=params)
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


async def test_people_hostile_text_is_data(client: Any, auth: Any, drain: Any) -> None:
    await _people(client, auth, drain)
    for params in ({"search": "%"}, {"search": "' OR 1=1 --"}, {"trait.plan') OR ('1'='1": "pro"}):
        response = await client.get("/analytics/users", headers=auth["secret"], params=params)
        assert response.status == 200 and (await response.json())["data"] == [], params
    hostile = await client.get("/analytics/users/x' OR '1'='1", headers=auth["secret"])
    assert hostile.status == 404


@pytest.mark.parametrize("path", ["/analytics/users", "/analytics/users/alice"])
async def test_people_need_the_token(client: Any, auth: Any, path: str) -> None:
    for headers in ({}, auth["write"]):
        assert (await client.get(path, headers=headers)).status == 401
