"""Local stand-ins for the notification channels, shared by the alert and report tests: api.telegram.org and
discord.com served by a local aiohttp server that records what python-telegram-bot and discord.py sent (as
tests/test_bots.py), a webhook receiver, and a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import discord.http
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from nself_analytics.config import Settings
from nself_analytics.model.mail_url import SmtpUrl

from .conftest import free_port

PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class ChatApis:
    """Local stand-ins for api.telegram.org and discord.com: what the libraries sent."""

    telegram: list[dict[str, Any]] = field(default_factory=list)
    discord: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def telegram_call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "getMe":
            return web.json_response({"ok": True, "result": {"id": 777, "is_bot": True, "first_name": "A",
                                                             "username": "analytics_bot"}})
        form: dict[str, Any] = {}
        reader = await request.multipart()
        async for part in reader:
            form[part.name] = await part.read() if part.filename else await part.text()
        self.telegram.append({"method": method, **form})
        return web.json_response({"ok": True, "result": {"message_id": len(self.telegram), "date": 0,
                                                         "chat": {"id": int(form["chat_id"]), "type": "group"}}})

    async def discord_get(self, request: web.Request) -> web.Response:
        user = {"id": "777", "username": "analytics", "discriminator": "0", "avatar": None, "bot": True}
        return web.Response(body=json.dumps(user).encode(), headers={"Content-Type": "application/json"})

    async def discord_post(self, request: web.Request) -> web.Response:
        sent: dict[str, Any] = {"channel": request.match_info["channel"]}
        async for part in await request.multipart():
            sent[part.name] = await part.read() if part.filename else json.loads(await part.text())
        self.discord.append(sent)
        message = {"id": "1", "channel_id": sent["channel"], "type": 0, "content": sent["payload_json"]["content"],
                   "author": {"id": "777", "username": "a", "discriminator": "0", "avatar": None}, "attachments": [],
                   "embeds": [], "mentions": [], "mention_roles": [], "pinned": False, "mention_everyone": False,
                   "tts": False, "timestamp": "2020-01-01T00:00:00+00:00", "edited_timestamp": None}
        return web.Response(body=json.dumps(message).encode(), headers={"Content-Type": "application/json"})

    async def hook(self, request: web.Request) -> web.Response:
        self.hooks.append({"headers": dict(request.headers), "body": json.loads(await request.read())})
        return web.Response(status=204)


@pytest.fixture(name="apis")
async def apis_fixture(aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> ChatApis:
    fake = ChatApis()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", fake.telegram_call)
    app.router.add_get("/api/{rest:.*}", fake.discord_get)
    app.router.add_post("/api/channels/{channel}/messages", fake.discord_post)
    app.router.add_post("/hook", fake.hook)
    server = await aiohttp_server(app)
    fake.url = str(server.make_url("")).rstrip("/")
    monkeypatch.setattr(discord.http.Route, "BASE", fake.url + "/api")
    return fake


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(name="smtp")
def smtp_fixture() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def channel_settings(settings: Settings, apis: ChatApis, port: int) -> Settings:
    return settings.with_(telegram_token="123:TEST", telegram_api_url=apis.url + "/bot", discord_token="d-token",
                          smtp=SmtpUrl(host="127.0.0.1", port=port), smtp_from="alerts@example.com",
                          public_url="https://analytics.example.com", webhook_retry_base=0.05)
