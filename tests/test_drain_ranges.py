"""Exactly once by stream ranges (issue 27 item 1, store/drain_ranges.py): a fresh batch is stored with no per-event
check and records the runs of entries it stored in the same statement; entries read again are claimed first. A crash
between the commit and the acknowledgement replays nothing twice, a drainer whose entries were taken over cannot
commit them, and a poison entry of a fresh batch is isolated and dead-lettered once."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nself_analytics.ingest.redis_keys import DRAIN_GROUP, STREAM_KEY
from nself_analytics.pipeline import deadletters
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.store.drain_ranges import StaleBatch, entry_key, runs
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .conftest import pg_execute


def _entry(tag: str, **fields: Any) -> str:
    now = datetime.now(UTC) - timedelta(minutes=1)
    return json.dumps({"type": "track", "event": tag, "user_id": "u", "ts": now.isoformat(),
                       "message_id": str(uuid.uuid4()), **fields})


def _counts(settings: Any, tag: str) -> tuple[int, int, int]:
    """Rows, distinct message ids, and outbox rows (the facts task's input: one per stored event) of ``tag``."""
    [(rows, distinct)] = pg_execute(settings.database_url, "SELECT count(*), count(DISTINCT message_id) "
                                    "FROM np_analytics_events WHERE event = %s", (tag,))
    [(outbox,)] = pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_event_outbox WHERE event = %s",
                             (tag,))
    return int(rows), int(distinct), int(outbox)


def _ids_recorded(settings: Any, tag: str) -> int:
    """Message ids of ``tag``'s events in the de-duplication window table (the per-event index the fresh path
    does without)."""
    return int(pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_message_ids m JOIN "
                          "np_analytics_events e USING (source_account_id, message_id) WHERE e.event = %s",
                          (tag,))[0][0])


async def _fill(r: Any, payloads: list[str]) -> list[str]:
    return [await r.xadd(STREAM_KEY, {"e": payload}) for payload in payloads]


async def _read_fresh(drainer: Drainer, count: int) -> list[tuple[str, dict[str, str]]]:
    """What ``drainer`` reads next: a fresh batch of ``count`` entries."""
    entries, fresh = await drainer.read()
    assert fresh and len(entries) == count
    return entries


def test_entry_keys_keep_the_stream_order_and_runs_skip_what_was_not_stored() -> None:
    assert entry_key("1700000000000-0") < entry_key("1700000000000-1") < entry_key("1700000000001-0")
    assert entry_key("1700000000000-7") == 1700000000000 * 1_000_000 + 7
    with pytest.raises(ValueError):
        entry_key("1700000000000-1000000")  # a sequence number the key cannot hold: refused, never wrapped
    assert runs([1, 2, 3, None, 5, None, None, 8]) == ([1, 5, 8], [3, 5, 8])
    assert runs([None, None]) == ([], [])


@pytest.mark.parametrize(("window_hours", "ids_recorded"), [(24, 0), (48, 40)])
async def test_crash_between_commit_and_ack_replays_nothing(client: Any, settings: Any, window_hours: int,
                                                            ids_recorded: int) -> None:
    """A drainer stores a fresh batch and dies before XACK: the survivor reclaims every entry, stores none of them
    again (their range is committed), and acknowledges them. With ANALYTICS_DEDUPE_WINDOW at the enqueue script's
    24 h the fresh path writes no per-event message id; longer (the default 48 h), it records them for late client
    retries."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    settings = settings.with_(dedupe_window=window_hours * 3600.0)
    await _fill(r, [_entry("crash27") for _ in range(40)])
    crashed = Drainer(sub[PG_POOL], r, settings, name="crashed27")
    entries = await _read_fresh(crashed, 40)
    done = await crashed.store(entries, fresh=True)
    assert done.stored == 40  # committed, never acknowledged
    assert _ids_recorded(settings, "crash27") == ids_recorded
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_drain_ranges") == [(1,)]
    await asyncio.sleep(settings.reclaim_idle_seconds + 0.1)
    survivor = Drainer(sub[PG_POOL], r, settings, name="survivor27")
    assert await survivor.drain_until_empty() == 40
    assert survivor.stored == 0
    assert _counts(settings, "crash27") == (40, 40, 40)
    assert await r.xlen(STREAM_KEY) == 0
    assert (await r.xpending(STREAM_KEY, DRAIN_GROUP))["pending"] == 0
    # the crashed drainer's own pending entries were taken over: a restart under its name reads nothing of them
    assert await Drainer(sub[PG_POOL], r, settings, name="crashed27").drain_until_empty() == 0
    assert _counts(settings, "crash27") == (40, 40, 40)


async def test_stale_owner_cannot_commit_after_its_entries_were_taken_over(client: Any, settings: Any) -> None:
    """A drainer stalls after reading a fresh batch; its entries are reclaimed and stored by another. When it comes
    back its commit fails on the committed claims: nothing is stored twice, and its drain round goes on."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    await _fill(r, [_entry("stale27") for _ in range(30)])
    settings = settings.with_(dedupe_window=24 * 3600.0)  # the fresh path with no per-event check
    stale = Drainer(sub[PG_POOL], r, settings, name="stale27")
    entries = await _read_fresh(stale, 30)
    await asyncio.sleep(settings.reclaim_idle_seconds + 0.1)
    taker = Drainer(sub[PG_POOL], r, settings, name="taker27")
    assert await taker.drain_until_empty() == 30
    assert taker.stored == 30
    with pytest.raises(StaleBatch):
        await stale.store(entries, fresh=True)
    assert _counts(settings, "stale27") == (30, 30, 30)
    # through its round: the stale batch is dropped, nothing of it is pending with it any more
    await _fill(r, [_entry("stale27b") for _ in range(5)])
    assert await stale.drain_until_empty() == 5
    assert _counts(settings, "stale27") == (30, 30, 30)
    assert _counts(settings, "stale27b") == (5, 5, 5)


