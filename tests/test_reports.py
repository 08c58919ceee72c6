"""Scheduled reports: the subscription API (happy path and hostile input), a weekly report sent once at its local
hour by email (a real aiosmtpd server: text part, inline-styled HTML without scripts, the chart inline) and by chat
(python-telegram-bot and discord.py against local stand-ins), not again for the same week however many rounds run,
and "send now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nself_analytics.config import Settings
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.pipeline.report_content import change
from nself_analytics.pipeline.report_jobs import ReportScheduler, report_of, send_at
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS, SETTINGS, WORKER_POOL

from .alerts_support import track_at
from .conftest import pg_execute
from .notify_support import PNG, ChatApis, Inbox, apis_fixture, channel_settings, smtp_fixture  # noqa: F401

SITE = "reports.example"


async def _create(client: Any, auth: Any, status: int = 201, **body: Any) -> dict[str, Any]:
    response = await client.post("/analytics/reports", headers=auth["secret"], json=body)
    data = await response.json()
    assert response.status == status, data
    return dict(data.get("report") or data)


def _weekly(**extra: Any) -> dict[str, Any]:
    return {"name": "Team weekly", "period": "weekly", "timezone": "Europe/Paris", "hour": 9, "site": SITE,
            "goals": ["path:/pricing", "event:signup"], "channels": {
                "emails": ["team@example.com"], "telegram_chat": "-100300", "discord_channel": "777"}, **extra}


def test_send_time_is_the_local_hour_after_the_period() -> None:
    body = report_of({"spec": {"period": "weekly", "timezone": "America/New_York", "hour": 9,
                               "channels": {"emails": ["a@example.com"]}}, "name": "r", "enabled": True})
    now = datetime.now(UTC)
    start, end, when = send_at(body, now)
    zone = ZoneInfo("America/New_York")
    local_start, local_end, local_when = (t.astimezone(zone) for t in (start, end, when))
    assert (local_start.weekday(), local_start.hour, local_end.weekday(), local_end.hour) == (0, 0, 0, 0)
    assert (local_end.date() - local_start.date()).days == 7 and end <= now
    assert (local_when.date(), local_when.hour) == (local_end.date(), 9)
    assert (change(120, 100), change(90, 100), change(5, 0), change(0, 0)) == ("+20%", "-10%", "new", "0%")


async def test_crud_and_hostile_input(make_client: Any, settings: Settings, auth: Any, apis: ChatApis,
                                      smtp: tuple[Inbox, int]) -> None:
    client = await make_client(channel_settings(settings, apis, smtp[1]))
    report = await _create(client, auth, **_weekly())
    assert (report["period"], report["hour"], report["site"], report["last_period_start"]) == \
        ("weekly", 9, SITE, None)
    listed = await (await client.get("/analytics/reports", headers=auth["secret"])).json()
    assert [r["id"] for r in listed["reports"]] == [report["id"]]
    patched = await client.patch(f"/analytics/reports/{report['id']}", headers=auth["secret"],
                                 json={"period": "monthly", "hour": 7})
    assert patched.status == 200 and (await patched.json())["report"]["period"] == "monthly"
    other = {**auth["secret"], "X-Source-Account-Id": "other"}
    assert (await client.get(f"/analytics/reports/{report['id']}", headers=other)).status == 404
    assert (await client.post(f"/analytics/reports/{report['id']}/send", headers=other)).status == 404
    bad = [({"period": "hourly"}, "period"), ({"timezone": "Mars/Base"}, "Unknown time zone"),
           ({"hour": 24}, "hour"), ({"channels": {}}, "channels needs a recipient"),
           ({"channels": {"emails": ["not an address"]}}, "emails"), ({"goals": ["page:/x"]}, "goals"),
           ({"funnel_id": 999}, "Unknown funnel_id"), ({"colour": "red"}, "colour"), ({"name": " "}, "name"),
           ({"site": "Bad Site!"}, "site"), ({"goals": ["path:/x"] * 11}, "goals")]
    for change_, message in bad:
        answer = await _create(client, auth, 400, **{**_weekly(), **change_})
        assert answer["status"] == "error" and message in answer["message"], (change_, answer)
    no_smtp = await make_client(settings)
    answer = await _create(no_smtp, auth, 400, **_weekly())
    assert "needs" in answer["message"]
    garbage = await client.post("/analytics/reports", headers=auth["secret"], data=b"{not json")
    assert garbage.status == 400
    assert (await client.delete(f"/analytics/reports/{report['id']}", headers=auth["secret"])).status == 200
    assert (await client.get(f"/analytics/reports/{report['id']}", headers=auth["secret"])).status == 404
    assert (await client.get("/analytics/reports/1234567890123456789012", headers=auth["secret"])).status == 404


async def test_weekly_report_arrives_by_email_and_chat_once(make_client: Any, settings: Settings, auth: Any,
                                                            apis: ChatApis, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client = await make_client(channel_settings(settings, apis, port))
    sub = client.app[ANALYTICS_APP]
    for path, session in (("/", "a"), ("/pricing", "a"), ("/", "b")):
        response = await client.post("/analytics/hit", json={"site": SITE, "path": path, "session_id": session},
                                     headers={"User-Agent": "Mozilla/5.0 Firefox/120"})
        assert response.status in (200, 202)
    now = datetime.now(UTC)
    await track_at(client, auth, "signup", now - timedelta(seconds=30), 4)
    await track_at(client, auth, "paid", now - timedelta(seconds=10), 1)
    await Drainer(sub[PG_POOL], sub[REDIS], settings, name="t").drain_until_empty()
    funnel = await (await client.post("/analytics/funnels", headers=auth["secret"], json={
        "name": "Signup to paid", "steps": ["signup", "paid"], "window": "1h"})).json()
    report = await _create(client, auth, **_weekly(timezone="UTC", funnel_id=funnel["funnel"]["id"]))
    scheduler = ReportScheduler(sub[WORKER_POOL], sub[SETTINGS])
    body = report_of({"spec": {"period": "weekly", "hour": 9, "channels": {"emails": ["a@example.com"]}},
                      "name": "r", "enabled": True})
    # the week holding now ends next Monday 00:00 UTC; the report goes at 09:00 that day, not before
    _start, week_end, _when = send_at(body, now + timedelta(days=7))
    assert await scheduler.run_once(week_end + timedelta(hours=8, minutes=59)) == 0
    assert inbox.messages == [] and apis.telegram == []
    at = week_end + timedelta(hours=9, minutes=1)
    assert await scheduler.run_once(at) == 1
    assert await scheduler.run_once(at + timedelta(hours=1)) == 0  # the same week: once
    other = ReportScheduler(sub[WORKER_POOL], sub[SETTINGS])  # another instance: the period is claimed
    assert await other.run_once(at + timedelta(hours=2)) == 0
    [mail] = inbox.messages
    assert mail["To"] == "team@example.com" and mail["Subject"] == "Weekly report: Team weekly"
    parts = {part.get_content_type(): part for part in mail.walk()}
    text = parts["text/plain"].get_payload(decode=True).decode()
    assert "Visitors: " in text and "Page views: 3 (new vs 0)" in text
    assert "Top pages" in text and "/pricing" in text and "path:/pricing - 1 conversions" in text
    assert "Top events" in text and "signup - 4" in text and "Conversion - 25.0%" in text
    html = parts["text/html"].get_payload(decode=True).decode()
    assert 'src="cid:chart"' in html and "<script" not in html.lower() and "style=" in html and "<link" not in html
    assert "Top sources" in html and "Funnel: Signup to paid" in html
    assert parts["image/png"].get_payload(decode=True).startswith(PNG)
    # one photo with the report as its caption (a text over Telegram's 1024 characters: a message, then the photo)
    assert [m["method"] for m in apis.telegram][-1] == "sendPhoto" and apis.telegram[-1]["photo"].startswith(PNG)
    telegram_text = apis.telegram[0].get("caption") or apis.telegram[0].get("text") or ""
    assert "Weekly report: Team weekly" in telegram_text and "Top pages" in telegram_text
    [posted] = apis.discord
    assert posted["channel"] == "777" and "Top pages" in posted["payload_json"]["content"]
    assert posted["files[0]"].startswith(PNG)
    rows = pg_execute(settings.database_url or "", "SELECT channel, status FROM np_analytics_notifications "
                                                   "WHERE source = 'report'")
    assert sorted(rows) == [("discord", "sent"), ("email", "sent"), ("telegram", "sent")]
    # send now: queued again whatever was sent, delivered by the next round
    sent = await client.post(f"/analytics/reports/{report['id']}/send", headers=auth["secret"])
    assert sent.status == 202 and (await sent.json())["queued"] == 3
    await scheduler.run_once(at + timedelta(hours=3))
    assert len(inbox.messages) == 2 and len(apis.discord) == 2


@pytest.mark.parametrize("period", ["daily", "monthly"])
async def test_other_periods_follow_their_calendar(period: str) -> None:
    body = report_of({"spec": {"period": period, "timezone": "Asia/Tokyo", "hour": 6,
                               "channels": {"emails": ["a@example.com"]}}, "name": "r", "enabled": True})
    start, end, when = send_at(body, datetime.now(UTC))
    zone = ZoneInfo("Asia/Tokyo")
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    assert (local_start.hour, local_end.hour) == (0, 0)
    if period == "daily":
        assert (local_end.date() - local_start.date()).days == 1
    else:
        assert (local_start.day, local_end.day) == (1, 1) and local_start.month != local_end.month
    assert when - end == timedelta(hours=6)  # Tokyo has no daylight saving time
