"""The sender of the webhook outbox: runs in the background task, never on the ingest path.

Each round claims due deliveries (leased, so a sender that dies mid-send leaves them due again) fairly across
accounts and webhooks (store/webhooks.py CLAIM_DUE: round-robin, at most PER_WEBHOOK_IN_FLIGHT per webhook and
MAX_IN_FLIGHT in all), and sends each as its own task: a round never waits for a slow receiver, and a receiver that
never answers holds only its own webhook's slots (one slow or dead receiver costs only its own deliveries). Each is
POSTed with a bounded aiohttp client (total timeout ANALYTICS_WEBHOOK_TIMEOUT, no
redirects followed, at most MAX_RESPONSE_BYTES of a response read), and records the result: a 2xx
marks the delivery delivered; anything else is retried after ``base * 2**(attempts-1)`` seconds
(capped at MAX_BACKOFF_SECONDS) until ANALYTICS_WEBHOOK_RETRY_FOR after its creation, then it is
marked failed.

Signature (the scheme a receiver checks; also in the README):
``X-Nself-Signature: sha256=<hex HMAC-SHA256(secret, X-Nself-Timestamp + "." + raw body)>``, with
``X-Nself-Timestamp`` the send time in Unix seconds (refuse old ones against replay) and
``X-Nself-Delivery`` the delivery id (the same on every retry: deduplicate on it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiopg
import orjson
import structlog

from ..config import Settings
from ..store import webhooks

__all__ = ["WebhookSender", "backoff", "log_url", "redact_url", "sign"]

log = structlog.get_logger("nself_analytics.pipeline.webhook_sender")

# Deliveries claimed per round (at most), sent concurrently in all, and in flight per webhook.
CLAIM_LIMIT = 50
MAX_IN_FLIGHT = 200
PER_WEBHOOK_IN_FLIGHT = 4
MAX_BACKOFF_SECONDS = 3600.0
# How much of a receiver's response is read (its status is what counts).
MAX_RESPONSE_BYTES = 4096
# How often settled deliveries past ANALYTICS_RETENTION_DAYS are deleted from the log.
PRUNE_EVERY_SECONDS = 3600.0
# Seconds between rounds when nothing was due (at most; tests use a small retry base and poll faster).
MAX_POLL_SECONDS = 1.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Nself-Signature`` value of a delivery body sent at ``timestamp`` (Unix seconds, as text)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def log_url(url: str) -> str:
    """A receiver's URL as a log line may show it: its scheme, host and port only. User info and the query carry
    secrets (?token=...), and so does the path of many receivers (Slack's /services/T/B/<secret>)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(not a URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}" + ("/..." if parts.path not in ("", "/") else "/")


def redact_url(text: str, url: str) -> str:
    """``text`` (an error message) with every copy of ``url`` in it shown as ``log_url`` shows it."""
    return text.replace(url, log_url(url)) if url else text


def backoff(attempts: int, base: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (1, 2, ...)."""
    return min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def body_of(delivery: dict[str, Any]) -> bytes:
    """The JSON body of a delivery: the same bytes shape on every attempt (only headers carry the time)."""
    return orjson.dumps({"id": delivery["id"], "type": delivery["event"], "webhook_id": delivery["webhook_id"],
                         "source_account_id": delivery["account"],
                         "created_at": delivery["created_at"].isoformat(), "data": delivery["payload"]})


class WebhookSender:
    """Sends due outbox rows; ``run`` loops until stopped, ``send_due`` is one round (tests call it)."""

    def __init__(self, pool: aiopg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._next_prune = 0.0
        self._in_flight: dict[asyncio.Task[None], int] = {}  # send -> its webhook id

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout)
            self._session = aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, limit_per_host=10),
                headers={"User-Agent": "nself-analytics-webhooks"})
        return self._session

    async def close(self) -> None:
        """Cancel the sends in flight (their leases expire and they are sent again), close the client."""
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _claim(self) -> list[asyncio.Task[None]]:
        """Claim what is due within the free slots and start sending each; return the sends started."""
        room = min(CLAIM_LIMIT, MAX_IN_FLIGHT - len(self._in_flight))
        if room <= 0:
            return []
        busy = Counter(self._in_flight.values())
        async with self.pool.acquire() as conn:
            due = await webhooks.claim_due(conn, limit=room, lease=self.settings.webhook_timeout + 5,
                                           per_webhook=PER_WEBHOOK_IN_FLIGHT, in_flight=dict(busy))
        started = []
        for delivery in due:
            task = asyncio.create_task(self._send(delivery), name=f"webhook-{delivery['id']}")
            self._in_flight[task] = int(delivery["webhook_id"])
            task.add_done_callback(self._finished)
            started.append(task)
        return started

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:  # a store error recording the result
            log.error("webhook_send_failed", task=task.get_name(), error=str(exc)[:300], exc_info=exc)

    async def send_due(self) -> int:
        """Claim the due deliveries once and wait for their sends; return how many were attempted (tests)."""
        started = await self._claim()
        if started:
            await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    async def _send(self, delivery: dict[str, Any]) -> None:
        body = body_of(delivery)
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Nself-Event": delivery["event"],
                   "X-Nself-Delivery": delivery["id"], "X-Nself-Timestamp": timestamp,
                   "X-Nself-Signature": sign(delivery["secret"], timestamp, body)}
        status: int | None = None
        error = ""
        try:
            async with self._client().post(delivery["url"], data=body, headers=headers,
                                           allow_redirects=False) as response:
                status = response.status
                await response.content.read(MAX_RESPONSE_BYTES)
            if 200 <= status < 300:
                async with self.pool.acquire() as conn:
                    await webhooks.mark_delivered(conn, delivery["id"], status)
                log.info("webhook_delivered", delivery=delivery["id"], webhook=delivery["webhook_id"],
                         url=log_url(delivery["url"]), status=status)
                return
            error = f"HTTP {status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            error = redact_url(f"{type(exc).__name__}: {exc}".strip(), delivery["url"])  # stored and logged
        attempts = delivery["attempts"] + 1
        async with self.pool.acquire() as conn:
            state = await webhooks.mark_failed(conn, delivery["id"], last_status=status, error=error,
                                               delay=backoff(attempts, self.settings.webhook_retry_base),
                                               horizon=self.settings.webhook_retry_for)
        log.warning("webhook_failed", delivery=delivery["id"], webhook=delivery["webhook_id"],
                    url=log_url(delivery["url"]), attempts=attempts, error=error, state=state)

    async def prune(self) -> int:
        """Settled deliveries older than the raw-event retention leave the log (pending ones never do)."""
        async with self.pool.acquire() as conn:
            return await webhooks.prune_log(conn, self.settings.retention_days)

    async def step(self) -> float:
        """One round of the supervised loop (pipeline/supervisor.py): prune the log when due, send what is due;
        return the seconds until the next round."""
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            await self.prune()
        started = await self._claim()
        return 0.0 if len(started) >= CLAIM_LIMIT else min(MAX_POLL_SECONDS, self.settings.webhook_retry_base)
