"""The drain of the Redis ingest stream into Postgres (run by the supervisor: pipeline/runtime.py).

The drain's statement writes the events, their dirty hours and one narrow row per new event in the event outbox;
what the facts of an event cost (webhook fan-out, funnel completions, quota crossings) is paid by the facts task
(pipeline/facts.py) after the acknowledgement, so a batch's cost does not depend on webhooks or saved funnels.

Exactly once: entries are read through a consumer group, written in one transaction per batch, and acknowledged
(then deleted) only after the commit. A batch read fresh (XREADGROUP ">": consecutive entries no other consumer was
given) records the runs of entry ids it stored in the same statement (store/drain_ranges.py), so its events need no
per-event check; entries read again (this consumer's pending ones after a failure, or reclaimed with XAUTOCLAIM
from a crashed drainer) claim their own ranges first and are stored only if no committed range holds them. A
drainer whose entries were reclaimed and stored meanwhile cannot commit its batch (the ranges are disjoint).
Several processes can drain one stream together, each as its own consumer.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, date
from typing import Any, NamedTuple

import aiopg
import msgspec
import psycopg2
import psycopg2.errors
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from ..config import Settings
from ..ingest.redis_keys import (
    DEAD_LETTER_KEY,
    DEDUPE_TTL_SECONDS,
    DRAIN_GROUP,
    DROPPED_KEY,
    DROPPED_SUPPRESSED_KEY,
    LINKS_REFUSED_KEY,
    QUEUE_BYTES_KEY,
    STREAM_KEY,
)
from ..model.record import EventRecord, IdentifyRecord, decode_record
from ..store.drain_ranges import StaleBatch, entry_key, is_stale, prune_ranges, runs
from ..store.events import Selection, write_claimed, write_payload
from ..store.identity import link_ops
from ..store.partitions import ensure_partitions, forget_partitions, partition_window
from ..store.tx import StatementTimeout, statement_timeouts
from . import deadletters
from .drain_faults import cut_by_bytes, is_data_fault, missing_partition

__all__ = ["Drainer", "Stored"]

log = structlog.get_logger("nself_analytics.pipeline.drain")

# Partition upkeep (create ahead, prune behind) and retention trims: at start, then hourly.
MAINTAIN_INTERVAL_SECONDS = 3600.0
# Drainers per process: while one waits for Postgres to commit its batch, another reads and writes the next.
# Measured with bench/run on 2 cores: 2 drain about 1.5x what 1 does; 3 are no faster than 1.
DRAINERS = 2
# A drainer that found less than a full batch waits this long before its next read: under light load the
# drain makes a few larger transactions instead of one per request (each commit is an fsync in Postgres and
# each acknowledgement one in Redis, which delays the accepts waiting on Redis).
LINGER_SECONDS = 0.05
# The final drain of a graceful stop: short, so SIGTERM ends the process within startup.SHUTDOWN_SECONDS
# (what it leaves stays in the stream for the next start).
FINAL_DRAIN_SECONDS = 4.0
# How often a busy drainer looks for entries abandoned by another consumer (XAUTOCLAIM).
RECLAIM_CHECK_SECONDS = 1.0
# How often a drainer deletes the stored ranges of entries no longer in the stream (store/drain_ranges.py).
PRUNE_RANGES_SECONDS = 30.0


class Stored(NamedTuple):
    """A batch committed to Postgres and not yet acknowledged: its entry ids, the events newly stored, the entries
    to dead-letter (id, payload, error), the entries too old per account, and the bytes of its payloads."""

    ids: list[str]
    stored: int
    dead: list[tuple[str, str, str]]
    too_old: dict[str, int]
    payload_bytes: int


class _Row(NamedTuple):
    """A stream entry read by the drain: its id, its payload as sent, and the record it holds."""

    entry_id: str
    raw: str
    record: EventRecord | IdentifyRecord
    key: int  # drain_ranges.entry_key(entry_id)


def _selection(rows: list[_Row]) -> Selection:
    """The events of ``rows`` as one JSON array (the stream payloads as they are, encoded from EventRecord: joined,
    not re-encoded), their identifies and their identity link operations."""
    events = "[" + ",".join(row.raw for row in rows if isinstance(row.record, EventRecord)) + "]"
    identifies = [row.record for row in rows if isinstance(row.record, IdentifyRecord)]
    return events, identifies, link_ops(row.record for row in rows)


class Drainer:
    """One consumer of the ingest stream's consumer group.

    A batch costs three round trips: one read, one Postgres statement, one acknowledgement. Its own pending
    entries are read again only after a failure, and abandoned entries of other consumers are looked for at
    most every RECLAIM_CHECK_SECONDS (and always before the stream is reported empty).
    """

    def __init__(self, pool: aiopg.Pool, client: aioredis.Redis, settings: Settings, name: str | None = None) -> None:
        self.pool = pool
        self.redis = client
        self.settings = settings
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._group_ready = False
        # A consumer name may be reused (a restarted process, a test): its pending entries are read first.
        self._own_pending = True
        self._next_reclaim = 0.0
        self._next_prune = 0.0
        self.stored = 0
        self._suppressed: dict[str, int] = {}  # account -> entries of this batch dropped for an erased id
        self.progressed = time.time()  # when a round last completed (or the drainer started): /health

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(STREAM_KEY, DRAIN_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _reclaim(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """Entries another consumer took and left unacknowledged for reclaim_idle_seconds."""
        self._next_reclaim = time.monotonic() + min(RECLAIM_CHECK_SECONDS, self.settings.reclaim_idle_seconds / 2)
        claimed = await self.redis.xautoclaim(STREAM_KEY, DRAIN_GROUP, self.name,
                                              int(self.settings.reclaim_idle_seconds * 1000), "0-0", count=count)
        if claimed[1]:
            log.info("entries_reclaimed", count=len(claimed[1]))
        return list(claimed[1])

    async def read(self, block_ms: int | None = None) -> tuple[list[tuple[str, dict[str, str]]], bool]:
        """Own pending entries first (a failed write is retried), then reclaimed ones, then new ones; and whether
        the entries are new (delivered for the first time: one run of the stream)."""
        if not self._group_ready:
            await self.ensure_group()
        count = self.settings.batch_size
        try:
            if self._own_pending:
                own: Any = await self.redis.xreadgroup(DRAIN_GROUP, self.name, {STREAM_KEY: "0"}, count=count)
                entries = own[0][1] if own else []
                if entries:
                    return entries, False
                self._own_pending = False
            reclaimed_now = time.monotonic() >= self._next_reclaim
            if reclaimed_now and (entries := await self._reclaim(count)):
                return entries, False
            new: Any = await self.redis.xreadgroup(DRAIN_GROUP, self.name, {STREAM_KEY: ">"}, count=count,
                                                   block=block_ms)
            entries = new[0][1] if new else []
            if entries or reclaimed_now:
                return entries, True
            return await self._reclaim(count), False  # nothing new: abandoned entries before "empty"
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted (e.g. Redis wiped): create the group again
                self._group_ready = False
                async with self.pool.acquire() as conn:  # no entry of the old stream can come back
                    await prune_ranges(conn, None)
                return [], False
            raise

    async def _prune_ranges(self) -> None:
        """Delete the stored ranges below the stream's oldest entry (those entries were acknowledged and deleted)."""
        self._next_prune = time.monotonic() + PRUNE_RANGES_SECONDS
        first: Any = await self.redis.xrange(STREAM_KEY, count=1)
        if first:
            below = entry_key(first[0][0])
        else:  # empty: everything up to its last id is gone (an entry added since has a higher id)
            try:
                info: Any = await self.redis.xinfo_stream(STREAM_KEY)
            except ResponseError:  # no stream yet
                return
            if info.get("length", 0):
                return
            below = entry_key(str(info["last-generated-id"])) + 1
        async with self.pool.acquire() as conn:
            await prune_ranges(conn, below)

    async def drain_once(self, block_ms: int | None = None) -> int:
        """Read one batch, commit it to Postgres, then acknowledge it; return the entries handled."""
        if time.monotonic() >= self._next_prune:
            await self._prune_ranges()
        entries, fresh = await self.read(block_ms)
        entries = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        if not entries:
            return 0
        entries, cut = cut_by_bytes(entries, self.settings.batch_bytes)
        if cut:  # the rest stays pending with this consumer: read first next time
            self._own_pending = True
        try:
            return await self._commit(entries, fresh)
        except StaleBatch:
            # another consumer reclaimed (and stored) entries of this batch: what is still ours is read again
            # as pending entries, each claimed before it is written
            log.warning("batch_taken_over", entries=len(entries))
            self._own_pending = True
            return await self.drain_once(block_ms=None)
        except BaseException:
            self._own_pending = True  # what was read stays pending with this consumer: read it again first
            raise

    async def _commit(self, entries: list[tuple[str, dict[str, str]]], fresh: bool = False) -> int:
        """Store a batch (``fresh``: read with ">", one run of the stream), then acknowledge and delete it."""
        return await self.acknowledge(await self.store(entries, fresh))

    async def store(self, entries: list[tuple[str, dict[str, str]]], fresh: bool = False) -> Stored:
        """Commit a batch read by :meth:`read` to Postgres (what a crash before :meth:`acknowledge` leaves)."""
        rows: list[_Row] = []
        stored_keys: list[int | None] = []  # per entry: its key if it goes to Postgres here (a fresh batch's runs)
        dead: list[tuple[str, str, str]] = []  # (entry id, payload, error)
        too_old: dict[str, int] = {}  # account -> entries older than the retention window: counted, not stored
        days: set[date] = set()
        window = partition_window(self.settings.retention_days)
        for entry_id, fields in entries:
            raw = fields.get("e", "")
            stored_keys.append(None)
            try:
                record = decode_record(raw)
            except msgspec.DecodeError as exc:  # not a record (ValidationError is a DecodeError)
                dead.append((entry_id, raw, f"unreadable queue entry: {exc}"))
                continue
            if isinstance(record, EventRecord):
                day = record.ts.astimezone(UTC).date()
                if day < window[0]:
                    too_old[record.source_account_id] = too_old.get(record.source_account_id, 0) + 1
                    continue
                if day > window[1]:
                    dead.append((entry_id, raw, f"timestamp {record.ts.isoformat()} is past the partition window"))
                    continue
                days.add(day)
            rows.append(_Row(entry_id, raw, record, entry_key(entry_id)))
            stored_keys[-1] = rows[-1].key
        self._suppressed = {}
        self._refused_links: dict[str, int] = {}
        async with self.pool.acquire() as conn:
            await ensure_partitions(conn, days)
            if fresh:
                stored, rejected = await self._write_fresh(conn, rows, stored_keys)
            else:
                stored, rejected = await self._write(conn, rows)
        dead += rejected
        return Stored([entry_id for entry_id, _ in entries], stored, dead, too_old,
                      sum(len(fields.get("e", "").encode()) for _id, fields in entries))

    async def acknowledge(self, done: Stored) -> int:
        """Acknowledge and delete a stored batch's entries, with its dead letters and counts (one Redis
        transaction); return the entries handled."""
        ids, dead, too_old = done.ids, done.dead, done.too_old
        async with self.redis.pipeline(transaction=True) as pipe:
            for entry_id, raw, error in dead:
                deadletters.add(pipe, entry_id, raw, error, self.settings.dead_letter_max)
            for account, count in too_old.items():
                pipe.hincrby(DROPPED_KEY, account, count)
            for account, count in self._suppressed.items():
                pipe.hincrby(DROPPED_SUPPRESSED_KEY, account, count)
            for field, count in self._refused_links.items():
                pipe.hincrby(LINKS_REFUSED_KEY, field, count)
            pipe.xack(STREAM_KEY, DRAIN_GROUP, *ids)
            pipe.xdel(STREAM_KEY, *ids)
            pipe.decrby(QUEUE_BYTES_KEY, done.payload_bytes)
            await pipe.execute()
        stored = done.stored
        self.stored += stored
        log.info("batch_flushed", entries=len(ids), stored=stored, dead=len(dead))
        if dead:
            log.warning("entries_dead_lettered", count=len(dead), key=DEAD_LETTER_KEY, error=dead[0][2][:200])
        if too_old:
            log.warning("entries_too_old", counts=too_old, retention_days=self.settings.retention_days)
        return len(ids)

    def _timeout_ms(self, entries: int, escalated: bool) -> int:
        """The statement timeout of a write of ``entries`` entries: a base, a share per entry, 4x when escalated."""
        seconds = self.settings.drain_statement_timeout + self.settings.drain_timeout_per_entry * entries
        return max(1, int(seconds * (4 if escalated else 1) * 1000))

    async def _write_fresh(self, conn: aiopg.Connection, rows: list[_Row],
                           stored_keys: list[int | None]) -> tuple[int, list[tuple[str, str, str]]]:
        """Write a fresh batch in one statement with its runs of entries; its message ids go to the de-duplication
        window only when ANALYTICS_DEDUPE_WINDOW is longer than the enqueue script's 24 h (the default 48 h: a client
        retry after 24 h is still stored once; 24h: no per-event check or index entry at all). If Postgres refuses
        its data or it outlasts its timeout, nothing was committed: the batch is split and written as redelivered
        entries are (:meth:`_write`), which finds the entries at fault. Raises StaleBatch when another consumer
        stored some of these entries first."""
        if not rows:
            return 0, []
        events, identifies, links = _selection(rows)
        timeout_ms = self._timeout_ms(len(rows), False)
        timed_out = False
        try:
            return await write_payload(conn, events, identifies, links, max_ids=self.settings.max_ids_per_person,
                                       timeout_ms=timeout_ms, suppressed=self._suppressed,
                                       refused_links=self._refused_links, ranges=runs(stored_keys),
                                       window=self.settings.dedupe_window > DEDUPE_TTL_SECONDS), []
        except StatementTimeout:
            log.warning("batch_timed_out", entries=len(rows), timeout_ms=timeout_ms)
            timed_out = True
        except psycopg2.Error as exc:
            if is_stale(exc):
                raise StaleBatch(str(exc)) from exc
            if missing_partition(exc):
                forget_partitions()
                raise
            if not is_data_fault(exc, conn):
                raise
        if len(rows) == 1:  # timed out alone once already: the next try has the escalated time
            return await self._write(conn, rows, escalated=timed_out)
        half = len(rows) // 2
        first, second = await self._write(conn, rows[:half]), await self._write(conn, rows[half:])
        return first[0] + second[0], first[1] + second[1]

    async def _write(self, conn: aiopg.Connection, rows: list[_Row],
                     escalated: bool = False) -> tuple[int, list[tuple[str, str, str]]]:
        """Write rows read again (or a part of a fresh batch that failed) in one transaction, each entry claimed
        first (store/drain_ranges.py: an entry a committed batch holds is not written again); if Postgres refuses
        their data, or the data makes the statement outlast its timeout (sized for the batch), split the batch to
        find the entries at fault, and return those with the error text to be dead-lettered (the rest are stored).
        One entry that times out alone is tried once more with 4x the time first (a loaded server is not the
        entry's fault). Errors of the connection or the server are raised: the caller retries the whole batch."""
        if not rows:
            return 0, []
        timeout_ms = self._timeout_ms(len(rows), escalated)

        def select(claimed: set[int]) -> Selection:
            return _selection([row for row in rows if row.key in claimed])

        try:
            return await write_claimed(conn, [row.key for row in rows], select,
                                       max_ids=self.settings.max_ids_per_person, timeout_ms=timeout_ms,
                                       suppressed=self._suppressed, refused_links=self._refused_links), []
        except StatementTimeout:
            log.warning("batch_timed_out", entries=len(rows), timeout_ms=timeout_ms)
            if len(rows) == 1:
                if not escalated:
                    return await self._write(conn, rows, escalated=True)
                error = f"StatementTimeout: storing this entry took longer than {timeout_ms} ms"
                log.warning("entry_rejected", entry=rows[0].entry_id, error=error)
                return 0, [(rows[0].entry_id, rows[0].raw, error)]
        except psycopg2.Error as exc:
            if missing_partition(exc):
                forget_partitions()  # a partition was dropped behind our back (pruned elsewhere): recreate it
                raise
            if not is_data_fault(exc, conn):
                raise
            if len(rows) == 1:
                error = f"{type(exc).__name__}: {str(exc).strip()}"
                log.warning("entry_rejected", entry=rows[0].entry_id, error=error[:300])
                return 0, [(rows[0].entry_id, rows[0].raw, error)]
        half = len(rows) // 2
        first, second = await self._write(conn, rows[:half]), await self._write(conn, rows[half:])
        return first[0] + second[0], first[1] + second[1]

    async def drain_until_empty(self) -> int:
        """Drain until the stream holds nothing this consumer can take (tests and graceful stop)."""
        total = 0
        while True:
            handled = await self.drain_once(block_ms=None)
            if handled == 0:
                return total
            total += handled

    async def step(self) -> float:
        """One round of the supervised loop (pipeline/supervisor.py: errors restart it with backoff): drain one
        batch; return the seconds to wait before the next round."""
        async with statement_timeouts():  # a background statement past ANALYTICS_BACKGROUND_TIMEOUT
            handled = await self.drain_once(block_ms=500)
        self.progressed = time.time()  # a round completed: a batch committed, or nothing this consumer could take
        # caught up: let the next batch gather for a moment (fewer, larger commits and fsyncs)
        return LINGER_SECONDS if 0 < handled < self.settings.batch_size else 0.0
