"""Alerts: the /alerts API (happy and hostile), the intervals in a time zone, and the checks of the leader's job on
real data: every series kind, relative conditions, firing once, resolving, snooze, weekends, errored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nself_analytics.api.alerts import MAX_ALERTS_PER_ACCOUNT
from nself_analytics.config import ConfigError, Settings
from nself_analytics.pipeline.alert_series import period

from .alerts_support import checks, create_alert, hours_back, run_at, signup_alert, track_at
from .conftest import pg_execute

# --- intervals --------------------------------------------------------------------------------------


def test_periods_are_the_last_complete_interval_in_the_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2030, 3, 31, 10, 7, tzinfo=UTC)  # Paris switched to summer time that night: a 23-hour day
    assert period("15m", paris, now) == (datetime(2030, 3, 31, 9, 45, tzinfo=UTC), datetime(2030, 3, 31, 10, 0,
                                                                                              tzinfo=UTC))
    assert period("hourly", paris, now) == (datetime(2030, 3, 31, 9, tzinfo=UTC), datetime(2030, 3, 31, 10,
                                                                                          tzinfo=UTC))
    start, end = period("daily", paris, now + timedelta(days=1))
    assert (start, end) == (datetime(2030, 3, 30, 23, tzinfo=UTC), datetime(2030, 3, 31, 22, tzinfo=UTC))
    assert end - start == timedelta(hours=23)
    week = period("weekly", paris, now)  # 2030-03-31 is a Sunday: the last complete week ended on the 25th
    assert week[0].astimezone(paris).weekday() == 0 and week[1] - week[0] >= timedelta(days=6, hours=23)
    assert period("monthly", ZoneInfo("UTC"), now) == (datetime(2030, 2, 1, tzinfo=UTC),
                                                       datetime(2030, 3, 1, tzinfo=UTC))
    kolkata = period("hourly", ZoneInfo("Asia/Kolkata"), now)  # +05:30: hours end at :30 UTC
    assert kolkata[1] == datetime(2030, 3, 31, 9, 30, tzinfo=UTC)


def test_smtp_url_is_checked_at_configuration_time() -> None:
    base = {"ANALYTICS_SECRET_TOKEN": "sk_" + "x" * 30, "ANALYTICS_WRITE_KEYS": "wk_x"}
    ok = Settings.from_env({**base, "ANALYTICS_SMTP_URL": "smtps://me%40x.io:p%3Ass@mail.x.io"}, persist_secrets=False)
    assert ok.smtp is not None and ok.smtp.port == 465 and ok.smtp.tls and ok.smtp.password == "p:ss"
    assert "p:ss" not in repr(ok.smtp)
    assert Settings.from_env({**base, "ANALYTICS_SMTP_URL": "smtp://h?starttls=1"}, persist_secrets=False).smtp.port \
        == 587
    for bad in ("http://u:hunter2@h", "smtp://", "smtp://h:99999", "smtp://h/path", "smtp://h?tls=1",
                "smtps://h?starttls=1", "smtp://h?starttls=maybe", "smtp://:hunter2@h"):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({**base, "ANALYTICS_SMTP_URL": bad}, persist_secrets=False)
        assert info.value.variable == "ANALYTICS_SMTP_URL" and "hunter2" not in str(info.value)
    with pytest.raises(ConfigError):
        Settings.from_env({**base, "ANALYTICS_SMTP_FROM": "not an address"}, persist_secrets=False)


# --- the API ----------------------------------------------------------------------------------------

async def test_crud_per_account(client: Any, auth: Any) -> None:
    created = await create_alert(client, auth, **signup_alert(timezone="Europe/Paris", skip_weekends=True))
    assert created["state"] == "not_firing" and created["interval"] == "hourly" and created["enabled"] is True
    assert created["series"] == {"kind": "trend", "event": "signup"} and created["condition"]["upper"] == 2
    one = await (await client.get(f"/analytics/alerts/{created['id']}", headers=auth["secret"])).json()
    assert one["alert"]["timezone"] == "Europe/Paris" and one["alert"]["skip_weekends"] is True
    patched = await (await client.patch(f"/analytics/alerts/{created['id']}", headers=auth["secret"],
                                        json={"condition": {"lower": 1, "upper": 5}, "enabled": False})).json()
    assert patched["alert"]["condition"] == {"lower": 1.0, "upper": 5.0} and patched["alert"]["enabled"] is False
    assert patched["alert"]["name"] == "Signups surge"
    other = {**auth["secret"], "X-Source-Account-Id": "other"}
    assert (await (await client.get("/analytics/alerts", headers=other)).json())["alerts"] == []
    for method in ("get", "patch", "delete"):
        response = await getattr(client, method)(f"/analytics/alerts/{created['id']}", headers=other, json={})
        assert response.status == 404
    listed = await (await client.get("/analytics/alerts", headers=auth["secret"])).json()
    assert [a["id"] for a in listed["alerts"]] == [created["id"]]
    assert (await client.delete(f"/analytics/alerts/{created['id']}", headers=auth["secret"])).status == 200
    assert (await client.get(f"/analytics/alerts/{created['id']}", headers=auth["secret"])).status == 404


@pytest.mark.parametrize(("change", "message"), [
    ({"condition": {"lower": 5, "upper": 1}}, "lower must not be greater"),
    ({"condition": {}}, "lower or an upper bound"),
    ({"condition": {"upper": "ten"}}, "Expected `float"),
    ({"condition": {"upper": 1e300}}, "<= 1000000000000000.0"),
    ({"condition": {"upper": 1, "mode": "percentage"}}, "percentage applies"),
    ({"condition": {"upper": 1, "threshold": 5}}, "threshold is for traffic"),
    ({"condition": {"upper": 1, "kind": "x"}}, "unknown field"),
    ({"series": {"kind": "trend"}}, "series.event is required"),
    ({"series": {"kind": "stock_price", "event": "x"}}, "Invalid enum value"),
    ({"series": {"kind": "trend", "event": "x", "measure": "median"}}, "series.measure"),
    ({"series": {"kind": "trend", "event": "x", "breakdown_value": "a"}}, "needs series.breakdown"),
    ({"series": {"kind": "web", "site": "a.com", "stat": "goal_conversions", "goal": "page:/x"}}, "series.goal"),
    ({"series": {"kind": "web", "site": "A B", "stat": "visitors"}}, "series.site"),
    ({"series": {"kind": "funnel", "funnel_id": 99}}, "no saved funnel 99"),
    ({"series": {"kind": "metric", "metric": "sessions", "start_event": "a", "stop_event": "a"}}, "must differ"),
    ({"series": {"kind": "traffic_spike", "site": "a.com"}, "condition": {"threshold": 5}}, "interval must be 15m"),
    ({"series": {"kind": "traffic_drop", "site": "a.com"}, "interval": "15m", "condition": {"upper": 1}},
     "takes condition.threshold"),
    ({"name": "x" * 201}, "length <= 200"),
    ({"name": "   "}, "name must not be blank"),
    ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
    ({"timezone": "../../etc/passwd"}, "Unknown time zone"),
    ({"timezone": "x" * 65}, "length <= 64"),
    ({"interval": "yearly"}, "Invalid enum value"),
    ({"snooze_until": "tomorrow"}, "Invalid RFC3339"),
    ({"snooze_until": "2030-01-01T09:00:00"}, "must carry its offset"),
    ({"channels": {"emails": ["a@b.co\r\nBcc: x@y.z"]}}, "channels.emails"),
    ({"channels": {"emails": ["a@b.co"] * 11}}, "length <= 10"),
    ({"channels": {"telegram_chat": "12; DROP"}}, "telegram_chat"),
    ({"channels": {"telegram_chat": "12345"}}, "needs TELEGRAM_BOT_TOKEN"),
    ({"channels": {"discord_channel": "555"}}, "needs DISCORD_BOT_TOKEN"),
    ({"channels": {"emails": ["ops@example.com"]}}, "needs ANALYTICS_SMTP_URL"),
    ({"channels": {"slack": "x"}}, "unknown field"),
    ({"extra": 1}, "unknown field"),
])
async def test_bad_alerts_are_400(client: Any, auth: Any, change: dict[str, Any], message: str) -> None:
    response = await client.post("/analytics/alerts", headers=auth["secret"], json={**signup_alert(), **change})
    body = await response.json()
    assert response.status == 400 and body["status"] == "error" and message in body["message"], body
    created = await create_alert(client, auth, **signup_alert())
    patched = await client.patch(f"/analytics/alerts/{created['id']}", headers=auth["secret"], json=change)
    assert patched.status == 400 and message in (await patched.json())["message"]


async def test_bad_requests_and_the_cap(client: Any, auth: Any) -> None:
    for raw in (b"[]", b"{", b'"x"'):
        response = await client.post("/analytics/alerts", headers=auth["secret"], data=raw)
        assert response.status == 400
    assert (await client.get("/analytics/alerts", headers=auth["write"])).status == 401
    assert (await client.get("/analytics/alerts/" + "9" * 30, headers=auth["secret"])).status == 404
    assert (await client.get("/analytics/alerts/1/checks?limit=0", headers=auth["secret"])).status in (400, 404)
    for _ in range(MAX_ALERTS_PER_ACCOUNT):
        await create_alert(client, auth, **signup_alert())
    response = await client.post("/analytics/alerts", headers=auth["secret"], json=signup_alert())
    assert response.status == 409 and "at most 100 alerts" in (await response.json())["message"]


# --- checks -----------------------------------------------------------------------------------------

async def test_fires_once_does_not_repeat_and_resolves(client: Any, auth: Any, drain: Any) -> None:
    first, second = hours_back(4), hours_back(3)
    await track_at(client, auth, "signup", first + timedelta(minutes=5), 3)
    await track_at(client, auth, "signup", second + timedelta(minutes=5), 4)
    await drain()
    alert = await create_alert(client, auth, **signup_alert(channels={"webhook": True}, notify_on_resolve=True))
    await client.post("/analytics/webhooks", headers=auth["secret"], json={
        "url": "http://127.0.0.1:9/x", "events": ["alert.fired", "alert.resolved"]})
    assert await run_at(client, first + timedelta(hours=1, minutes=1)) == 1
    assert await run_at(client, first + timedelta(hours=1, minutes=2)) == 0  # the same interval: not checked again
    assert await run_at(client, second + timedelta(hours=1, minutes=1)) == 1  # still firing: no second message
    assert await run_at(client, second + timedelta(hours=2, minutes=1)) == 1  # 0 signups: resolved
    history = (await checks(client, auth, alert["id"]))["checks"]
    assert [(c["state"], c["value"], c["notified"]) for c in history] == [
        ("not_firing", 0.0, "alert.resolved"), ("firing", 4.0, None), ("firing", 3.0, "alert.fired")]
    rows = pg_execute(_db(client), "SELECT event, payload FROM np_analytics_webhook_deliveries ORDER BY created_at")
    assert [r[0] for r in rows] == ["alert.fired", "alert.resolved"]
    fired = rows[0][1]
    assert fired["value"] == 3.0 and fired["upper"] == 2.0 and fired["series"] == {"kind": "trend", "event": "signup"}
    assert fired["dashboard_url"].endswith(f"/analytics/dashboard#alerts/{alert['id']}")
    assert fired["period_start"] == first.isoformat()
    one = await (await client.get(f"/analytics/alerts/{alert['id']}", headers=auth["secret"])).json()
    assert one["alert"]["state"] == "not_firing" and one["alert"]["last_value"] == 0.0


def _db(client: Any) -> str:
    from nself_analytics.web.appkeys import ANALYTICS_APP, SETTINGS

    url = client.app[ANALYTICS_APP][SETTINGS].database_url
    assert url is not None
    return str(url)


async def test_every_series_kind_and_relative_conditions(client: Any, auth: Any, drain: Any) -> None:
    start = hours_back(3)
    at = start + timedelta(minutes=10)
    await track_at(client, auth, "signup", start - timedelta(minutes=50), 2)  # the hour before: 2
    await track_at(client, auth, "signup", at, 5, properties={"plan": "pro"})
    await track_at(client, auth, "paid", at + timedelta(minutes=5), 2)
    await drain()
    funnel = await (await client.post("/analytics/funnels", headers=auth["secret"], json={
        "name": "f", "steps": ["signup", "paid"], "window": "1h"})).json()
    kinds = {
        "trend": {"kind": "trend", "event": "signup"},
        "users": {"kind": "trend", "event": "signup", "measure": "users", "breakdown": "plan",
                  "breakdown_value": "pro"},
        "metric": {"kind": "metric", "metric": "event_count", "event": "paid"},
        "funnel": {"kind": "funnel", "funnel_id": funnel["funnel"]["id"]},
    }
    expected = {"trend": 5.0, "users": 5.0, "metric": 2.0, "funnel": 0.4}
    ids = {}
    for name, series in kinds.items():
        ids[name] = (await create_alert(client, auth, name=name, series=series, interval="hourly",
                                        condition={"upper": 1000}))["id"]
    increase = await create_alert(client, auth, name="up", series=kinds["trend"], interval="hourly",
                                  condition={"type": "relative_increase", "mode": "percentage", "upper": 100})
    decrease = await create_alert(client, auth, name="down", series=kinds["trend"], interval="hourly",
                                  condition={"type": "relative_decrease", "upper": 0})
    await run_at(client, start + timedelta(hours=1, minutes=1))
    for name, alert_id in ids.items():
        [check] = (await checks(client, auth, alert_id))["checks"]
        assert (check["state"], check["value"]) == ("not_firing", expected[name]), name
    [up] = (await checks(client, auth, increase["id"]))["checks"]
    assert (up["state"], up["current"], up["previous"], up["value"]) == ("firing", 5.0, 2.0, 150.0)
    [down] = (await checks(client, auth, decrease["id"]))["checks"]
    assert (down["state"], down["value"]) == ("not_firing", -3.0)


async def test_web_stats_and_traffic_rules(client: Any, auth: Any, drain: Any) -> None:
    now = datetime.now(UTC)
    hits = [{"site": "alerts.example", "path": p, "session_id": s} for p, s in (("/", "a"), ("/x", "a"), ("/", "b"))]
    for hit in hits:
        response = await client.post("/analytics/hit", json=hit, headers={"User-Agent": "Mozilla/5.0 Firefox/120"})
        assert response.status in (200, 202)
    await drain()
    web = {"kind": "web", "site": "alerts.example"}
    pageviews = await create_alert(client, auth, name="pv", series={**web, "stat": "pageviews"}, interval="15m",
                                   condition={"upper": 2})
    goal = await create_alert(client, auth, name="goal", interval="15m", condition={"upper": 0},
                              series={**web, "stat": "goal_conversions", "goal": "path:/x"})
    spike = await create_alert(client, auth, name="spike", series={"kind": "traffic_spike", "site": "alerts.example"},
                               interval="15m", condition={"threshold": 1})
    drop = await create_alert(client, auth, name="drop", series={"kind": "traffic_drop", "site": "alerts.example"},
                              interval="15m", condition={"threshold": 1})
    # a round inside the 15 minutes of the hits: the spike rule sees the current visitor (>= 1) and fires
    await run_at(client, now + timedelta(seconds=1))
    [spiked] = (await checks(client, auth, spike["id"]))["checks"]
    assert (spiked["state"], spiked["current"], spiked["notified"]) == ("firing", 1.0, "alert.fired")
    at = now + timedelta(minutes=15)  # the 15 minutes holding the hits are complete
    await run_at(client, at)
    states = {}
    for alert in (pageviews, goal, spike, drop):
        check = (await checks(client, auth, alert["id"]))["checks"][0]
        states[alert["name"]] = (check["state"], check["current"], check["notified"])
    assert states["pv"] == ("firing", 3.0, "alert.fired") and states["goal"] == ("firing", 1.0, "alert.fired")
    assert states["drop"] == ("not_firing", 1.0, None)  # one visitor (one IP and browser), not under 1
    assert states["spike"] == ("not_firing", 0.0, None)  # the last 5 minutes before `at` hold none of the hits
    # at most one message per 12 hours: notified an hour ago, over the threshold again -> firing, no message
    pg_execute(_db(client), "DELETE FROM np_analytics_alert_checks WHERE alert_id = %s", (spike["id"],))
    pg_execute(_db(client), "UPDATE np_analytics_alerts SET last_period_start = NULL, firing = false, "
                            "last_notified_at = now() - interval '1 hour' WHERE id = %s", (spike["id"],))
    assert await run_at(client, now + timedelta(seconds=2)) >= 1
    [again] = (await checks(client, auth, spike["id"]))["checks"]
    assert (again["state"], again["current"], again["notified"]) == ("firing", 1.0, None)


async def test_snooze_weekends_and_errors(client: Any, auth: Any) -> None:
    funnel = await (await client.post("/analytics/funnels", headers=auth["secret"], json={
        "name": "f", "steps": ["a", "b"]})).json()
    broken = await create_alert(client, auth, name="f", series={"kind": "funnel", "funnel_id": funnel["funnel"]["id"]},
                                interval="daily", condition={"lower": 0.5})
    await client.delete(f"/analytics/funnels/{funnel['funnel']['id']}", headers=auth["secret"])
    snoozed = await create_alert(client, auth, **signup_alert(
        snooze_until=(datetime.now(UTC) + timedelta(days=1)).isoformat()))
    saturday = datetime.now(UTC) - timedelta(days=(datetime.now(UTC).weekday() - 5) % 7 + 7)
    weekend = await create_alert(client, auth, **signup_alert(skip_weekends=True, condition={"lower": 1}))
    await run_at(client, saturday.replace(hour=12, minute=5))
    await run_at(client, datetime.now(UTC))
    errors = (await checks(client, auth, broken["id"]))["checks"]
    assert errors and all(c["state"] == "errored" and "does not exist" in c["error"] for c in errors)
    assert (await checks(client, auth, snoozed["id"]))["checks"] == []
    one = await (await client.get(f"/analytics/alerts/{snoozed['id']}", headers=auth["secret"])).json()
    assert one["alert"]["state"] == "snoozed"
    weekday = [c for c in (await checks(client, auth, weekend["id"]))["checks"]]
    assert all(datetime.fromisoformat(c["period_start"]).weekday() < 5 for c in weekday)
    assert len(weekday) == (0 if hours_back(1).weekday() >= 5 else 1)