async def test_stale_owner_round_reads_what_is_still_its_own(client: Any, settings: Any) -> None:
    """Only part of a stalled drainer's batch was reclaimed: its round stores the rest once, as claimed entries."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    await _fill(r, [_entry("part27") for _ in range(20)])
    stale = Drainer(sub[PG_POOL], r, settings.with_(batch_size=20), name="part-stale27")
    entries = await _read_fresh(stale, 20)
    await asyncio.sleep(settings.reclaim_idle_seconds + 0.1)
    claimed = await r.xautoclaim(STREAM_KEY, DRAIN_GROUP, "part-taker27", 0, "0-0", count=8)
    taker = Drainer(sub[PG_POOL], r, settings, name="part-taker27")
    assert await taker.drain_once() == 8 == len(claimed[1])  # its own pending entries: the 8 it claimed
    with pytest.raises(StaleBatch):
        await stale.store(entries, fresh=True)
    assert _counts(settings, "part27") == (8, 8, 8)
    assert await stale.drain_until_empty() == 12
    assert _counts(settings, "part27") == (20, 20, 20)
    assert await r.xlen(STREAM_KEY) == 0


async def test_poison_entry_in_a_fresh_batch_is_isolated_and_dead_lettered_once(client: Any, settings: Any) -> None:
    """Hostile: a value Postgres refuses (a NUL character, which jsonb cannot hold) among 20 good entries of one fresh
    batch (the record Struct accepts it: only Postgres can find the culprit). The
    batch commits nothing as one statement; its parts are written claimed, the poison alone is dead-lettered. After
    a crash before the acknowledgement, the replay stores nothing twice and dead-letters the poison once."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    poison = _entry("poison27", properties={"note": "a\u0000b"})
    ids = await _fill(r, [_entry("good27") for _ in range(10)] + [poison] + [_entry("good27") for _ in range(10)])
    settings = settings.with_(dedupe_window=24 * 3600.0)  # the fresh path with no per-event check
    crashed = Drainer(sub[PG_POOL], r, settings, name="poison-crashed27")
    entries = await _read_fresh(crashed, 21)
    done = await crashed.store(entries, fresh=True)
    assert done.stored == 20 and [entry for entry, _payload, _error in done.dead] == [ids[10]]
    assert _counts(settings, "good27") == (20, 20, 20)
    await asyncio.sleep(settings.reclaim_idle_seconds + 0.1)
    survivor = Drainer(sub[PG_POOL], r, settings, name="poison-survivor27")
    assert await survivor.drain_until_empty() == 21
    assert survivor.stored == 0
    assert _counts(settings, "good27") == (20, 20, 20)
    assert _counts(settings, "poison27") == (0, 0, 0)
    dead = await deadletters.listing(r, limit=10)
    assert [(letter.entry, letter.payload) for letter in dead] == [(ids[10], poison)]
    assert "UntranslatableCharacter" in dead[0].error and "\\u0000" in dead[0].error


async def test_ranges_of_entries_gone_from_the_stream_are_pruned(client: Any, settings: Any) -> None:
    """The ranges table holds only entries that could still be delivered: once drained and deleted, they go."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    drainer = Drainer(sub[PG_POOL], r, settings.with_(batch_size=10), name="prune27")
    await _fill(r, [_entry("prune27") for _ in range(35)])
    assert await drainer.drain_until_empty() == 35
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_drain_ranges") == [(4,)]
    left = await _fill(r, [_entry("prune27") for _ in range(3)])
    entries = await _read_fresh(drainer, 3)
    await drainer.store(entries, fresh=True)  # committed, still in the stream: its range stays
    drainer._next_prune = 0.0
    assert await drainer.drain_once() == 0
    [(low, high)] = pg_execute(settings.database_url,
                               "SELECT lower(entries), upper(entries) - 1 FROM np_analytics_drain_ranges")
    assert (low, high) == (entry_key(left[0]), entry_key(left[-1]))
    await r.xack(STREAM_KEY, DRAIN_GROUP, *left)
    await r.xdel(STREAM_KEY, *left)
    drainer._next_prune = 0.0
    assert await drainer.drain_once() == 0
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_drain_ranges") == [(0,)]
    assert _counts(settings, "prune27") == (38, 38, 38)
