"""The alerts tab in real headless Chromium against a live service: an alert's state and check history on its
chart (each point coloured by the state its check left) and its notifications; report subscriptions listed,
created, edited, refused with the API's message, and "Send now" whose report arrives at a real local SMTP server
(aiosmtpd). The checks and the send are run in this process by the leader's own job (AlertChecker) on the live
service's database, at instants relative to now. Both widths pass the layout checks of the other views and are
saved as screenshots (test-output/screenshots/views/alerts-<width>.png, the pictures of docs/screenshots/)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg
import pytest
from aiosmtpd.controller import Controller
from playwright.async_api import Browser, Page

from nself_analytics.config import Settings
from nself_analytics.pipeline.alert_checks import AlertChecker

from . import test_browser_dashboard as dash
from .conftest import SECRET, WRITE_KEY, Stores, free_port, pg_execute, wait_for
from .layout_support import checked_shot
from .notify_support import Inbox

chromium, dash_browser = dash.chromium, dash.dash_browser
SHOTS = dash.SCREENSHOTS / "views"
SIGNUPS_PER_DAY = {5: 0, 4: 2, 3: 0, 2: 1, 1: 3}  # days back -> signups that day; over 1 a day fires


class AlertsLive:
    def __init__(self, live: dash.Live, inbox: Inbox, smtp_port: int) -> None:
        self.live, self.inbox, self.smtp_port = live, inbox, smtp_port

    def call(self, path: str, body: Any) -> Any:
        return self.live.post(path, body, {"Authorization": f"Bearer {SECRET}"})

    def settings(self) -> Settings:
        return Settings.from_env({"DATABASE_URL": self.live.database_url, "ANALYTICS_SECRET_TOKEN": SECRET,
                                  "ANALYTICS_WRITE_KEYS": WRITE_KEY, "ANALYTICS_SMTP_FROM": "reports@example.com",
                                  "ANALYTICS_SMTP_URL": f"smtp://127.0.0.1:{self.smtp_port}"},
                                 persist_secrets=False)


def _midnight() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def alerts_live(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertsLive]:
    """A service with email configured (a real local SMTP server) whose own alert job waits 15 minutes, so the
    test runs the checks at the instants it chooses; signups on the last five days."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with dash.serve(stores, tmp_path_factory, ANALYTICS_SMTP_URL=f"smtp://127.0.0.1:{port}",
                        ANALYTICS_SMTP_FROM="reports@example.com", ANALYTICS_ALERT_CHECK_INTERVAL="900s") as live:
            batch = [{"type": "track", "event": "signup", "userId": f"u{back}-{i}",
                      "timestamp": (_midnight() - timedelta(days=back, hours=-10, minutes=i)).isoformat()}
                     for back, count in SIGNUPS_PER_DAY.items() for i in range(count)]
            live.post("batch", {"batch": batch}, {"Authorization": f"Bearer {WRITE_KEY}"})
            total = sum(SIGNUPS_PER_DAY.values())
            wait_for(lambda: any(n["name"] == "signup" and n["volume"] == total
                                 for n in live.get("event-names")["data"]), timeout=60)
            # the service's aggregator has taken the new hours in (the checks read the trend from its rollups)
            wait_for(lambda: pg_execute(live.database_url, "SELECT count(*) FROM np_analytics_aggregate_dirty")
                     == [(0,)], timeout=60)
            yield AlertsLive(live, inbox, port)
    finally:
        controller.stop()


@pytest.fixture(name="checker")
async def checker_fixture(alerts_live: AlertsLive) -> AsyncIterator[AlertChecker]:
    """The leader's alerts job on the live service's database."""
    async with aiopg.create_pool(alerts_live.live.database_url, minsize=1, maxsize=2) as pool:
        yield AlertChecker(pool, alerts_live.settings())


async def _delivered(alerts_live: AlertsLive, checker: AlertChecker, alert_id: int, count: int,
                     guard: float = 75) -> list[dict[str, Any]]:
    """The alert's notifications once ``count`` are sent, running the sender (as the leader does) while some are due;
    what there is at the hang guard otherwise (a send that timed out on a loaded box waits for its retry)."""
    deadline = time.monotonic() + guard
    while True:
        found = alerts_live.live.get(f"alerts/{alert_id}/checks", limit=200)["notifications"]
        if [n["status"] for n in found].count("sent") >= count or time.monotonic() > deadline:
            return list(found)
        await checker.sender.send_due()
        await asyncio.sleep(0.5)


async def _open(browser: Browser, alerts_live: AlertsLive, width: int, fragment: str = "") -> tuple[Page, Any]:
    page, watch = await dash.open_dashboard(browser, alerts_live.live, width=width, query=f"?tab=alerts{fragment}")
    await dash.login(page)
    return page, watch


