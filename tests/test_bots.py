"""The report bots through their libraries' own dispatch, against the live service with known data.

Telegram: python-telegram-bot's ``Application.process_update`` with constructed ``Update`` objects; the
bot's Bot API calls go to a local HTTP server standing in for api.telegram.org (``base_url``), which
records the replies. Discord: discord.py's ``Bot.process_commands`` with a constructed ``Message``; the
REST calls go to a local server standing in for discord.com (``Route.BASE``). No network leaves the host.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
import discord.http
import pytest
from aiohttp import web
from discord.ext import commands
from telegram import Update
from telegram.ext import Application

from nself_analytics.integrations.bots import BotConfig, build_discord, build_telegram
from nself_analytics.integrations.client import ClientConfig

from .conftest import LiveService, free_port
from .integrations_support import HITS, web_data

TELEGRAM_TOKEN = "123456:TEST-token"
USER = {"id": "4242", "username": "reader", "discriminator": "0", "avatar": None, "global_name": "Reader"}
BOT_USER = {"id": "777", "username": "analytics", "discriminator": "0", "avatar": None, "bot": True}


@dataclass
class FakeChatApi:
    """A local HTTP server answering the chat API calls the bots make; ``sent`` holds their replies' texts."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    ids: Any = field(default_factory=lambda: itertools.count(1000))

    async def reply_to(self, dispatch: Awaitable[Any], chat: int) -> str:
        """Run the library's dispatch of one message; the one reply it sent, to the same chat."""
        before = len(self.sent)
        await dispatch
        replies = self.sent[before:]
        assert len(replies) == 1 and replies[0][0] == str(chat), replies
        return replies[0][1]

    async def telegram(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = dict(await request.json()) if request.content_type == "application/json" else dict(await request.post())
        if method == "getMe":
            result: Any = {"id": 777, "is_bot": True, "first_name": "Analytics", "username": "analytics_bot"}
        elif method == "sendMessage":
            self.sent.append((str(form["chat_id"]), str(form["text"])))
            result = {"message_id": next(self.ids), "date": int(time.time()), "text": form["text"],
                      "chat": {"id": int(form["chat_id"]), "type": "private"}}
        else:
            result = True
        return web.json_response({"ok": True, "result": result})

    async def discord_get(self, request: web.Request) -> web.Response:
        if request.path.endswith("/users/@me"):
            return discord_json(BOT_USER)
        if request.path.endswith("/oauth2/applications/@me"):
            return discord_json({"id": "777", "name": "analytics", "description": "", "icon": None,
                                      "bot_public": False, "bot_require_code_grant": False, "owner": USER,
                                      "verify_key": "00", "flags": 0})
        return discord_json({"message": "Unknown"}, status=404)

    async def discord_post(self, request: web.Request) -> web.Response:
        body = await request.json()
        channel = request.match_info["channel"]
        self.sent.append((channel, body["content"]))
        return discord_json(message_data(channel, body["content"], BOT_USER, next(self.ids)))


def discord_json(payload: Any, status: int = 200) -> web.Response:
    """JSON as discord.com sends it: discord.py parses a body only when the type is exactly application/json."""
    return web.Response(body=json.dumps(payload).encode(), status=status, headers={"Content-Type": "application/json"})


def message_data(channel: str, content: str, author: dict[str, Any], message_id: int) -> dict[str, Any]:
    return {"id": str(message_id), "channel_id": channel, "type": 0, "content": content, "author": author,
            "attachments": [], "embeds": [], "mentions": [], "mention_roles": [], "pinned": False,
            "mention_everyone": False, "tts": False, "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None}


@pytest.fixture
async def chat_api(aiohttp_server: Any) -> FakeChatApi:
    fake = FakeChatApi()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", fake.telegram)
    app.router.add_get("/api/{rest:.*}", fake.discord_get)
    app.router.add_post("/api/channels/{channel}/messages", fake.discord_post)
    server = await aiohttp_server(app)
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


def bot_config(live: LiveService, site: str, token: str | None = None, url: str | None = None,
               chats: frozenset[str] = frozenset()) -> BotConfig:
    client = ClientConfig(url=url or live.base_url, token=token or live.secret, site=site, timeout=5)
    return BotConfig(TELEGRAM_TOKEN, client, chats)


# --- Telegram ----------------------------------------------------------------------------------------

@pytest.fixture
async def telegram(chat_api: FakeChatApi, live_service: LiveService, report_site: str) -> AsyncIterator[Any]:
    apps: list[Application] = []  # type: ignore[type-arg]

    async def ask(text: str, config: BotConfig | None = None, chat: int = 42) -> str:
        app = build_telegram(config or bot_config(live_service, report_site), base_url=chat_api.url + "/bot")
        apps.append(app)
        await app.initialize()
        command = text.split()[0]
        update = Update.de_json({"update_id": next(chat_api.ids), "message": {
            "message_id": next(chat_api.ids), "date": int(time.time()), "text": text,
            "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": False, "first_name": "R"},
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}]}}, app.bot)
        return await chat_api.reply_to(app.process_update(update), chat)

    yield ask
    for app in apps:
        await app.shutdown()


