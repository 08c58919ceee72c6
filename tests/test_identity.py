"""Identity: identify and alias link distinct ids into persons (np_analytics_person_map), applied when
reading, so anonymous events from before a sign-up count for the person that signed up."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from .queries_support import Link, insert, ref_persons, reset, run_examples
from .store_writes import write_events

IDS = ["anon1", "anon2", "u1", "u2", "u3"]
BROWSER = {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
                        "Safari/537.36"}


async def person_map(conn: Any) -> dict[tuple[str, str], str]:
    async with conn.cursor() as cur:
        await cur.execute("SELECT source_account_id, distinct_id, person_id FROM np_analytics_person_map")
        return {(a, d): p for a, d, p in await cur.fetchall()}


async def test_person_map_matches_reference(pool_conn: Any) -> None:
    """Any sequence of identify/alias messages, split into drained batches, some delivered twice (a batch
    whose acknowledgement was lost is written again): the map is the reference's."""

    async def example(links: list[Link], cuts: list[int], replays: list[int], max_ids: int) -> None:
        await reset(pool_conn)
        bounds = sorted({0, len(links), *(c % (len(links) + 1) for c in cuts)})
        batches = [links[lo:hi] for lo, hi in itertools.pairwise(bounds)]
        for index, batch in enumerate(batches):
            await insert(pool_conn, [], links=batch, max_ids=max_ids)
            if index in replays:
                await insert(pool_conn, [], links=batch, max_ids=max_ids)
        assert await person_map(pool_conn) == ref_persons(links, max_ids)

    accounts = st.sampled_from(["primary", "other"])
    link = st.builds(Link, st.sampled_from(["identify", "alias"]), st.sampled_from(IDS),
                     st.one_of(st.none(), st.sampled_from(IDS)), accounts)

    def check(run: Any) -> None:
        @settings(max_examples=80, deadline=None)
        @given(links=st.lists(link, max_size=12), cuts=st.lists(st.integers(0, 12), max_size=4),
               replays=st.lists(st.integers(0, 4), max_size=2), max_ids=st.sampled_from([2, 3, 4, 500]))
        def examples(links: list[Link], cuts: list[int], replays: list[int], max_ids: int) -> None:
            run(example(links, cuts, replays, max_ids))

        examples()

    await run_examples(check)


async def test_rules(pool_conn: Any) -> None:
    """The cases the README states: first link wins, known users are merged neither by identify nor by alias,
    alias merges an anonymous person."""
    await insert(pool_conn, [], links=[Link("identify", "alice", "anon-a"), Link("identify", "bob", None)])
    # anon-a already belongs to alice: bob's identify does not take it; bob (known) is not merged into carol
    await insert(pool_conn, [], links=[Link("identify", "bob", "anon-a"), Link("identify", "carol", "bob")])
    assert await person_map(pool_conn) == {("primary", "anon-a"): "alice"}
    # bob is identified: an alias does not merge him into alice (PostHog's rule; the token merges explicitly)
    await insert(pool_conn, [], links=[Link("identify", "bob", "anon-b"), Link("alias", "alice", "bob")])
    assert await person_map(pool_conn) == {("primary", "anon-a"): "alice", ("primary", "anon-b"): "bob"}
    # an anonymous person (with its ids) joins by alias: anon-c, then anon-d aliased to it, then both to alice
    await insert(pool_conn, [], links=[Link("alias", "anon-c", "anon-d"), Link("alias", "alice", "anon-c")])
    assert await person_map(pool_conn) == {("primary", "anon-a"): "alice", ("primary", "anon-b"): "bob",
                                           ("primary", "anon-c"): "alice", ("primary", "anon-d"): "alice"}
    # the same id in another account is another person
    await insert(pool_conn, [], links=[Link("identify", "zed", "anon-a", account="acme")])
    assert (await person_map(pool_conn))[("acme", "anon-a")] == "zed"


