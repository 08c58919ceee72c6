"""The ingest queue producer: accepted events go into a Redis Stream before the 202 returns.

One Lua script per request does, atomically: the backpressure check (stream length against
ANALYTICS_QUEUE_BUFFER), the message-id dedupe (SET NX with a TTL), the XADD, and the counter
increments. Scripts of concurrent requests are pipelined into one round trip by a small batcher,
which costs far less throughput than one await per request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog

from .config import Settings
from .keys import DEDUPE_PREFIX, DEDUPE_TTL_SECONDS, STREAM_KEY

__all__ = ["EnqueueResult", "Producer", "QueueFull", "QueueUnavailable", "QueuedMessage"]

log = structlog.get_logger("nself_analytics.queue")

# ARGV: queue buffer, dedupe TTL, the number of counter sets, each set (n, then n key/TTL pairs), then per
# message: dedupe key, payload, its counter set (1-based, 0 for none). Messages of one request mostly share
# their counter keys (same event, same minute), so a set is sent once and its keys are incremented once, by
# the number of new messages that count it: far fewer arguments to encode and commands to run.
_ENQUEUE_LUA = """
local stream = KEYS[1]
if redis.call('XLEN', stream) >= tonumber(ARGV[1]) then return {-1} end
local ttl = tonumber(ARGV[2])
local nsets = tonumber(ARGV[3])
local firsts, sizes, hits = {}, {}, {}
local i = 4
for s = 1, nsets do
  sizes[s] = tonumber(ARGV[i])
  firsts[s] = i + 1
  i = i + 1 + 2 * sizes[s]
end
local result = {0}
local index = 0
while i <= #ARGV do
  local dedupe, payload, set = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  if redis.call('SET', dedupe, '1', 'NX', 'EX', ttl) then
    if payload ~= '' then
      redis.call('XADD', stream, '*', 'e', payload)
      result[1] = result[1] + 1
    end
    if set > 0 then hits[set] = (hits[set] or 0) + 1 end
  else
    result[#result + 1] = index
  end
  index = index + 1
end
for s = 1, nsets do
  local count = hits[s]
  if count then
    for j = firsts[s], firsts[s] + 2 * sizes[s] - 1, 2 do
      redis.call('INCRBY', ARGV[j], count)
      local kttl = tonumber(ARGV[j + 1])
      if kttl > 0 then redis.call('EXPIRE', ARGV[j], kttl) end
    end
  end
end
return result
"""


class QueueFull(Exception):
    """The stream holds ANALYTICS_QUEUE_BUFFER events: the client must retry later."""


class QueueUnavailable(Exception):
    """Redis could not be reached: nothing was accepted."""


@dataclass(frozen=True)
class QueuedMessage:
    """One message for the stream. An empty payload (sampled out) is deduped and counted, not stored."""

    message_id: str
    payload: str
    counters: tuple[tuple[str, int], ...] = ()


@dataclass
class EnqueueResult:
    stored: int
    duplicates: list[int] = field(default_factory=list)


class Producer:
    """Enqueues the messages of concurrent requests in one pipelined round trip."""

    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._script = client.register_script(_ENQUEUE_LUA)
        self._pending: list[tuple[list[str], asyncio.Future[list[int]]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def enqueue(self, messages: list[QueuedMessage]) -> EnqueueResult:
        """Put all of ``messages`` in the stream, or none: raises QueueFull or QueueUnavailable."""
        sets: dict[tuple[tuple[str, int], ...], str] = {}
        tail: list[str] = []
        for message in messages:
            set_index = "0"
            if message.counters:
                set_index = sets.get(message.counters) or sets.setdefault(message.counters, str(len(sets) + 1))
            tail += [DEDUPE_PREFIX + message.message_id, message.payload, set_index]
        args: list[str] = [str(self._settings.queue_buffer), str(DEDUPE_TTL_SECONDS), str(len(sets))]
        for counters in sets:  # in index order (dicts keep insertion order)
            args.append(str(len(counters)))
            for key, ttl in counters:
                args += [key, str(ttl)]
        args += tail
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((args, future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        result = await future
        if result and result[0] == -1:
            raise QueueFull()
        return EnqueueResult(stored=result[0], duplicates=list(result[1:]))

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let requests arriving in this loop iteration join the round trip
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for args, _future in batch:
                        await self._script(keys=[STREAM_KEY], args=args, client=pipe)
                    results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # Redis down: every waiting request learns nothing was accepted
                log.warning("enqueue_failed", error=str(exc), requests=len(batch))
                for _args, future in batch:
                    if not future.done():
                        future.set_exception(QueueUnavailable(str(exc)))
                continue
            for (_args, future), res in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(res, Exception):
                    future.set_exception(QueueUnavailable(str(res)))
                else:
                    future.set_result([int(x) for x in res])
        self._flushing = None

    async def close(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
