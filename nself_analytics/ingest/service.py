"""The ingest service: enrich validated messages, apply sampling, and enqueue them with their counters."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import Settings
from ..model.record import EventRecord
from .counter_keys import increments
from .enrich import browser_hit_is_bot, classify_user_agent, country_for_ip, daily_salt, hash_ip, is_browser_agent
from .hits import FLOOD_LIMIT_PER_MINUTE, count_hit, derived_session
from .normalize import Normalized
from .queue import EnqueueResult, Producer, QueuedMessage, QueueFull, QueueUnavailable
from .redis_keys import DROPPED_KEY
from .refusals import RateLimited, SiteRefused, TooLarge, Unavailable
from .site_guard import RATE_IP_PREFIX, RATE_SITE_PREFIX, ip_key, site_account, take
from .suppressed import shared

__all__ = ["NAME_WARNINGS", "Ingestor", "RequestMeta", "sampled_in", "slim_context"]

_IP_KEYS = ("ip", "ipAddress", "ip_address")
_ENCODER = msgspec.json.Encoder()
# The warning of a message refused for its event name, by reason (EnqueueResult.name_refusals): the same text on
# every wire format that answers with warnings (the Segment routes answer 200 {"success": true}; /health counts).
NAME_WARNINGS = {
    "cap": "event name limit reached: this account has ANALYTICS_MAX_EVENT_NAMES distinct event names in the "
           "retention window; a new name is not stored",
    "public_daily": "event name limit reached: a public write key may add ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY new "
                    "event names per account and day; a new name is not stored (send it with a server key)",
    "blocked": "event name blocked: events with this name are not stored",
}
# What a 503 of the ingest path asks the client to wait before retrying (seconds).
RETRY_AFTER_SECONDS = 2


@dataclass(frozen=True)
class RequestMeta:
    """What the request itself tells about its messages."""

    received_at: datetime
    ip: str | None
    user_agent: str | None
    # sent with a public write key, or by the beacon: new event names are limited per day (README "Security")
    public: bool = False


def sampled_in(user_key: str, rate: float) -> bool:
    """Keep or drop a user's events together: a stable hash of the user decides."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(user_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


# Context fields already held in their own columns (site/path/referrer, language, screen_width, device/browser/os):
# not stored twice. The raw user agent is not kept at all: its classification is, and the full string is both the
# largest field of a typical SDK event (~110 bytes) and a fingerprinting aid.
_COLUMN_CONTEXT = {"userAgent": None, "locale": None, "page": ("url", "path", "referrer"), "screen": ("width",)}


def slim_context(context: dict[str, Any] | None) -> dict[str, Any] | None:
    """``context`` without what the columns hold (and without the raw user agent); None when nothing is left."""
    if not context:
        return None
    slim = dict(context)
    for key, fields in _COLUMN_CONTEXT.items():
        if key not in slim:
            continue
        value = slim[key]
        if fields is None or not isinstance(value, dict):
            if fields is None:
                del slim[key]
            continue
        rest = {k: v for k, v in value.items() if k not in fields}
        if rest:
            slim[key] = rest
        else:
            del slim[key]
    return slim or None


