"""The secret token's explicit identity operations (issue 21 item 2): POST /persons/merge merges two persons (also
two identified ones), POST /persons/split undoes a link; the map stays the reference's (tests/queries_support.py
ref_persons, kinds "merge" and "split") and funnels, metrics and the people page follow. Hostile: a write key is
refused, unknown ids are 404, a merge of an id with itself is 422, the cap is 409, other accounts are untouched."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nself_analytics.store import identity

from .queries_support import Ev, Link, insert, ref_funnel, ref_metrics, ref_persons, reset, run_examples
from .test_identity import person_map

IDS = ["anon1", "anon2", "u1", "u2", "u3"]
ACCOUNTS = ["primary", "other"]


async def apply(conn: Any, links: list[Link], max_ids: int) -> None:
    """Drain the identify/alias runs as batches; run each merge/split as the token's operation."""
    for explicit, run in itertools.groupby(links, key=lambda link: link.kind in ("merge", "split")):
        if not explicit:
            await insert(conn, [], links=list(run), max_ids=max_ids)
            continue
        for link in run:
            if link.kind == "merge" and link.other is not None:
                await identity.merge_persons(conn, account=link.account, into=link.user, from_=link.other,
                                             max_ids=max_ids)
            elif link.kind == "split":
                await identity.split_person(conn, account=link.account, distinct_id=link.user, max_ids=max_ids)


async def test_person_map_with_merges_and_splits_matches_reference(pool_conn: Any) -> None:
    """Any sequence of identify, alias, merge and split over two accounts (every id has an event, so is known):
    the map is the reference's, whatever the cap."""
    seen = datetime.now(UTC) - timedelta(days=2)
    known = [Ev(i, seen, "seen", account=a) for i in IDS for a in ACCOUNTS]

    async def example(links: list[Link], max_ids: int) -> None:
        await reset(pool_conn)
        await insert(pool_conn, known)
        await apply(pool_conn, links, max_ids)
        assert await person_map(pool_conn) == ref_persons(links, max_ids)

    link = st.builds(Link, st.sampled_from(["identify", "alias", "merge", "split"]), st.sampled_from(IDS),
                     st.one_of(st.none(), st.sampled_from(IDS)), st.sampled_from(ACCOUNTS))

    def check(run: Any) -> None:
        @settings(max_examples=60, deadline=None)
        @given(links=st.lists(link, max_size=14), max_ids=st.sampled_from([2, 3, 4, 500]))
        def examples(links: list[Link], max_ids: int) -> None:
            run(example(links, max_ids))

        examples()

    await run_examples(check)


