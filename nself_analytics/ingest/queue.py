"""The ingest queue producer: accepted events go into a Redis Stream before the 202 returns.

One Lua script per request does, atomically: the backpressure check (stream length against
ANALYTICS_QUEUE_BUFFER and queued bytes against ANALYTICS_QUEUE_BYTES), the event-name bound per account
(ANALYTICS_MAX_EVENT_NAMES), the message-id dedupe (SET NX with a TTL), the XADD, and the counter increments.
Scripts of concurrent requests are pipelined into one round trip by a small batcher, which costs far less
throughput than one await per request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog

from ..config import Settings
from .normalize import FIXED_NAMES
from .redis_keys import (
    DEDUPE_TTL_SECONDS,
    NAME_BLOCKED_PREFIX,
    NAME_DROPPED_PREFIX,
    NAME_FIRST_PREFIX,
    NAME_PUBLIC_PREFIX,
    NAMES_DROPPED_KEY,
    NAMES_PREFIX,
    QUEUE_BYTES_KEY,
    STREAM_KEY,
    dedupe_prefix,
)

__all__ = ["EnqueueResult", "Producer", "QueueFull", "QueueUnavailable", "QueuedMessage"]

log = structlog.get_logger("nself_analytics.ingest.queue")
UUID_LENGTH = 36  # str(uuid.UUID): every message id of the queue is one (messages.Normalized.message_id)

# KEYS: stream, queued-bytes counter. ARGV: queue buffer, dedupe TTL, queue bytes bound, max event names, now
# (Unix seconds), names TTL, whether the request came with a public key ("1"/"0"), the new names a public key may
# add per account and day, the UTC day (YYYYMMDD), the key prefixes of the names (NAMES_PREFIX, NAME_BLOCKED_PREFIX,
# NAME_FIRST_PREFIX, NAME_DROPPED_PREFIX, NAME_PUBLIC_PREFIX) and NAMES_DROPPED_KEY, the number of dedupe key
# prefixes (then the prefixes: one per account, so an id is deduplicated per account), the number of names (then
# account/name pairs), the number of counter sets (each set:
# n, then n key/TTL pairs), then the messages: their ids (36-character uuids) in one argument, their marks in
# one argument ("<counter set>,<name>,<prefix>;" per message, 1-based, 0 for none), then one payload argument
# per message. Messages of one request mostly share their counter keys and event name, so each is sent
# and checked once; a message costs one argument (redis-py packs arguments one by one in Python: 4 per message
# were 8% of a worker's /batch time, py-spy). A message whose name is blocked, or new to an account already
# holding the maximum, or new through a public key past the day's allowance is refused (the fixed names of
# page, screen, identify, alias and group messages, normalize.FIXED_NAMES, are registered but never refused for
# the cap or the allowance: they are five, and an alias must not be lost to a flood of junk track names) (reported as
# -1 - (3 * index + reason), reason 0 cap, 1 public_daily, 2 blocked), neither deduped, stored nor counted; the
# refusal is counted per account and reason (/health) and per name (GET /event-names).
_ENQUEUE_LUA = """
local fixed = {FIXED_NAMES}
local stream, bytes_key = KEYS[1], KEYS[2]
local depth = redis.call('XLEN', stream)
if depth >= tonumber(ARGV[1]) then return {-1} end
local queued = 0
if depth == 0 then redis.call('SET', bytes_key, 0) else queued = tonumber(redis.call('GET', bytes_key) or '0') end
if queued >= tonumber(ARGV[3]) then return {-1} end
local ttl = tonumber(ARGV[2])
local max_names, now, names_ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local public, public_limit, day = ARGV[7] == '1', tonumber(ARGV[8]), ARGV[9]
local p_names, p_blocked, p_first, p_dropped, p_public, dropped_key = ARGV[10], ARGV[11], ARGV[12], ARGV[13],
  ARGV[14], ARGV[15]
