"""Chat senders: Telegram through python-telegram-bot's ``Bot`` (TELEGRAM_BOT_TOKEN; ANALYTICS_TELEGRAM_API_URL
for a self-hosted Bot API server) and Discord through discord.py's REST client (DISCORD_BOT_TOKEN; no gateway
connection: one login and one message). Both libraries are the report bots' (the ``bots`` extra): a missing one
is a clear ChannelError, not an ImportError in the background task."""

from __future__ import annotations

import asyncio
import io

from ...config import Settings

__all__ = ["ChannelError", "send_discord", "send_telegram"]

TELEGRAM_CAPTION = 1024
DISCORD_CONTENT = 2000


class ChannelError(Exception):
    """A channel that cannot send at all (not configured, library missing): retrying will not help."""


async def send_telegram(settings: Settings, chat: str, text: str, png: bytes | None) -> None:
    if not settings.telegram_token:
        raise ChannelError("TELEGRAM_BOT_TOKEN is not set on the service")
    try:
        from telegram import Bot
    except ImportError:
        raise ChannelError("python-telegram-bot is not installed (pip install nself-analytics[bots])") from None
    bot = Bot(settings.telegram_token, base_url=settings.telegram_api_url)
    async with bot:
        if png is not None and len(text) <= TELEGRAM_CAPTION:
            await bot.send_photo(chat_id=chat, photo=png, caption=text)
        else:
            await bot.send_message(chat_id=chat, text=text[:4096])
            if png is not None:
                await bot.send_photo(chat_id=chat, photo=png)


async def send_discord(settings: Settings, channel: str, text: str, png: bytes | None) -> None:
    if not settings.discord_token:
        raise ChannelError("DISCORD_BOT_TOKEN is not set on the service")
    try:
        import discord
        from discord.http import HTTPClient, handle_message_parameters
    except ImportError:
        raise ChannelError("discord.py is not installed (pip install nself-analytics[bots])") from None
    http = HTTPClient(asyncio.get_running_loop())
    try:
        await http.static_login(settings.discord_token)
        files = [discord.File(io.BytesIO(png), "chart.png")] if png is not None else []
        with handle_message_parameters(content=text[:DISCORD_CONTENT], files=files) as params:
            await http.send_message(int(channel), params=params)
    finally:
        await http.close()
