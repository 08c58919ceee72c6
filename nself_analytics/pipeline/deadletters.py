"""The dead-letter stream: queue entries the drain could not store, with the reason, for inspection and replay.

An entry lands here only when its own data is at fault (unparseable payload, a value Postgres refuses); a lost
connection never dead-letters anything (the drain retries the whole batch). The stream is bounded twice: at most
ANALYTICS_DEAD_LETTER_MAX entries (oldest trimmed first) and nothing older than the retention window (trimmed by
the prune job). ``nself-analytics dead-letters list|replay|drop`` drives it from the command line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from ..ingest.redis_keys import DEAD_LETTER_KEY, QUEUE_BYTES_KEY, STREAM_KEY

__all__ = ["DeadLetter", "add", "drop", "length", "listing", "replay", "trim_older_than"]

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered queue entry: its dead-letter id, the original entry id, account, error and payload."""

    id: str
    entry: str
    account: str
    error: str
    payload: str

    def as_dict(self, payload_chars: int | None = None) -> dict[str, Any]:
        payload = self.payload if payload_chars is None else self.payload[:payload_chars]
        return {"id": self.id, "entry": self.entry, "source_account_id": self.account, "error": self.error,
                "payload": payload, "payload_bytes": len(self.payload.encode())}


def account_of(payload: str) -> str:
    """The source account a payload names ('primary' when it cannot be told)."""
    try:
        item = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return "primary"
    account = item.get("source_account_id") if isinstance(item, dict) else None
    return account if isinstance(account, str) and account else "primary"


def add(pipe: Pipeline, entry_id: str, payload: str, error: str, max_len: int) -> None:
    """Queue on ``pipe`` the dead-lettering of one entry, trimming the stream to ``max_len`` entries."""
    pipe.xadd(DEAD_LETTER_KEY, {"entry": entry_id, "account": account_of(payload), "error": error[:MAX_ERROR_CHARS],
                                "e": payload}, maxlen=max_len, approximate=False)


async def length(client: aioredis.Redis) -> int:
    return int(await client.xlen(DEAD_LETTER_KEY))


def _letter(entry_id: str, fields: dict[str, str]) -> DeadLetter:
    payload = fields.get("e", "")
    return DeadLetter(id=entry_id, entry=fields.get("entry") or fields.get("id", ""),
                      account=fields.get("account") or account_of(payload), error=fields.get("error", ""),
                      payload=payload)


async def listing(client: aioredis.Redis, *, limit: int, account: str | None = None) -> list[DeadLetter]:
    """The oldest ``limit`` dead letters (of ``account`` when given)."""
    out: list[DeadLetter] = []
    start = "-"
    while len(out) < limit:
        page = cast(list[tuple[str, dict[str, str]]], await client.xrange(  # decode_responses: str
            DEAD_LETTER_KEY, min=start, max="+", count=max(limit, 100)))
        if not page:
            break
        for entry_id, fields in page:
            letter = _letter(entry_id, fields)
            if account is None or letter.account == account:
                out.append(letter)
        start = "(" + page[-1][0]
    return out[:limit]


async def _select(client: aioredis.Redis, ids: list[str] | None, account: str | None) -> list[DeadLetter]:
    if ids:
        letters: list[DeadLetter] = []
        for entry_id in ids:
            found = cast(list[tuple[str, dict[str, str]]],
                         await client.xrange(DEAD_LETTER_KEY, min=entry_id, max=entry_id))
            letters.extend(_letter(found_id, fields) for found_id, fields in found)
        return [letter for letter in letters if account is None or letter.account == account]
    return await listing(client, limit=10**9, account=account)


async def replay(client: aioredis.Redis, *, ids: list[str] | None = None, account: str | None = None) -> int:
    """Put dead letters (the given ids, else all of ``account``, else all) back on the ingest stream.

    Writes are idempotent on the message id, so replaying an entry that was in fact stored stores nothing twice.
    """
    letters = await _select(client, ids, account)
    for letter in letters:
        async with client.pipeline(transaction=True) as pipe:
            pipe.xadd(STREAM_KEY, {"e": letter.payload})
            pipe.incrby(QUEUE_BYTES_KEY, len(letter.payload.encode()))
            pipe.xdel(DEAD_LETTER_KEY, letter.id)
            await pipe.execute()
    return len(letters)


async def drop(client: aioredis.Redis, *, ids: list[str] | None = None, account: str | None = None) -> int:
    """Delete dead letters (the given ids, else all of ``account``, else all); return how many."""
    letters = await _select(client, ids, account)
    if not letters:
        return 0
    return int(await client.xdel(DEAD_LETTER_KEY, *(letter.id for letter in letters)))


async def trim_older_than(client: aioredis.Redis, seconds: float) -> int:
    """Drop dead letters older than ``seconds`` (the retention window); return how many went."""
    min_id = f"{int((time.time() - seconds) * 1000)}-0"
    return int(await client.xtrim(DEAD_LETTER_KEY, minid=min_id, approximate=False))