local source = public and 'public:' or 'server:'
local nprefixes = tonumber(ARGV[16])
local prefixes = {}
for p = 1, nprefixes do prefixes[p] = ARGV[16 + p] end
local i = 17 + nprefixes
local nnames = tonumber(ARGV[i])
i = i + 1
local refusal, name_account, name_of = {}, {}, {}
for n = 1, nnames do
  local account, name = ARGV[i], ARGV[i + 1]
  i = i + 2
  name_account[n], name_of[n] = account, name
  local key = p_names .. account
  local is_fixed = fixed[name] == true
  if redis.call('SISMEMBER', p_blocked .. account, name) == 1 then
    refusal[n] = 2
  elseif redis.call('ZSCORE', key, name) then
    redis.call('ZADD', key, now, name)
    redis.call('EXPIRE', key, names_ttl)
  elseif not is_fixed and redis.call('ZCARD', key) >= max_names then
    refusal[n] = 0
  elseif not is_fixed and public
      and tonumber(redis.call('GET', p_public .. account .. ':' .. day) or '0') >= public_limit then
    refusal[n] = 1
  else
    redis.call('ZADD', key, now, name)
    redis.call('EXPIRE', key, names_ttl)
    redis.call('HSETNX', p_first .. account, name, source .. now)
    redis.call('EXPIRE', p_first .. account, names_ttl)
    if public and not is_fixed then
      redis.call('INCR', p_public .. account .. ':' .. day)
      redis.call('EXPIRE', p_public .. account .. ':' .. day, 172800)
    end
  end
end
local reasons = {[0] = 'cap', [1] = 'public_daily', [2] = 'blocked'}
local nsets = tonumber(ARGV[i])
i = i + 1
local firsts, sizes, hits = {}, {}, {}
for s = 1, nsets do
  sizes[s] = tonumber(ARGV[i])
  firsts[s] = i + 1
  i = i + 1 + 2 * sizes[s]
