"""Exactly-once storage by the de-duplication window (np_analytics_message_ids, migration 0080): the drain
records each stored event's (account, message id) in the statement that stores the event; the leader prunes
ids past ANALYTICS_DEDUPE_WINDOW."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from nself_analytics.pipeline.runtime import Worker
from nself_analytics.store.message_ids import prune_message_ids
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS, SETTINGS, WORKER_POOL

from .queries_support import BASE, Ev, insert

WINDOW = 48 * 3600.0


async def query(conn: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall()) if cur.description else []


async def stored(conn: Any) -> list[tuple[Any, ...]]:
    return await query(conn, "SELECT source_account_id, message_id::text, ts FROM np_analytics_events ORDER BY 1, 2")


async def age(conn: Any, hours: float, message_ids: list[str] | None = None) -> None:
    """Pretend the ids (all when None) were recorded ``hours`` ago."""
    await query(conn, "UPDATE np_analytics_message_ids SET received_at = now() - make_interval(secs => %s) "
                      "WHERE %s::uuid[] IS NULL OR message_id = ANY (%s::uuid[])",
                (hours * 3600, message_ids, message_ids))


async def test_retried_batch_stored_once_and_id_recorded(pool_conn: Any) -> None:
    events = [Ev("u", BASE + timedelta(minutes=i), "e") for i in range(5)]
    assert await insert(pool_conn, events) == 5
    assert await insert(pool_conn, events) == 0  # a redelivered stream entry, or a retry inside the window
    assert await insert(pool_conn, [*events[:2], Ev("u", BASE, "new")]) == 1
    assert len(await stored(pool_conn)) == 6
    ids = await query(pool_conn, "SELECT source_account_id, message_id::text FROM np_analytics_message_ids")
    assert sorted(ids) == sorted(row[:2] for row in await stored(pool_conn))  # one id per stored event


async def test_many_copies_of_one_id_in_one_batch_store_one_row(pool_conn: Any) -> None:
    """Hostile: one id 500 times in a batch, at different times and names: one row, the earliest time."""
    same = str(uuid.uuid4())
    copies = [Ev("u", BASE + timedelta(seconds=500 - i), f"e{i % 7}", message_id=same) for i in range(500)]
    assert await insert(pool_conn, copies) == 1
    [(account, message_id, ts)] = await stored(pool_conn)
    assert (account, message_id, ts) == ("primary", same, BASE + timedelta(seconds=1))
    assert await insert(pool_conn, copies) == 0


async def test_same_id_in_two_accounts_stored_in_each(pool_conn: Any) -> None:
    """An account's write key cannot suppress another account's message by reusing its id."""
    same = str(uuid.uuid4())
    assert await insert(pool_conn, [Ev("u", BASE, "e", message_id=same, account="a")]) == 1
    assert await insert(pool_conn, [Ev("u", BASE, "e", message_id=same, account="b"),
                                    Ev("u", BASE, "e", message_id=same, account="a")]) == 1
    assert [row[:2] for row in await stored(pool_conn)] == [("a", same), ("b", same)]


async def test_concurrent_drainers_with_one_batch_store_it_once(client: Any, pool_conn: Any) -> None:
    """Two drainers holding the same entries (a reclaim while the first is still writing): one stores them."""
    events = [Ev(f"u{i}", BASE + timedelta(seconds=i), "e") for i in range(200)]
    await insert(pool_conn, [])  # partitions are made by insert(); nothing stored
    pool = client.app[ANALYTICS_APP][PG_POOL]

    async def write() -> int:
        async with pool.acquire() as conn:
            return await insert(conn, events)

    results = await asyncio.gather(*(write() for _ in range(4)))
    assert sorted(results) == [0, 0, 0, 200]
    assert len(await stored(pool_conn)) == 200


async def test_prune_past_the_window_then_a_retry_is_stored_again(pool_conn: Any) -> None:
    """Inside the window an id stays; past it the prune deletes it, and a retry of that message after the prune
    is stored a second time (documented: the same as Segment's look-back window)."""
    old, recent = Ev("u", BASE, "old"), Ev("u", BASE, "recent")
    await insert(pool_conn, [old, recent])
    await age(pool_conn, 49, [old.message_id])
    await age(pool_conn, 47, [recent.message_id])
    assert await prune_message_ids(pool_conn, WINDOW) == 1
    assert await query(pool_conn, "SELECT message_id::text FROM np_analytics_message_ids") == [(recent.message_id,)]
    assert await insert(pool_conn, [recent]) == 0  # inside the window: still stored once
    assert await insert(pool_conn, [old]) == 1  # past it: stored again
    assert sorted(row[1] for row in await stored(pool_conn)) == sorted([old.message_id, old.message_id,
                                                                        recent.message_id])


async def test_prune_deletes_in_bounded_batches_until_done(pool_conn: Any) -> None:
    await insert(pool_conn, [Ev("u", BASE + timedelta(seconds=i), "e") for i in range(25)])
    await age(pool_conn, 100)
    assert await prune_message_ids(pool_conn, WINDOW, batch=4) == 25
    assert await query(pool_conn, "SELECT count(*) FROM np_analytics_message_ids") == [(0,)]
    assert await prune_message_ids(pool_conn, WINDOW, batch=4) == 0


async def test_leader_maintenance_prunes_past_the_configured_window(make_client: Any, settings: Any) -> None:
    """The hourly job prunes by ANALYTICS_DEDUPE_WINDOW (here 30 h), not by a constant."""
    client = await make_client(settings.with_(dedupe_window=30 * 3600.0))
    sub = client.app[ANALYTICS_APP]
    async with sub[PG_POOL].acquire() as conn:
        older, newer = Ev("u", BASE, "e"), Ev("u", BASE, "e")
        await insert(conn, [older, newer])
        await age(conn, 31, [older.message_id])
        await age(conn, 29, [newer.message_id])
        await Worker(sub[WORKER_POOL], sub[REDIS], sub[SETTINGS]).maintain()
        assert await query(conn, "SELECT message_id::text FROM np_analytics_message_ids") == [(newer.message_id,)]
