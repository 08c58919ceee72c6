"""An alert fires once through each channel, does not repeat while firing, and resolves: the signed webhook (the
outbox and its sender, to a real local receiver), Telegram and Discord through their libraries (python-telegram-bot's
Bot and discord.py's REST client against local servers standing in for their APIs, as tests/test_bots.py), and email
through a real local SMTP server (aiosmtpd). Then three instances on one database: one notification."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiopg
import redis.asyncio as aioredis

from nself_analytics.config import Settings
from nself_analytics.model.mail_url import SmtpUrl
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.pipeline.runtime import Worker
from nself_analytics.pipeline.webhook_sender import WebhookSender
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS, WORKER_POOL

from .alerts_support import create_alert, hours_back, run_at, signup_alert, track_at
from .conftest import free_port, pg_execute
from .notify_support import PNG, ChatApis, Inbox, apis_fixture, channel_settings, smtp_fixture  # noqa: F401


async def test_fires_once_through_every_channel_and_resolves(make_client: Any, settings: Settings, auth: Any,
                                                             apis: ChatApis, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client = await make_client(channel_settings(settings, apis, port))
    sub = client.app[ANALYTICS_APP]
    first, second = hours_back(4), hours_back(3)
    await track_at(client, auth, "signup", first + timedelta(minutes=5), 3)
    await track_at(client, auth, "signup", second + timedelta(minutes=5), 5)
    await Drainer(sub[PG_POOL], sub[REDIS], settings, name="t").drain_until_empty()
    hook = await client.post("/analytics/webhooks", headers=auth["secret"], json={
        "url": apis.url + "/hook", "events": ["alert.fired", "alert.resolved"]})
    assert hook.status == 201
    alert = await create_alert(client, auth, **signup_alert(notify_on_resolve=True, channels={
        "webhook": True, "telegram_chat": "-100200", "discord_channel": "555", "emails": ["ops@example.com"]}))
    sender = WebhookSender(sub[WORKER_POOL], channel_settings(settings, apis, port))
    for hour in (first, second, second + timedelta(hours=1)):  # fires, stays firing, resolves
        await run_at(client, hour + timedelta(hours=1, minutes=1))
        await sender.send_due()
    await sender.close()
    assert [h["body"]["type"] for h in apis.hooks] == ["alert.fired", "alert.resolved"]
    fired = apis.hooks[0]["body"]["data"]
    assert fired["value"] == 3.0 and fired["upper"] == 2.0 and fired["alert_id"] == alert["id"]
    assert fired["dashboard_url"] == f"https://analytics.example.com/analytics/dashboard#alerts/{alert['id']}"
    assert apis.hooks[0]["headers"]["X-Nself-Signature"].startswith("sha256=")
    assert [(m["method"], m["chat_id"]) for m in apis.telegram] == [("sendPhoto", "-100200")] * 2
    assert "Alert firing: Signups surge" in apis.telegram[0]["caption"] and "Value: 3" in apis.telegram[0]["caption"]
    assert apis.telegram[0]["photo"].startswith(PNG) and "Alert resolved" in apis.telegram[1]["caption"]
    assert [d["channel"] for d in apis.discord] == ["555", "555"]
    assert "Alert firing" in apis.discord[0]["payload_json"]["content"]
    assert apis.discord[0]["files[0]"].startswith(PNG)
    assert len(inbox.messages) == 2
    mail = inbox.messages[0]
    assert mail["To"] == "ops@example.com" and mail["From"] == "alerts@example.com"
    assert mail["Subject"] == "Alert firing: Signups surge"
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert "Upper bound: 2" in parts["text/plain"].get_payload(decode=True).decode()
    html = parts["text/html"].get_payload(decode=True).decode()
    assert 'src="cid:chart"' in html and "<script" not in html and "style=" in html
    assert parts["image/png"].get_payload(decode=True).startswith(PNG)
    rows = pg_execute(settings.database_url or "", "SELECT channel, status FROM np_analytics_notifications")
    assert sorted(rows) == [("discord", "sent")] * 2 + [("email", "sent")] * 2 + [("telegram", "sent")] * 2


async def test_a_channel_that_fails_is_retried_then_given_up(make_client: Any, settings: Settings, auth: Any,
                                                            apis: ChatApis) -> None:
    unreachable = SmtpUrl(host="127.0.0.1", port=free_port())
    client = await make_client(channel_settings(settings, apis, 0).with_(smtp=unreachable))
    await create_alert(client, auth, **signup_alert(condition={"lower": 1}, channels={"emails": ["a@example.com"]}))
    await run_at(client, hours_back(0))
    [(status, attempts, error)] = pg_execute(settings.database_url or "", "SELECT status, attempts, last_error "
                                                                          "FROM np_analytics_notifications")
    assert (status, attempts) == ("pending", 1) and "Connect" in error  # retried later with backoff


async def test_three_instances_notify_once(settings: Settings, make_client: Any, auth: Any, apis: ChatApis) -> None:
    fast = settings.with_(alert_check_interval=0.1, webhook_retry_base=0.05)
    client = await make_client(fast)
    await client.post("/analytics/webhooks", headers=auth["secret"], json={
        "url": apis.url + "/hook", "events": ["alert.fired"]})
    # the previous hour had no signups: under the lower bound of 1, it fires
    alert = await create_alert(client, auth, **signup_alert(condition={"lower": 1}, channels={"webhook": True}))
    pools = [await aiopg.create_pool(settings.database_url, minsize=1, maxsize=4) for _ in range(3)]
    clients = [aioredis.from_url(settings.redis_url or "") for _ in range(3)]
    workers = [Worker(pool, r, fast) for pool, r in zip(pools, clients, strict=True)]
    try:
        for worker in workers:
            worker.start()
        for _ in range(200):
            if apis.hooks:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # bounded: nothing more may arrive (a negative check)
        assert [sum(w.leadership.held for w in workers)] == [1]
        # the DB guard: every instance checking the same interval at once records it once
        again = await create_alert(client, auth, **signup_alert(name="again", condition={"lower": 1}, enabled=False))
        row = {**alert, "id": again["id"], "account": "primary", "spec": {k: v for k, v in again.items()
               if k in ("series", "condition", "interval", "timezone", "channels", "skip_weekends",
                        "notify_on_resolve", "snooze_until")}, "firing": False, "last_period_start": None}
        now = hours_back(0) + timedelta(minutes=1)
        results = await asyncio.gather(*(w.alerts.check(row, now) for w in workers))
        assert sorted(results) == [0, 0, 1]
    finally:
        for worker in workers:
            await worker.stop()
        for pool, r in zip(pools, clients, strict=True):
            pool.close()
            await pool.wait_closed()
            await r.aclose()
    assert len(apis.hooks) == 1 and apis.hooks[0]["body"]["data"]["alert_id"] == alert["id"]
    rows = pg_execute(settings.database_url or "", "SELECT count(*) FROM np_analytics_alert_checks "
                                                   "WHERE alert_id = %s", (alert["id"],))
    assert rows == [(1,)]
