"""The event names of an account, administered with the secret token (README "Security"): the names in use (from
the sorted sets of NAMES_PREFIX, with the source that first brought each in and the messages dropped for it), a
block list (messages with a blocked name are dropped and counted by the enqueue script, ingest/queue.py), and
deletions in progress.

Deleting a name takes it out of the account's names at once (frees ANALYTICS_MAX_EVENT_NAMES) and blocks it while
the leader's job deletes its stored events in bounded batches (pipeline/runtime.py ``delete_names``); the block
ends with the job unless the name was blocked before.
"""

from __future__ import annotations

import json
import time

import msgspec
import redis.asyncio as aioredis

from .redis_keys import (
    NAME_BLOCKED_PREFIX,
    NAME_DELETIONS_KEY,
    NAME_DROPPED_PREFIX,
    NAME_FIRST_PREFIX,
    NAMES_PREFIX,
)

__all__ = ["Deletion", "NameInfo", "block", "finish_deletion", "names", "pending_deletions", "request_deletion",
           "unblock"]


class NameInfo(msgspec.Struct):
    """One event name of an account. ``first_source``: ``public`` or ``server`` (the kind of write key of the
    message that first brought the name in; None when unknown: before this release, or blocked without use);
    ``volume``: stored events (filled by the handler from the store)."""

    name: str
    first_source: str | None
    first_seen: int | None
    last_seen: int | None
    dropped: int
    blocked: bool
    deleting: bool
    volume: int = 0


class Deletion(msgspec.Struct, frozen=True):
    """A deletion of the stored events of one name, in progress."""

    account: str
    name: str
    keep_block: bool  # the name was blocked before its deletion: it stays blocked after
    requested_at: int


def _field(account: str, name: str) -> str:
    return f"{account}\n{name}"


async def names(client: aioredis.Redis, account: str) -> list[NameInfo]:
    """Every name of the account in use, blocked or being deleted, most recently seen first (at most
    ANALYTICS_MAX_EVENT_NAMES in use, plus the blocked ones)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.zrange(NAMES_PREFIX + account, 0, -1, withscores=True)
        pipe.hgetall(NAME_FIRST_PREFIX + account)
        pipe.hgetall(NAME_DROPPED_PREFIX + account)
        pipe.smembers(NAME_BLOCKED_PREFIX + account)
        pipe.hkeys(NAME_DELETIONS_KEY)
        in_use, first, dropped, blocked, deleting = await pipe.execute()
    last = {str(name): int(score) for name, score in in_use}
    ours = {key.partition("\n")[2] for key in deleting if key.partition("\n")[0] == account}
    out = []
    for name in {*last, *blocked, *ours}:
        source, _, seen = str(first.get(name, "")).partition(":")
        out.append(NameInfo(name, source or None, int(seen) if seen else None, last.get(name),
                            int(dropped.get(name, 0)), name in blocked, name in ours))
    out.sort(key=lambda n: (-(n.last_seen or 0), n.name))
    return out


async def block(client: aioredis.Redis, account: str, name: str) -> None:
    await client.sadd(NAME_BLOCKED_PREFIX + account, name)


async def unblock(client: aioredis.Redis, account: str, name: str) -> bool:
    """Lift a block (not one held by a deletion in progress); False when the name was not blocked."""
    if await client.hexists(NAME_DELETIONS_KEY, _field(account, name)):
        return False
    return bool(await client.srem(NAME_BLOCKED_PREFIX + account, name))


async def request_deletion(client: aioredis.Redis, account: str, name: str) -> None:
    """Free the name and block it until its events are deleted (the caller checked the name is known)."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.zrem(NAMES_PREFIX + account, name)
        pipe.sismember(NAME_BLOCKED_PREFIX + account, name)
        pipe.sadd(NAME_BLOCKED_PREFIX + account, name)
        pipe.hdel(NAME_FIRST_PREFIX + account, name)
        pipe.hdel(NAME_DROPPED_PREFIX + account, name)
        _removed, was_blocked, *_ = await pipe.execute()
    deletion = Deletion(account, name, bool(was_blocked), int(time.time()))
    await client.hsetnx(NAME_DELETIONS_KEY, _field(account, name), msgspec.json.encode(deletion).decode())


async def pending_deletions(client: aioredis.Redis) -> list[Deletion]:
    return [msgspec.convert(json.loads(value), Deletion)
            for value in (await client.hgetall(NAME_DELETIONS_KEY)).values()]


async def finish_deletion(client: aioredis.Redis, deletion: Deletion) -> None:
    """The name's events are deleted: end the deletion (and its block, unless the name was blocked before)."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.hdel(NAME_DELETIONS_KEY, _field(deletion.account, deletion.name))
        if not deletion.keep_block:
            pipe.srem(NAME_BLOCKED_PREFIX + deletion.account, deletion.name)
        await pipe.execute()
