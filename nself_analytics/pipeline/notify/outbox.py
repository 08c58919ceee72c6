"""The sender of np_analytics_notifications (store/notifications.py): claims the due rows (leased), renders each
payload (``message``) and sends it through its channel (``chat``, ``mail``). A send that fails is retried after
``RETRY_BASE_SECONDS * 2**(attempts-1)`` up to ``MAX_ATTEMPTS`` attempts; a channel that cannot send at all (not
configured) fails at once. Runs in the leader's alerts job (pipeline/alert_checks.py)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiopg
import structlog
from aiosmtplib import SMTPException

from ...config import Settings
from ...store import notifications
from .chat import ChannelError, send_discord, send_telegram
from .mail import send_email
from .message import render

__all__ = ["MAX_ATTEMPTS", "NotificationSender"]

log = structlog.get_logger("nself_analytics.pipeline.notify")

CLAIM_LIMIT = 20
MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 30.0


_SEND_ERRORS: tuple[type[Exception], ...] = (SMTPException, OSError, TimeoutError, ValueError)


def _library_errors() -> tuple[type[Exception], ...]:
    """The chat libraries' own error bases, of the libraries a sender has imported (notify/chat.py imports each on
    its first message): importing them here for nothing cost every worker 25 MB (python-telegram-bot 15.5 MB,
    discord.py 9 MB, measured)."""
    found: list[type[Exception]] = []
    telegram_errors = sys.modules.get("telegram.error")
    if telegram_errors is not None:
        found.append(telegram_errors.TelegramError)
    discord = sys.modules.get("discord")
    if discord is not None and hasattr(discord, "DiscordException"):
        found.append(discord.DiscordException)
    return tuple(found)


class NotificationSender:
    def __init__(self, pool: aiopg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def send_due(self) -> int:
        """Claim and send the due notifications once; return how many were attempted."""
        async with self.pool.acquire() as conn:
            due = await notifications.claim_due(conn, limit=CLAIM_LIMIT, lease=self.settings.webhook_timeout * 3 + 5)
        if due:
            await asyncio.gather(*(self._send(n) for n in due))
        return len(due)

    async def _send(self, row: dict[str, Any]) -> None:
        rendered = render(row["payload"])
        channel, target = row["channel"], row["target"]
        max_attempts = MAX_ATTEMPTS
        try:
            async with asyncio.timeout(self.settings.webhook_timeout * 3):
                if channel == "telegram":
                    await send_telegram(self.settings, target, rendered.text, rendered.png)
                elif channel == "discord":
                    await send_discord(self.settings, target, rendered.text, rendered.png)
                else:
                    await send_email(self.settings, target, rendered)
        except ChannelError as exc:
            error, max_attempts = str(exc), 1
        except _SEND_ERRORS + _library_errors() as exc:
            error = f"{type(exc).__name__}: {exc}".strip()[:500]
        else:
            async with self.pool.acquire() as conn:
                await notifications.mark_sent(conn, row["id"])
            log.info("notification_sent", id=row["id"], channel=channel)
            return
        delay = RETRY_BASE_SECONDS * 2 ** row["attempts"]
        async with self.pool.acquire() as conn:
            state = await notifications.mark_failed(conn, row["id"], error=error, delay=delay,
                                                    max_attempts=max_attempts)
        log.warning("notification_failed", id=row["id"], channel=channel, error=error, state=state)