@pytest.mark.parametrize("width", [1280, 390])
async def test_alert_history_and_reports(dash_browser: Browser, alerts_live: AlertsLive, checker: AlertChecker,
                                         width: int) -> None:
    alert = alerts_live.call("alerts", {
        "name": f"Signup surge {width}", "series": {"kind": "trend", "event": "signup"}, "interval": "daily",
        "condition": {"upper": 1}, "channels": {"emails": ["ops@example.com"]}})["alert"]
    for back in sorted(SIGNUPS_PER_DAY, reverse=True):  # the daily checks of the last five days, oldest first
        await checker.run_once(_midnight() - timedelta(days=back - 1, minutes=-5))
    report = alerts_live.call("reports", {"name": f"Weekly {width}", "site": dash.SITE, "hour": 9,
                                          "channels": {"emails": ["team@example.com"]}})["report"]
    # both emails delivered before the page opens (it shows what was sent when it opened): the checks' own sends,
    # then the leader's sender again for one that had to wait (a send slowed past its timeout on a loaded box)
    notified = await _delivered(alerts_live, checker, alert["id"], 2)
    assert [(n["channel"], n["target"]) for n in notified] == [("email", "ops@example.com")] * 2, notified
    # a notification's link opens the alert's history: its state, the checked values coloured by state
    page, watch = await _open(dash_browser, alerts_live, width, f"#alerts/{alert['id']}")
    await page.wait_for_selector("#alert-history:not([hidden]) #alert-chart circle[data-series=value]")
    assert (await page.text_content("#alert-history-title") or "").endswith(": firing")
    dots = await page.eval_on_selector_all("#alert-chart circle[data-series=value]",
                                           "cs => cs.map(c => [+c.dataset.value, c.dataset.state])")
    want = [(float(SIGNUPS_PER_DAY[b]), "firing" if SIGNUPS_PER_DAY[b] > 1 else "not_firing")
            for b in sorted(SIGNUPS_PER_DAY, reverse=True)]
    assert [(v, s) for v, s in dots] == want
    assert await page.locator("#alert-chart circle.state-firing").count() == 2
    assert await page.locator("#alert-chart path[data-series=upper]").count() == 1
    assert await page.locator("#alert-chart path[data-series=lower]").count() == 0  # no lower bound, no line
    # fired twice (it resolved between): two emails, listed as the API has them (their delivery is
    # test_alert_channels' and test_mail_tls' to check; on a loaded box a send may wait for its retry)
    sent = await dash.wait_rows(page, "#alert-sent", 2)
    assert [row[1:4] for row in sent] == [["email", "ops@example.com", n["status"]] for n in notified]
    listed = f"#alerts-table tr[data-alert='{alert['id']}']"
    assert await page.get_attribute(listed, "class") == "state-firing"
    cells = await page.eval_on_selector_all(f"{listed} td", "tds => tds.map(td => td.textContent)")
    assert cells[:6] == [f"Signup surge {width}", "trend: signup", "upper 1", "daily UTC", "firing", "3"]
    # the report subscriptions: listed, edited through the form, refused with the API's message
    row = f"#reports-table tr[data-report='{report['id']}']"
    await page.wait_for_selector(row)
    cells = await page.eval_on_selector_all(f"{row} td", "tds => tds.map(td => td.textContent)")
    assert cells[:5] == [f"Weekly {width}", "weekly at 09:00 UTC", dash.SITE, "team@example.com", "not yet"]
    await page.click(f"{row} button:text('Edit')")
    assert await page.input_value("#report-name") == f"Weekly {width}"
    await page.select_option("#report-period", "monthly")
    await page.fill("#report-hour", "7")
    await page.click("#report-save")
    await page.wait_for_function("() => document.getElementById('message').textContent === 'Report saved'")
    await page.wait_for_selector(f"{row} td:text('monthly at 07:00 UTC')")
    stored = alerts_live.live.get(f"reports/{report['id']}")["report"]
    assert (stored["period"], stored["hour"], stored["channels"]["emails"]) == ("monthly", 7, ["team@example.com"])
    assert watch.errors == []
    await page.fill("#report-name", f"Daily {width}")
    await page.fill("#report-emails", "not an address")
    await page.click("#report-save")
    await page.wait_for_function("() => document.getElementById('message').className === 'error'")
    assert "channels.emails" in (await page.text_content("#message") or "")
    refused = f"400 {alerts_live.live.base_url}/analytics/reports"
    assert watch.errors[0] == refused and all("400" in e for e in watch.errors)  # the browser's own log line
    watch.errors.clear()
    await page.click("#report-new")
    await page.fill("#report-name", f"Daily {width}")
    await page.select_option("#report-period", "daily")
    await page.fill("#report-emails", "daily@example.com")
    await page.click("#report-save")
    await page.wait_for_selector(f"#reports-table td:text('Daily {width}')")
    await checked_shot(page, SHOTS, f"alerts-{width}")
    # send now: queued by the API, sent by the leader's sender; the report arrives with its chart
    before = len(alerts_live.inbox.messages)
    await page.click(f"{row} button:text('Send now')")
    await page.wait_for_function("() => document.getElementById('message').textContent.includes('queued: 1 message')")
    deadline = time.monotonic() + 75  # a hang guard: the send may wait for its retry on a loaded box
    mails: list[Any] = []
    while not mails and time.monotonic() < deadline:
        await checker.run_once()
        mails = [m for m in alerts_live.inbox.messages[before:] if m["To"] == "team@example.com"]
        await asyncio.sleep(0.5)
    assert len(mails) == 1 and f"Weekly {width}" in mails[0]["Subject"]
    parts = {part.get_content_type() for part in mails[0].walk()}
    assert {"text/plain", "text/html", "image/png"} <= parts
    assert watch.errors == []
    await page.context.close()