async def test_figures_follow_merge_and_split(client: Any, auth: Any, pool_conn: Any) -> None:
    """Two identified persons (alias and identify never merge them): the token merges them and the funnel, the
    metrics of one user and the people page count one person; splits undo it, a root's split keeps the rest one
    person under the smallest remaining id. Every answer equals the reference of the links so far."""
    day = (datetime.now(UTC) - timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    events = [Ev(None, day, "$pageview", anon="anon-a"), Ev("alice", day + timedelta(minutes=5), "signup"),
              Ev(None, day + timedelta(minutes=1), "$pageview", anon="anon-b"),
              Ev("bob", day + timedelta(minutes=10), "purchase"),
              Ev("bob", day + timedelta(minutes=20), "purchase", account="other")]
    links = [Link("identify", "alice", "anon-a"), Link("identify", "bob", "anon-b"), Link("alias", "alice", "bob"),
             Link("identify", "bob", "anon-b", account="other")]
    await insert(pool_conn, events, links=links)
    date = day.date().isoformat()
    steps = ["$pageview", "signup", "purchase"]

    async def check() -> None:
        response = await client.get("/analytics/funnel", headers=auth["secret"],
                                    params={"steps": ",".join(steps), "start_date": date, "end_date": date})
        assert response.status == 200, await response.text()
        expected = ref_funnel([e for e in events if e.account == "primary"], steps, day - timedelta(hours=10),
                              day + timedelta(days=1), timedelta(days=14), None, links)[None]
        assert [s["users"] for s in (await response.json())["steps"]] == [users for users, _ in expected]
        for user in ("alice", "bob", "anon-a", "anon-b"):
            response = await client.get("/analytics/metrics", headers=auth["secret"],
                                        params={"start_date": date, "end_date": date, "user_id": user})
            counts = ref_metrics([e for e in events if e.account == "primary"], day.date(), day.date(), "day",
                                 user, links)
            assert (await response.json())["data"] == [{"date": date, "counts": counts.get(day.date(), {})}]
            page = await client.get(f"/analytics/users/{user}", headers=auth["secret"])
            person = ref_persons(links)
            root = person.get(("primary", user), user)
            ids = sorted({root, *(d for (a, d), p in person.items() if a == "primary" and p == root)})
            assert (await page.json())["distinct_ids"] == ids
        assert await person_map(pool_conn) == ref_persons(links)

    async def post(path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        response = await client.post(f"/analytics/persons/{path}", headers=auth["secret"], json=body)
        assert response.status == status, await response.text()
        return dict(await response.json())

    await check()  # alice and bob are two persons: the alias was refused
    merged = await post("merge", {"into": "anon-a", "from": "anon-b"})  # any id of each person names it
    assert (merged["outcome"], merged["person_id"], merged["moved"], merged["size"]) == ("merged", "alice", 2, 4)
    links.append(Link("merge", "anon-a", "anon-b"))
    await check()
    assert (await post("merge", {"into": "bob", "from": "alice"}))["outcome"] == "same"
    split = await post("split", {"distinct_id": "anon-b"})
    assert (split["outcome"], split["person_id"]) == ("split", "alice")
    links.append(Link("split", "anon-b", None))
    await check()
    root = await post("split", {"distinct_id": "alice"})  # the root leaves: anon-a < bob becomes the root
    assert (root["outcome"], root["person_id"], root["moved"]) == ("split", "anon-a", 1)
    links.append(Link("split", "alice", None))
    await check()
    assert (await post("split", {"distinct_id": "alice"}))["outcome"] == "alone"
    # the other account's bob was never touched
    assert (await person_map(pool_conn))[("other", "anon-b")] == "bob"


async def test_hostile_person_operations(client: Any, auth: Any, pool_conn: Any) -> None:
    """A write key is refused; unknown ids are 404 (also an id known only in another account); a merge of an id
    with itself is 422; a merge past ANALYTICS_MAX_IDS_PER_PERSON is 409 and links nothing; bad bodies are 400."""
    seen = datetime.now(UTC) - timedelta(days=1)
    await insert(pool_conn, [Ev("a", seen, "x"), Ev("b", seen, "x"), Ev("z", seen, "x", account="other")])
    before = await person_map(pool_conn)

    async def post(path: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = await client.post(f"/analytics/persons/{path}", headers=headers, json=body)
        return response.status, dict(await response.json())

    for path, body in (("merge", {"into": "a", "from": "b"}), ("split", {"distinct_id": "a"})):
        assert (await post(path, body, auth["write"]))[0] in (401, 403)
        assert (await post(path, body, {}))[0] == 401
    status, answer = await post("merge", {"into": "a", "from": "z"}, auth["secret"])
    assert (status, answer["status"]) == (404, "error") and "'z'" in answer["message"]
    assert (await post("split", {"distinct_id": "nobody"}, auth["secret"]))[0] == 404
    assert (await post("merge", {"into": "a", "from": "a"}, auth["secret"]))[0] == 422
    for body in ({"into": "a"}, {"into": "a", "from": 7}, {"into": "", "from": "b"}, ["a", "b"]):
        assert (await post("merge", body, auth["secret"]))[0] == 400
    assert (await post("split", {"distinct_id": "x" * 201}, auth["secret"]))[0] == 400
    assert await person_map(pool_conn) == before
    # the cap: a person of 500 ids (the default) takes no other id
    many = [Link("alias", "big", f"id{n}") for n in range(499)]
    await insert(pool_conn, [], links=many)
    status, answer = await post("merge", {"into": "big", "from": "a"}, auth["secret"])
    assert status == 409 and "ANALYTICS_MAX_IDS_PER_PERSON" in answer["message"]
    assert ("primary", "a") not in await person_map(pool_conn)
    assert (await post("merge", {"into": "a", "from": "b"}, auth["secret"]))[0] == 200
    assert (await person_map(pool_conn))[("primary", "b")] == "a"
    assert not [key for key in await person_map(pool_conn) if key[0] == "other"]