class Ingestor:
    """Turns normalized messages into queued stream entries."""

    def __init__(self, producer: Producer, client: aioredis.Redis, settings: Settings) -> None:
        self.producer = producer
        self.redis = client
        self.settings = settings
        self.suppressions = shared(client)  # erased ids: their messages are dropped (counted in /health)

    def _enrich(self, record: EventRecord, meta: RequestMeta, salt: str | None, use_request_ua: bool,
                hashes: dict[tuple[str, str | None], str], session_salt: str | None = None) -> None:
        context = record.context or {}
        ip = next((context[k] for k in _IP_KEYS if isinstance(context.get(k), str)), None) or meta.ip
        # With hashing on no raw IP is stored anywhere; with it off the IP is kept in context.ip.
        context = {k: v for k, v in context.items() if k not in _IP_KEYS}
        if ip and not self.settings.ip_hash:
            context["ip"] = ip
        user_agent = context.get("userAgent") if isinstance(context.get("userAgent"), str) else None
        if user_agent is None and use_request_ua:
            user_agent = meta.user_agent
        device, browser, os_name, is_bot = classify_user_agent(user_agent)
        record.device = record.device or device
        record.browser = record.browser or browser
        record.os = record.os or os_name
        record.is_bot = record.is_bot or is_bot
        record.country = record.country or country_for_ip(ip)  # looked up before the IP is hashed
        if ip and salt is not None:
            # a request's events mostly share the IP and the site: one hash each (``hashes`` lives one request)
            key = (ip, record.site)
            record.ip_hash = hashes.get(key) or hashes.setdefault(key, hash_ip(ip, salt, record.site))
        else:
            record.ip_hash = None
        record.context = slim_context(context)
        if record.session_id is None and record.site is not None and record.type in ("page", "screen") \
                and session_salt is not None:
            # a page view without a session id gets the one the beacon derives for a hit without one (per day, salted),
            # from the visitor's id when the message has one, else its IP, and its browser
            who = record.user_id or record.anonymous_id
            record.session_id = derived_session(session_salt, record.site, f"id:{who}" if who else ip, user_agent)

    async def accept(self, items: list[Normalized], meta: RequestMeta, shared_bytes: int = 0, *,
                     imported: bool = False, enrich: bool = True) -> EnqueueResult:
        """Enqueue ``items`` atomically (all or none); raises Unavailable (the queue is full or unreachable), or
        TooLarge when the request would store more than ANALYTICS_REQUEST_BYTES (``shared_bytes``, a batch's
        shared context, counted once). Items too old for the retention window are counted, not enqueued. Indices
        in the result are indices of ``items``. ``imported``: records of an import (``ingest.importer``): they
        count in no real-time counter (an import is no traffic). ``enrich=False``: the records carry what was
        derived when they were first accepted (an export's lines): they are not enriched again."""
        salt = await daily_salt(self.redis, meta.received_at) if self.settings.ip_hash else None
        await self.suppressions.refresh()
        suppressed: dict[str, int] = {}  # account -> messages carrying an erased id: counted, not enqueued
        session_salt = salt
        if session_salt is None and any(isinstance(item.record, EventRecord) and item.record.session_id is None
                                        and item.record.type in ("page", "screen") for item in items):
            session_salt = await daily_salt(self.redis, meta.received_at)
        messages = []
        positions: list[int] = []
        too_old: dict[str, int] = {}
        # per request: a batch's events share the request's time, so their counter keys depend only on the event,
        # the account (and the user, with quotas): built once per distinct triple, not per event (py-spy: 7%)
        counter_sets: dict[tuple[str, str | None, str], tuple[tuple[str, int], ...]] = {}
        hashes: dict[tuple[str, str | None], str] = {}
        per_user = self.settings.quota_enabled
        total_ttl = self.settings.retention_days * 86_400
        for position, item in enumerate(items):
            record = item.record
            if item.too_old:
                too_old[record.source_account_id] = too_old.get(record.source_account_id, 0) + 1
                continue
            if self.suppressions.suppressed(record):
                suppressed[record.source_account_id] = suppressed.get(record.source_account_id, 0) + 1
                continue
            counters: tuple[tuple[str, int], ...] = ()
            name: tuple[str, str] | None = None
            if isinstance(record, EventRecord):
                # a page or screen view sent by the visitor's browser (analytics.js, the JS SDK) is classified by
                # the request's user agent, as a beacon hit is; a server library's own agent says nothing of
                # the visitor (it sends the visitor's as context.userAgent, which always wins)
                use_request_ua = record.type in ("page", "screen") and is_browser_agent(meta.user_agent)
                if enrich:
                    self._enrich(record, meta, salt, use_request_ua, hashes, session_salt)
                if record.type in ("track", "page") and not imported:
                    user_key = item.user_key if per_user else None
                    key = (record.event, user_key, record.source_account_id)
                    found = counter_sets.get(key)
                    if found is None:
                        found = counter_sets[key] = tuple(increments(record.event, user_key, meta.received_at,
                                                                     per_user, record.source_account_id,
                                                                     total_ttl=total_ttl))
                    counters = found
                name = (record.source_account_id, record.event)
            keep = sampled_in(item.user_key, self.settings.sample_rate)
            payload = _ENCODER.encode(record) if keep else b""  # bytes: sent to Redis as they are
            messages.append(QueuedMessage(item.message_id, payload, counters, name, record.source_account_id))
            positions.append(position)
        stored_bytes = sum(len(m.payload) for m in messages) - max(0, len(messages) - 1) * shared_bytes
        if stored_bytes > self.settings.request_bytes:
            raise TooLarge(f"This request would store {stored_bytes} bytes; at most {self.settings.request_bytes}"
                           " (ANALYTICS_REQUEST_BYTES) are allowed")
        if too_old:
            async with self.redis.pipeline(transaction=False) as pipe:
                for account, count in too_old.items():
                    pipe.hincrby(DROPPED_KEY, account, count)
                await pipe.execute()
        await self.suppressions.count_dropped(suppressed)
        if not messages:
            return EnqueueResult(stored=0)
        try:
            result = await self.producer.enqueue(messages, public=meta.public)
        except QueueFull:
            raise Unavailable("Ingest queue is full; retry later", RETRY_AFTER_SECONDS) from None
        except QueueUnavailable:
            raise Unavailable("Ingest queue is unavailable; retry later", RETRY_AFTER_SECONDS) from None
        return EnqueueResult(stored=result.stored, duplicates=[positions[i] for i in result.duplicates],
                             over_name_limit=[positions[i] for i in result.over_name_limit],
                             name_refusals={positions[i]: why for i, why in result.name_refusals.items()})

    async def accept_hit(self, item: Normalized, meta: RequestMeta) -> EnqueueResult:
        """One page view or custom event sent by a tracker in a web page (the beacon's /hit, Plausible's and Umami's
        endpoints): :meth:`admit_hit`'s rules, then :meth:`accept`."""
        record = item.record
        assert isinstance(record, EventRecord)
        await self.admit_hit(record, meta)
        return await self.accept([item], meta)

    async def admit_hit(self, record: EventRecord, meta: RequestMeta) -> None:
        """The beacon's rules for one page view (POST /hit): its site names the account (ANALYTICS_SITES, else
        SiteRefused), the per-IP and per-site token buckets (RateLimited), a session derived when the hit has
        none, and bot marking (the user agent, or a session over FLOOD_LIMIT_PER_MINUTE hits a minute).
        Unavailable when Redis cannot be reached."""
        site = str(record.site)  # parse_hit requires it
        settings = self.settings
        account = site_account(settings.sites, site)
        if account is None:
            raise SiteRefused(f"Hits for {site} are not accepted here (ANALYTICS_SITES)")
        record.source_account_id = account
        redis = self.redis
        buckets = []
        if settings.hit_rate_ip is not None:
            # an IP, whatever the account; keyed by a keyed hash, so Redis never holds the raw address
            buckets.append((RATE_IP_PREFIX + ip_key(meta.ip, settings.secret_token), settings.hit_rate_ip))
        if settings.hit_rate_site is not None:
            buckets.append((f"{RATE_SITE_PREFIX}{account}:{site}", settings.hit_rate_site))
        try:
            wait = await take(redis, int(meta.received_at.timestamp() * 1000), buckets)
            if wait:
                raise RateLimited("Too many hits; retry later", int(wait))
            if record.session_id is None:
                record.session_id = derived_session(await daily_salt(redis, meta.received_at), site, meta.ip,
                                                    meta.user_agent)
            count = await count_hit(redis, site, record.session_id, meta.received_at)
        except RedisError:
            raise Unavailable("Ingest queue is unavailable; retry later", RETRY_AFTER_SECONDS) from None
        flooding = count > FLOOD_LIMIT_PER_MINUTE
        record.is_bot = record.is_bot or flooding or browser_hit_is_bot(meta.user_agent)
