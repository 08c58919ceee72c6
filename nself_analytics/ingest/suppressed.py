"""The ingest side of erasure's suppression list: messages carrying an erased id are dropped before the queue.

The list lives in Postgres (np_analytics_suppressions, store/suppressions.py) as salted hashes of (account, id);
the leader's ``erasures`` loop copies it into Redis (:data:`SUPPRESSED_KEY`, the salt beside it, and a version
counter bumped on every change, :func:`publish`). Each ingest process keeps the set in memory and looks at the
version at most every ``REFRESH_SECONDS``, so the check costs no round trip per request; a message that slips
through in that second is dropped by the drain's statement (store/events.py), which reads the table itself.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..model.record import EventRecord, IdentifyRecord
from ..store.suppressions import id_hash
from .redis_keys import DROPPED_SUPPRESSED_KEY, SUPPRESSED_KEY, SUPPRESSED_SALT_KEY, SUPPRESSED_VERSION_KEY

__all__ = ["REFRESH_SECONDS", "SuppressionList", "ids_of", "publish", "published_count", "shared"]

REFRESH_SECONDS = 1.0


def ids_of(record: EventRecord | IdentifyRecord) -> list[str]:
    """The distinct ids a message carries: user id, anonymous id, and an alias's previous id."""
    ids = [i for i in (record.user_id, record.anonymous_id) if i]
    if isinstance(record, EventRecord) and record.type == "alias" and record.properties:
        previous = record.properties.get("previous_id")
        if isinstance(previous, str | int) and not isinstance(previous, bool) and str(previous):
            ids.append(str(previous))
    return ids


class SuppressionList:
    """One process's copy of the suppressed hashes, refreshed from Redis when its version changes."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._hashes: frozenset[str] = frozenset()
        self._salt = ""
        self._version: str | None = None
        self._checked = float("-inf")

    async def refresh(self, force: bool = False) -> None:
        """Reload the set when Redis holds another version (at most every REFRESH_SECONDS unless ``force``). Redis
        unreachable: the copy held is kept (the drain still drops what slips through)."""
        now = time.monotonic()
        if not force and now - self._checked < REFRESH_SECONDS:
            return
        self._checked = now
        try:
            version = await self.redis.get(SUPPRESSED_VERSION_KEY)
            version = None if version is None else str(version)
            if version == self._version:
                return
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(SUPPRESSED_VERSION_KEY)
                pipe.smembers(SUPPRESSED_KEY)
                pipe.get(SUPPRESSED_SALT_KEY)
                version, members, salt = await pipe.execute()
        except (RedisError, OSError):
            return
        self._version = None if version is None else str(version)
        self._hashes = frozenset(str(m) for m in members)
        self._salt = "" if salt is None else str(salt)

    def suppressed(self, record: EventRecord | IdentifyRecord) -> bool:
        if not self._hashes:
            return False
        account = record.source_account_id
        return any(id_hash(self._salt, account, i) in self._hashes for i in ids_of(record))

    async def count_dropped(self, dropped: dict[str, int]) -> None:
        if not dropped:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for account, count in dropped.items():
                pipe.hincrby(DROPPED_SUPPRESSED_KEY, account, count)
            await pipe.execute()


_SHARED: weakref.WeakKeyDictionary[aioredis.Redis, SuppressionList] = weakref.WeakKeyDictionary()


def shared(client: aioredis.Redis) -> SuppressionList:
    """The process's list for ``client`` (an Ingestor lives one request; the copy lives as long as the client)."""
    found = _SHARED.get(client)
    if found is None:
        found = _SHARED[client] = SuppressionList(client)
    return found


async def publish(client: aioredis.Redis, salt: str, hashes: Iterable[str]) -> None:
    """Make Redis's copy of the list exactly ``hashes`` and bump its version (every process reloads)."""
    members = list(hashes)
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(SUPPRESSED_KEY)
        if members:
            pipe.sadd(SUPPRESSED_KEY, *members)
        pipe.set(SUPPRESSED_SALT_KEY, salt)
        pipe.incr(SUPPRESSED_VERSION_KEY)
        await pipe.execute()


async def published_count(client: aioredis.Redis) -> int | None:
    """Members of Redis's copy (None when it was never published, e.g. after Redis lost its data)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.exists(SUPPRESSED_VERSION_KEY)
        pipe.scard(SUPPRESSED_KEY)
        exists, count = await pipe.execute()
    return int(count) if exists else None