async def test_telegram_reports_the_figures(telegram: Any, live_service: LiveService) -> None:
    summary = web_data(live_service, "pageviews")
    stats = await telegram("/stats")
    assert "reports.example.com: last 7 days" in stats
    assert "Page views: 6" in stats and "Sessions: 3" in stats and f"Visitors: {summary['visitors']}" in stats
    assert "Views per session: 2.00" in stats
    pages = await telegram("/pages 30d")
    assert "last 30 days" in pages
    assert "1. /pricing: 3 views (50.0%), 1 sessions" in pages and "2. /docs: 2 views (33.3%), 1 sessions" in pages
    assert "3. /: 1 views (16.7%), 1 sessions" in pages
    referrers = await telegram("/referrers")
    assert "1. google.com: 3 views (50.0%)" in referrers and "2. news.ycombinator.com: 2 views (33.3%)" in referrers
    # a session without a referrer is the row "Direct / None" (docs/web-metrics.md)
    assert "3. Direct / None: 1 views (16.7%), 1 sessions" in referrers
    devices = await telegram("/devices 24h")
    assert "1. desktop: 4 views (66.7%), 2 sessions" in devices and "2. mobile: 2 views (33.3%), 1 sessions" in devices
    languages = await telegram("/languages")
    for index, row in enumerate(web_data(live_service, "languages"), 1):
        assert f"{index}. {row['language']}: {row['pageviews']} views" in languages
    assert "en-US: 3 views" in languages
    countries = await telegram("/countries")
    api_countries = web_data(live_service, "countries")
    assert api_countries and sum(r["pageviews"] for r in api_countries) == len(HITS)
    for index, row in enumerate(api_countries, 1):
        assert f"{index}. {row['country'] or '(unknown)'}: {row['pageviews']} views" in countries
    trend = await telegram("/trend")
    today = datetime.now(UTC).date().isoformat()
    assert re.search(rf"{today}\s+6 █{{12}}", trend), trend
    assert "Commands" in await telegram("/start")


async def test_telegram_clear_replies_on_failure(telegram: Any, live_service: LiveService, report_site: str) -> None:
    assert "Unknown range 'forever'" in await telegram("/stats forever")
    assert "1h to 366 days" in await telegram("/stats 400d")
    assert "at most a range" in await telegram("/stats 7d extra")
    wrong = await telegram("/stats", bot_config(live_service, report_site, token="sk_wrong_token_0123456789"))
    assert "refused the API token" in wrong and "ANALYTICS_API_TOKEN" in wrong
    down = await telegram("/pages", bot_config(live_service, report_site, url=f"http://127.0.0.1:{free_port()}"))
    assert "unreachable" in down
    refused = await telegram("/stats", bot_config(live_service, report_site, chats=frozenset({"1"})), chat=99)
    assert "may not read" in refused and "Page views" not in refused


