"""Accounts share nothing, stored values never break a read, secrets stay out of logs (issue 21, items 4, 5, 7):
de-duplication per account, a site token's reads limited to its site, sums that cannot overflow, event names
that cannot collide with a key of an answer, webhook URLs logged without their secrets."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from nself_analytics.config import Settings
from nself_analytics.ingest.redis_keys import DEDUPE_PREFIX

from .conftest import WRITE_KEY, pg_execute

KEY_A, KEY_B = "wk_alpha_key", "wk_bravo_key"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def two_accounts(settings: Settings) -> Settings:
    return settings.with_(write_keys=(WRITE_KEY, f"tenant_a={KEY_A}", f"tenant_b={KEY_B}"))


def stored_ids(settings: Settings) -> list[tuple[str, str]]:
    return [(a, e) for a, e in pg_execute(settings.database_url, "SELECT source_account_id, event FROM "
                                                                  "np_analytics_events ORDER BY 1, 2")]


async def track(client: Any, key: str, message_id: str, event: str = "e") -> dict[str, Any]:
    response = await client.post("/analytics/track", headers=bearer(key),
                                 json={"event": event, "user_id": "u", "message_id": message_id})
    assert response.status == 202, await response.text()
    return dict(await response.json())


async def test_retry_in_one_account_is_a_duplicate(make_client: Any, settings: Settings, drain: Any) -> None:
    bound = two_accounts(settings)
    client = await make_client(bound)
    message_id = str(uuid.uuid4())
    first, retry = await track(client, KEY_A, message_id), await track(client, KEY_A, message_id)
    assert (first["duplicate"], retry["duplicate"]) == (False, True)
    await drain()
    assert stored_ids(bound) == [("tenant_a", "e")]


async def test_another_accounts_id_neither_suppresses_nor_reveals(make_client: Any, settings: Settings,
                                                                  drain: Any) -> None:
    """Hostile: B sends the id first; A's event with it is stored, and A's answer is the one it gets when the id
    was never used (B learns nothing from A's answer either)."""
    bound = two_accounts(settings)
    client = await make_client(bound)
    fresh = await track(client, KEY_A, str(uuid.uuid4()))
    taken = "order-1042"  # not a uuid: mapped to one by the server, the same for both accounts
    by_b = await track(client, KEY_B, taken, "b_event")
    by_a = await track(client, KEY_A, taken, "a_event")
    answers = [{k: v for k, v in answer.items() if k != "message_id"} for answer in (fresh, by_b, by_a)]
    assert answers[0] == answers[1] == answers[2] and by_a["duplicate"] is False
    assert by_a["message_id"] == by_b["message_id"]
    batch = await client.post("/analytics/v1/batch", headers=bearer(KEY_A),
                              json={"batch": [{"type": "track", "event": "a_batch", "userId": "u",
                                               "messageId": "order-1043"}]})
    await client.post("/analytics/v1/batch", headers=bearer(KEY_B),
                      json={"batch": [{"type": "track", "event": "b_batch", "userId": "u",
                                       "messageId": "order-1043"}]})
    assert batch.status == 200
    await drain()
    assert stored_ids(bound) == [("tenant_a", "a_batch"), ("tenant_a", "a_event"), ("tenant_a", "e"),
                                 ("tenant_b", "b_batch"), ("tenant_b", "b_event")]
    keys = {k.decode() for k in redis.Redis.from_url(bound.redis_url).keys(DEDUPE_PREFIX + "*")}
    assert {k.rsplit(":", 2)[1] for k in keys} == {"tenant_a", "tenant_b"}  # every key names its account


async def test_retry_of_a_message_deduplicated_before_the_upgrade_is_stored_once(
        make_client: Any, settings: Settings, drain: Any) -> None:
    """Upgrade: a message accepted before keys had an account (its Redis key of the old form, DEDUPE_PREFIX + id)
    retried after the upgrade passes Redis (its new key is absent) and is caught by np_analytics_message_ids,
    which is per account; an old-form key never makes a new message a duplicate."""
    bound = two_accounts(settings)
    client = await make_client(bound)
    message_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    await track(client, KEY_A, message_id)
    await drain()
    store = redis.Redis.from_url(bound.redis_url)
    store.delete(*store.keys(DEDUPE_PREFIX + "*"))  # the state right after the upgrade: only old-form keys
    store.set(DEDUPE_PREFIX + message_id, "1", ex=86_400)
    store.set(DEDUPE_PREFIX + other, "1", ex=86_400)
    assert (await track(client, KEY_A, message_id))["duplicate"] is False  # Redis does not know it...
    assert (await track(client, KEY_A, other, "new"))["duplicate"] is False
    await drain()
    assert stored_ids(bound) == [("tenant_a", "e"), ("tenant_a", "new")]  # ...Postgres does: stored once

