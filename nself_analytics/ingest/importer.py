"""Import of export lines (``model.ndjson``): the path ``nself-analytics import`` and ``restore`` take.

Each line goes through the ingest API's own validation (``normalize.validate`` and ``to_record``: the message
Structs, the timestamp rules, the retention window) and then into the queue through ``Ingestor.accept``, so
the drain stores it as any accepted event (the message-id de-duplication of Redis and of
np_analytics_message_ids included). What the first acceptance derived from its request (``$stored``: account,
device, browser, OS, country, bot flag, IP hash) is put back instead of being derived again; a line without
``$stored`` (a Segment archive, say) is enriched from its own context as at ingest. An event already
stored (same account, message id, name and time) is skipped before it is queued, so importing an export into
the instance it came from stores nothing twice, however old the events are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiopg
import msgspec

from ..config import Settings
from ..model.ndjson import Stored, decode_line
from ..model.record import EventRecord, IdentifyRecord
from ..model.wire import MessageError
from ..store.export import stored_message_ids
from .normalize import Normalized, to_record, validate
from .redis_keys import dedupe_prefix
from .refusals import TooLarge, Unavailable
from .service import Ingestor, RequestMeta, slim_context

__all__ = ["ImportSummary", "Importer", "read_line"]

CHUNK = 500  # lines per existence check and enqueue (a larger request than /batch: split when too large)
MAX_ERRORS_SHOWN = 10
_IDS = ("userId", "user_id", "anonymousId", "anonymous_id")
_NO_ID = "-"  # stands in for the missing id of an exported beacon page view while it is validated
# How long an import waits for room in a full queue before it gives up (the drain empties it).
QUEUE_WAIT_SECONDS = 600.0


@dataclass
class ImportSummary:
    """What an import did, line by line: every line read is counted in exactly one of the outcomes."""

    lines: int = 0
    queued: int = 0
    already_stored: int = 0
    duplicates: int = 0
    too_old: int = 0
    invalid: int = 0
    over_name_limit: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"lines": self.lines, "queued": self.queued, "already_stored": self.already_stored,
                "duplicates": self.duplicates, "too_old": self.too_old, "invalid": self.invalid,
                "over_name_limit": self.over_name_limit, "errors": self.errors}


def read_line(raw: bytes | str, received_at: datetime, retention_days: int,
              account: str | None = None) -> tuple[Normalized, bool]:
    """One line as the ingest path would normalize it, and whether it is an export's line (its stored fields
    are put back: it is not enriched again); MessageError when it is no valid message. ``account`` replaces the
    line's own account (an export's, else primary)."""
    try:
        body, found = decode_line(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise MessageError(f"not a JSON object of the export shape: {str(exc)[:200]}") from None
    exported = found is not None  # a line of this service's export (not one written by hand or elsewhere)
    stored = found or Stored()
    kind = body.get("type")
    # a page view of the beacon (POST /hit) may have no visitor id; an exported one ($stored) is taken as it was
    anonymous = exported and kind == "page" and not any(body.get(k) for k in _IDS)
    message = validate({**body, "anonymousId": _NO_ID} if anonymous else body, kind if isinstance(kind, str) else "")
    owner = account or stored.source_account_id
    item = to_record(message, received_at, source_account_id=owner, retention_days=retention_days)
    if isinstance(item.record, EventRecord) and exported:
        _put_back(item.record, stored, body.get("context"))
        if anonymous:
            item.record.anonymous_id = None
    elif isinstance(item.record, IdentifyRecord) and stored.traits_once:
        item.record.traits_once = stored.traits_once
    return item, exported


def _put_back(record: EventRecord, stored: Stored, context: object) -> None:
    record.device, record.browser, record.os = stored.device, stored.browser, stored.os
    record.country, record.is_bot, record.ip_hash = stored.country, stored.is_bot, stored.ip_hash
    # the line's context as stored (not cut again to 4 KB with the page, locale and screen columns put back in)
    record.context = slim_context(context) if isinstance(context, dict) else None


class Importer:
    """Feeds lines to the queue in chunks; ``progress(summary)`` is called after each chunk."""

    def __init__(self, ingestor: Ingestor, pool: aiopg.Pool, settings: Settings, *, account: str | None = None,
                 forget_dedupe: bool = False, progress: Callable[[ImportSummary], None] | None = None) -> None:
        self.ingestor = ingestor
        self.pool = pool
        self.settings = settings
        self.account = account
        # restore: the backup decides what is stored; ids the (old) Redis remembers must not stop its queue
        self.forget_dedupe = forget_dedupe
        self.progress = progress
        self.summary = ImportSummary()

    async def run(self, lines: Iterable[bytes | str]) -> ImportSummary:
        chunk: list[tuple[Normalized, bool]] = []
        received_at = datetime.now(UTC)
        for raw in lines:
            if not raw.strip():
                continue
            self.summary.lines += 1
            try:
                item, exported = read_line(raw, received_at, self.settings.retention_days, self.account)
            except MessageError as exc:
                self._invalid(f"line {self.summary.lines}: {exc}")
                continue
            if item.too_old:
                self.summary.too_old += 1
                continue
            chunk.append((item, exported))
            if len(chunk) >= CHUNK:
                await self._send(chunk)
                chunk = []
                received_at = datetime.now(UTC)
        if chunk:
            await self._send(chunk)
        return self.summary

    def _invalid(self, text: str) -> None:
        self.summary.invalid += 1
        if len(self.summary.errors) < MAX_ERRORS_SHOWN:
            self.summary.errors.append(text)

    async def _send(self, chunk: list[tuple[Normalized, bool]]) -> None:
        events = [item.record for item, _exported in chunk if isinstance(item.record, EventRecord)]
        async with self.pool.acquire() as conn:
            stored = await stored_message_ids(conn, events)
        fresh = [(item, exported) for item, exported in chunk
                 if not (isinstance(item.record, EventRecord)
                         and (item.record.source_account_id, item.record.message_id) in stored)]
        self.summary.already_stored += len(chunk) - len(fresh)
        for exported in (True, False):
            items = [item for item, was in fresh if was is exported]
            if items:
                await self._enqueue(items, enrich=not exported)
        if self.progress is not None:
            self.progress(self.summary)

    async def _enqueue(self, items: list[Normalized], *, enrich: bool) -> None:
        if self.forget_dedupe:
            await self.ingestor.redis.delete(*{dedupe_prefix(item.record.source_account_id) + item.message_id
                                               for item in items})
        meta = RequestMeta(received_at=datetime.now(UTC), ip=None, user_agent=None)
        waited = 0.0
        while True:
            try:
                result = await self.ingestor.accept(items, meta, imported=True, enrich=enrich)
                break
            except TooLarge:
                if len(items) == 1:
                    self._invalid(f"message {items[0].message_id}: larger than ANALYTICS_REQUEST_BYTES")
                    return
                half = len(items) // 2
                await self._enqueue(items[:half], enrich=enrich)
                await self._enqueue(items[half:], enrich=enrich)
                return
            except Unavailable as exc:  # the queue is full (the drain catches up) or Redis is away: wait
                if waited >= QUEUE_WAIT_SECONDS:
                    raise
                delay = float(exc.retry_after or 1)
                await asyncio.sleep(delay)
                waited += delay
        self.summary.queued += result.stored
        self.summary.duplicates += len(result.duplicates)
        self.summary.over_name_limit += len(result.over_name_limit)