# --- Discord -----------------------------------------------------------------------------------------

@pytest.fixture
async def discord_bot(chat_api: FakeChatApi, live_service: LiveService, report_site: str,
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setattr(discord.http.Route, "BASE", chat_api.url + "/api")
    bots: list[commands.Bot] = []

    async def ask(text: str, config: BotConfig | None = None, channel_id: int = 555) -> str:
        bot = build_discord(config or bot_config(live_service, report_site))
        bots.append(bot)
        await bot.login("discord-test-token")
        state = bot._connection
        channel = discord.DMChannel(me=bot.user, state=state,  # type: ignore[arg-type]
                                    data={"id": str(channel_id), "type": 1, "recipients": [USER]})
        message = discord.Message(state=state, channel=channel,
                                  data=message_data(str(channel_id), text, USER, next(chat_api.ids)))  # type: ignore
        return await chat_api.reply_to(bot.process_commands(message), channel_id)

    yield ask
    for bot in bots:
        await bot.close()


async def test_discord_reports_the_figures(discord_bot: Any, live_service: LiveService) -> None:
    stats = await discord_bot("!stats")
    assert "Page views: 6" in stats and "Sessions: 3" in stats
    pages = await discord_bot("!pages 7d")
    assert "1. /pricing: 3 views (50.0%), 1 sessions" in pages
    assert "2. news.ycombinator.com: 2 views" in await discord_bot("!referrers")
    assert "1. desktop: 4 views (66.7%)" in await discord_bot("!devices 30d")
    assert "en-US: 3 views" in await discord_bot("!languages")
    today = datetime.now(UTC).date().isoformat()
    assert re.search(rf"{today}\s+6 █", await discord_bot("!trend 7d"))
    assert "!stats" in await discord_bot("!help")


async def test_discord_clear_replies_on_failure(discord_bot: Any, live_service: LiveService,
                                                report_site: str) -> None:
    assert "Unknown range" in await discord_bot("!stats yesterdayish")
    wrong = await discord_bot("!stats", bot_config(live_service, report_site, token="sk_wrong_token_0123456789"))
    assert "refused the API token" in wrong
    down = await discord_bot("!trend", bot_config(live_service, report_site, url=f"http://127.0.0.1:{free_port()}"))
    assert "unreachable" in down
    refused = await discord_bot("!stats", bot_config(live_service, report_site, chats=frozenset({"1"})))
    assert "may not read" in refused


def test_bot_configuration_names_the_missing_variable() -> None:
    from nself_analytics.config import ConfigError

    base = {"ANALYTICS_URL": "http://localhost:3206", "ANALYTICS_API_TOKEN": "t", "ANALYTICS_SITE": "a.com",
            "TELEGRAM_BOT_TOKEN": "1:x"}
    assert BotConfig.from_env(base, "TELEGRAM_BOT_TOKEN").client.base == "http://localhost:3206/analytics"
    for missing in ("ANALYTICS_URL", "ANALYTICS_API_TOKEN", "ANALYTICS_SITE", "TELEGRAM_BOT_TOKEN"):
        with pytest.raises(ConfigError) as info:
            BotConfig.from_env({k: v for k, v in base.items() if k != missing}, "TELEGRAM_BOT_TOKEN")
        assert info.value.variable == missing
    with pytest.raises(ConfigError) as info:
        BotConfig.from_env({**base, "ANALYTICS_URL": "ftp://x"}, "TELEGRAM_BOT_TOKEN")
    assert info.value.variable == "ANALYTICS_URL"


def test_bot_command_refuses_to_start_without_its_token() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "TELEGRAM_", "DISCORD_"))}
    env.update({"ANALYTICS_URL": "http://127.0.0.1:9", "ANALYTICS_API_TOKEN": "t", "ANALYTICS_SITE": "a.com"})
    for kind, variable in (("telegram", "TELEGRAM_BOT_TOKEN"), ("discord", "DISCORD_BOT_TOKEN")):
        result = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "bot", kind], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and variable in result.stderr
