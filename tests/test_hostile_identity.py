"""Hostile input with only the public write key against identity and the drain (issue 21, items 1 and 2):
a statement the data makes slow is split and dead-lettered like one whose data Postgres refuses; an alias chain
costs bounded work per link and stops at ANALYTICS_MAX_IDS_PER_PERSON; an identified person cannot be merged
into another by alias or identify; a person's ids are paged."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nself_analytics.ingest.redis_keys import STREAM_KEY
from nself_analytics.pipeline import deadletters
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .conftest import pg_execute
from .queries_support import Link, ref_persons

SLOW = """
CREATE OR REPLACE FUNCTION test_slow_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event = 'slowpoke' THEN
        PERFORM pg_sleep(3);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER test_slow_event BEFORE INSERT ON np_analytics_events FOR EACH ROW EXECUTE FUNCTION test_slow_event();
"""
NOT_SLOW = "DROP TRIGGER IF EXISTS test_slow_event ON np_analytics_events; DROP FUNCTION IF EXISTS test_slow_event()"


def _entry(event: str, account: str) -> str:
    return json.dumps({"type": "track", "event": event, "user_id": "u", "source_account_id": account,
                       "ts": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                       "message_id": str(uuid.uuid4())})


def _count(settings: Any, sql: str, *args: Any) -> int:
    return int(pg_execute(settings.database_url, sql, args)[0][0])


async def test_entry_the_data_makes_slow_is_dead_lettered_and_its_batch_mates_stored(client: Any,
                                                                                     settings: Any) -> None:
    """A statement that is slow because of one entry's data (here a trigger sleeping on one event name) outlasts
    the batch's timeout: the batch is split, the entry goes to the dead letters with the reason, and the events of
    both accounts around it are stored in the same drain; nothing is left pending."""
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    fast = dataclasses.replace(settings, drain_statement_timeout=0.4, drain_timeout_per_entry=0.001)
    payloads = ([_entry("calm", "a") for _ in range(8)] + [_entry("slowpoke", "a")]
                + [_entry("calm", "b") for _ in range(8)])
    for payload in payloads:
        await r.xadd(STREAM_KEY, {"e": payload})
    pg_execute(settings.database_url, SLOW)
    try:
        assert await Drainer(sub[PG_POOL], r, fast).drain_until_empty() == 17
    finally:
        pg_execute(settings.database_url, NOT_SLOW)
    assert _count(settings, "SELECT count(*) FROM np_analytics_events WHERE event = 'calm'") == 16
    assert _count(settings, "SELECT count(*) FROM np_analytics_events WHERE event = 'slowpoke'") == 0
    dead = await deadletters.listing(r, limit=10)
    assert [json.loads(d.payload)["event"] for d in dead] == ["slowpoke"]
    assert "StatementTimeout" in dead[0].error
    assert await r.xlen(STREAM_KEY) == 0


async def test_background_statement_timeout_is_set_on_the_worker_pool(client: Any, settings: Any) -> None:
    """Every background statement runs under ANALYTICS_BACKGROUND_TIMEOUT (the worker pool's connections)."""
    from nself_analytics.web.appkeys import WORKER_POOL

    async with client.app[ANALYTICS_APP][WORKER_POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
        (value,) = await cur.fetchone()
    assert int(value) == int(settings.background_timeout * 1000) > 0


async def _post(client: Any, auth: Any, path: str, body: Any) -> Any:
    response = await client.post(f"/analytics{path}", headers=auth["write"], json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_alias_chain_stops_at_the_cap_and_other_accounts_are_stored(make_client: Any, settings: Any,
                                                                          auth: Any) -> None:
    """Ten /v1/batch requests of 100 aliases build one chain of 1,000 links (c0 <- c1 <- ... <- c1000), with a
    canary event of another account in the last one: the drain stores every event (the alias events themselves
    are kept), the chain's person stops at ANALYTICS_MAX_IDS_PER_PERSON ids, the map is the reference's, and
    the canary is stored. Each link re-points the smaller person (here one id), so the drain's work per link is
    bounded whatever the length of the chain (bench/soak.py runs it against the service's clock)."""
    capped = dataclasses.replace(settings, max_ids_per_person=60)
    client = await make_client(capped)
    links = []
    for chunk in range(10):
        batch = [{"type": "alias", "userId": f"c{i + 1}", "previousId": f"c{i}"}
                 for i in range(chunk * 100, chunk * 100 + 100)]
        links += [Link("alias", f"c{i + 1}", f"c{i}") for i in range(chunk * 100, chunk * 100 + 100)]
        await _post(client, auth, "/v1/batch", {"batch": batch})
    canary = await client.post("/analytics/v1/track", headers={**auth["write"], "X-Source-Account-Id": "other"},
                               json={"userId": "someone", "event": "canary"})
    assert canary.status == 200
    sub = client.app[ANALYTICS_APP]
    await Drainer(sub[PG_POOL], sub[REDIS], capped).drain_until_empty()
    assert _count(settings, "SELECT count(*) FROM np_analytics_events WHERE type = 'alias'") == 1000
    assert _count(settings, "SELECT count(*) FROM np_analytics_events WHERE event = 'canary'") == 1
    rows = pg_execute(settings.database_url, "SELECT source_account_id, distinct_id, person_id "
                                             "FROM np_analytics_person_map")
    stored = {(a, d): p for a, d, p in rows}
    assert stored == ref_persons(links, 60)
    sizes: dict[str, int] = {}
    for person in stored.values():
        sizes[person] = sizes.get(person, 0) + 1
    assert max(sizes.values()) + 1 == 60  # members plus the root: exactly the cap
    assert await deadletters.listing(sub[REDIS], limit=10) == []


async def test_alias_cannot_take_over_an_identified_user(client: Any, auth: Any, drain: Any) -> None:
    """PostHog's rule: with the public key, `alias {userId: attacker, previousId: victim}` on an identified victim
    (with events) stores the alias event but no link: /users/victim is still the victim, with the victim's traits
    and events, and the attacker's person has none of them. An anonymous id still joins a person by alias."""
    await _post(client, auth, "/v1/identify", {"userId": "victim", "traits": {"email": "v@example.com"}})
    await _post(client, auth, "/v1/track", {"userId": "victim", "event": "purchase"})
    await _post(client, auth, "/v1/identify", {"userId": "attacker", "traits": {"email": "a@example.com"}})
    await drain()
    await _post(client, auth, "/v1/alias", {"userId": "attacker", "previousId": "victim"})
    await _post(client, auth, "/v1/identify", {"userId": "attacker", "anonymousId": "victim"})
    await _post(client, auth, "/v1/alias", {"userId": "attacker", "previousId": "anon-of-attacker"})
    await drain()
    victim = await client.get("/analytics/users/victim", headers=auth["secret"])
    body = await victim.json()
    assert body["person_id"] == "victim"
    assert body["traits"] == {"email": "v@example.com"}
    assert body["distinct_ids"] == ["victim"]
    assert [e["event"] for e in body["event_counts"]] == ["purchase"]
    attacker = await (await client.get("/analytics/users/attacker", headers=auth["secret"])).json()
    assert attacker["distinct_ids"] == ["anon-of-attacker", "attacker"]
    assert attacker["traits"] == {"email": "a@example.com"}
    # /health counts the refusals by reason: the alias of an identified person, the identify of a known user
    health = await (await client.get("/analytics/health", headers=auth["secret"])).json()
    assert health["refused_links"] == {"identified": 1, "linked": 1, "cap": 0}


async def test_a_persons_ids_are_paged(client: Any, auth: Any, drain: Any) -> None:
    """/users/{id} pages the person's ids (ids_limit, ids_offset) and says how many there are; bad paging is a
    400 JSON error."""
    await _post(client, auth, "/v1/batch", {"batch": [
        {"type": "identify", "userId": "many", "anonymousId": f"anon-{i:03d}"} for i in range(30)]})
    await drain()
    first = await (await client.get("/analytics/users/many", params={"ids_limit": "10"}, headers=auth["secret"])).json()
    assert first["distinct_id_count"] == 31 and first["more_ids"] is True
    assert first["distinct_ids"] == [f"anon-{i:03d}" for i in range(10)]
    last = await (await client.get("/analytics/users/many", params={"ids_limit": "10", "ids_offset": "30"},
                                   headers=auth["secret"])).json()
    assert last["distinct_ids"] == ["many"] and last["more_ids"] is False
    for bad in ({"ids_limit": "0"}, {"ids_limit": "100000"}, {"ids_offset": "-1"}, {"ids_limit": "x"}):
        response = await client.get("/analytics/users/many", params=bad, headers=auth["secret"])
        assert response.status == 400
        assert (await response.json())["status"] == "error"