end
local result = {0}
local index = 0
local added = 0
local ids, marks = ARGV[i], ARGV[i + 1]
i = i + 2
for set_text, name_text, prefix_text in string.gmatch(marks, '(%d+),(%d+),(%d+);') do
  local set, name = tonumber(set_text), tonumber(name_text)
  local dedupe = prefixes[tonumber(prefix_text)] .. string.sub(ids, index * 36 + 1, index * 36 + 36)
  local payload = ARGV[i + index]
  if name > 0 and refusal[name] then
    result[#result + 1] = -1 - (3 * index + refusal[name])
    redis.call('HINCRBY', dropped_key, name_account[name] .. '|' .. reasons[refusal[name]], 1)
    redis.call('HINCRBY', p_dropped .. name_account[name], name_of[name], 1)
    redis.call('EXPIRE', p_dropped .. name_account[name], names_ttl)
  elseif redis.call('SET', dedupe, '1', 'NX', 'EX', ttl) then
    if payload ~= '' then
      redis.call('XADD', stream, '*', 'e', payload)
      result[1] = result[1] + 1
      added = added + #payload
    end
    if set > 0 then hits[set] = (hits[set] or 0) + 1 end
  else
    result[#result + 1] = index
  end
  index = index + 1
end
if added > 0 then redis.call('INCRBY', bytes_key, added) end
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
""".replace("{FIXED_NAMES}", "{" + ", ".join(f"['{name}'] = true" for name in sorted(FIXED_NAMES)) + "}")


REFUSAL_REASONS = ("cap", "public_daily", "blocked")  # the script's reason codes 0, 1, 2


class QueueFull(Exception):
    """The stream holds ANALYTICS_QUEUE_BUFFER events or ANALYTICS_QUEUE_BYTES bytes: retry later."""


class QueueUnavailable(Exception):
    """Redis could not be reached: nothing was accepted."""


@dataclass(frozen=True)
class QueuedMessage:
    """One message for the stream. An empty payload (sampled out) is deduped and counted, not stored.
    ``name``: (account, event name) checked against the blocked names, ANALYTICS_MAX_EVENT_NAMES and (public
    keys) ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY, or None. ``account``: the
    source account, part of the de-duplication key (another account's use of the id changes nothing)."""

    message_id: str
    payload: bytes
    counters: tuple[tuple[str, int], ...] = ()
    name: tuple[str, str] | None = None
    account: str = "primary"


@dataclass
class EnqueueResult:
    stored: int
    duplicates: list[int] = field(default_factory=list)
    # messages refused for their event name (blocked, new past ANALYTICS_MAX_EVENT_NAMES or past a public key's
    # ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY), and why: index -> "cap" | "public_daily" | "blocked"
    over_name_limit: list[int] = field(default_factory=list)
    name_refusals: dict[int, str] = field(default_factory=dict)


class Producer:
    """Enqueues the messages of concurrent requests in one pipelined round trip."""

    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._script = client.register_script(_ENQUEUE_LUA)
        self._pending: list[tuple[list[str | bytes], asyncio.Future[list[int]]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def _args(self, messages: list[QueuedMessage], public: bool) -> list[str | bytes]:
        sets: dict[tuple[tuple[str, int], ...], str] = {}
        names: dict[tuple[str, str], str] = {}
        prefixes: dict[str, str] = {}
        marks: list[str] = []
        for message in messages:
            if len(message.message_id) != UUID_LENGTH:  # the script cuts the ids from one argument by length
                raise ValueError(f"message id {message.message_id!r} is not a uuid")
            set_index = name_index = "0"
            if message.counters:
                set_index = sets.get(message.counters) or sets.setdefault(message.counters, str(len(sets) + 1))
            if message.name is not None:
                name_index = names.get(message.name) or names.setdefault(message.name, str(len(names) + 1))
            prefix_index = prefixes.get(message.account) or prefixes.setdefault(message.account,
                                                                                 str(len(prefixes) + 1))
            marks.append(f"{set_index},{name_index},{prefix_index};")
        settings = self._settings
        loop_time = int(time.time())
        args: list[str | bytes] = [str(settings.queue_buffer), str(DEDUPE_TTL_SECONDS), str(settings.queue_bytes),
                           str(settings.max_event_names), str(loop_time), str(settings.retention_days * 86_400),
                           "1" if public else "0", str(settings.public_new_names_per_day),
                           time.strftime("%Y%m%d", time.gmtime(loop_time)), NAMES_PREFIX, NAME_BLOCKED_PREFIX,
                           NAME_FIRST_PREFIX, NAME_DROPPED_PREFIX, NAME_PUBLIC_PREFIX, NAMES_DROPPED_KEY,
                           str(len(prefixes)), *(dedupe_prefix(account) for account in prefixes), str(len(names))]
        for key, name in names:  # in index order (dicts keep insertion order)
            args += [key, name]
        args.append(str(len(sets)))
        for counters in sets:
            args.append(str(len(counters)))
            for key, ttl in counters:
                args += [key, str(ttl)]
        args += ["".join(message.message_id for message in messages), "".join(marks)]
        return args + [message.payload for message in messages]

    async def enqueue(self, messages: list[QueuedMessage], public: bool = False) -> EnqueueResult:
        """Put all of ``messages`` in the stream, or none: raises QueueFull or QueueUnavailable. ``public``: they
        came with a public write key (or the beacon)."""
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((self._args(messages, public), future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        result = await future
        if result and result[0] == -1:
            raise QueueFull()
        refusals = {(-1 - x) // 3: REFUSAL_REASONS[(-1 - x) % 3] for x in result[1:] if x < 0}
        return EnqueueResult(stored=result[0], duplicates=[x for x in result[1:] if x >= 0],
                             over_name_limit=sorted(refusals), name_refusals=refusals)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let requests arriving in this loop iteration join the round trip
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for args, _future in batch:
                        await self._script(keys=[STREAM_KEY, QUEUE_BYTES_KEY], args=args, client=pipe)
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