async def test_concurrent_batches_link_without_deadlock(pool_conn: Any, client: Any) -> None:
    """Two drainers writing crossing links of two accounts at once both commit (advisory locks are taken in
    account order, before any row lock)."""
    from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL

    pool = client.app[ANALYTICS_APP][PG_POOL]

    async def write(links: list[Link]) -> None:
        async with pool.acquire() as conn:
            await write_events(conn, [], [row for link in links if (row := link.identify()) is not None],
                              [link.op() for link in links])

    for round_ in range(10):
        first = [Link("identify", f"u{round_}", f"x{round_}", "b"), Link("identify", f"u{round_}", f"y{round_}", "a")]
        second = [Link("identify", f"v{round_}", f"y{round_}", "a"), Link("identify", f"v{round_}", f"x{round_}", "b")]
        await asyncio.gather(write(first), write(second))
        linked = await person_map(pool_conn)
        # whichever committed first won both of its ids' accounts; each id is linked exactly once
        assert linked[("b", f"x{round_}")] in (f"u{round_}", f"v{round_}")
        assert linked[("a", f"y{round_}")] in (f"u{round_}", f"v{round_}")


async def _ingest(client: Any, auth: Any, path: str, body: dict[str, Any]) -> None:
    response = await client.post(f"/analytics{path}", headers=auth["write"], json=body)
    assert response.status in (200, 202), await response.text()


async def test_anonymous_pageview_to_identified_purchase_is_one_person(client: Any, auth: Any, drain: Any) -> None:
    """Done-when of issue 12: a funnel from an anonymous $pageview to an identified purchase counts the person
    once, also when the identify is drained after the events (links apply when reading)."""
    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()  # inside the retention window
    await _ingest(client, auth, "/v1/page", {"anonymousId": "anon-1", "timestamp": f"{day}T10:00:00Z",
                                             "properties": {"url": "https://shop.example/"}, "context": BROWSER})
    await _ingest(client, auth, "/v1/track", {"userId": "user-1", "event": "purchase",
                                              "timestamp": f"{day}T10:05:00Z"})
    await drain()
    query = {"steps": "$pageview,purchase", "start_date": day, "end_date": day}

    async def funnel() -> list[int]:
        response = await client.get("/analytics/funnel", params=query, headers=auth["secret"])
        assert response.status == 200, await response.text()
        return [step["users"] for step in (await response.json())["steps"]]

    assert await funnel() == [1, 0]  # not linked yet: two strangers
    await _ingest(client, auth, "/v1/identify", {"userId": "user-1", "anonymousId": "anon-1",
                                                 "traits": {"plan": "pro"}})
    await drain()
    assert await funnel() == [1, 1]
    metrics = await client.get("/analytics/metrics", headers=auth["secret"],
                               params={"start_date": day, "end_date": day, "user_id": "user-1"})
    assert (await metrics.json())["data"] == [{"date": day, "counts": {"$pageview": 1, "purchase": 1}}]


async def test_identify_cannot_take_another_users_anonymous_id(client: Any, auth: Any, drain: Any,
                                                               pool_conn: Any) -> None:
    """Hostile: with the public write key, a second identify naming someone else's anonymous id (or a known
    user id as the anonymous id) merges nothing."""
    await _ingest(client, auth, "/v1/identify", {"userId": "victim", "anonymousId": "anon-v"})
    await drain()
    await _ingest(client, auth, "/v1/identify", {"userId": "attacker", "anonymousId": "anon-v"})
    await _ingest(client, auth, "/v1/identify", {"userId": "attacker", "anonymousId": "victim"})
    await drain()
    assert await person_map(pool_conn) == {("primary", "anon-v"): "victim"}


async def test_trends_count_a_linked_person_once(pool_conn: Any) -> None:
    """The trends store's ``users`` measure counts persons: an anonymous id and the user it identified as are one."""
    from datetime import timedelta

    from nself_analytics.store.trends import run_trends

    from .queries_support import BASE, Ev

    events = [Ev(None, BASE + timedelta(hours=1), "view", anon="anon-t"),
              Ev("user-t", BASE + timedelta(hours=2), "view")]
    await insert(pool_conn, events)

    async def users() -> int:
        result = await run_trends(pool_conn, account="primary", events=["view"], start=BASE,
                                  end=BASE + timedelta(days=1), previous_start=BASE, interval="day", prop=None,
                                  breakdown=None)
        [row] = result.current.values()
        return int(row.total["users"])

    assert await users() == 2
    await insert(pool_conn, [], links=[Link("identify", "user-t", "anon-t")])
    assert await users() == 1
