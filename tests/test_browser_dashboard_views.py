"""Every view of the dashboard in real headless Chromium at 1280 px and 390 px, against a live service holding
known data: each fails on horizontal overflow, a clipped label, text outside its box or an empty panel
(tests/layout_support.py) and is then saved as a screenshot (test-output/screenshots/views/<view>-<width>.png,
the pictures of docs/screenshots/). Beside the layout, what each view promises: top stats with sparklines and
the change against the previous period, integer chart ticks, lists grouped in tabbed cards with the empty ones
hidden, the world map shaded as the countries list, peak hours by weekday and hour, the realtime per-minute chart,
a readable person timeline, locale number formats, the shared view's range picker, and the first run (where
the token is, the beacon snippet, the first hit noticed live)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from playwright.async_api import Browser, Request

from . import test_browser_dashboard as dash
from .conftest import wait_for
from .layout_support import checked_shot
from .test_browser_web import PERSON_UA

# the live service and Chromium of the dashboard's browser tests (a service of this module's own)
chromium, dash_browser, dash_service = dash.chromium, dash.dash_browser, dash.dash_service
SITE, SITE_TOKEN, Live = dash.SITE, dash.SITE_TOKEN, dash.Live
SHOTS = dash.SCREENSHOTS / "views"
WIDTHS = [1280, 390]
LONG_PATH = "/blog/" + "a-rather-long-article-title-about-privacy-friendly-analytics-" * 3 + "end"


@pytest.fixture(scope="module")
def live(dash_service: Live) -> Iterator[Live]:
    """The dashboard's service, with one more page view of a path too long for any column."""
    before = dash_service.get("api/pageviews", site=SITE)["data"]["pageviews"]
    dash_service.post("hit", {"site": SITE, "path": LONG_PATH, "session_id": "s-long", "screen_width": 1280},
                      {"User-Agent": PERSON_UA, "X-Forwarded-For": "8.8.8.8"})
    wait_for(lambda: dash_service.get("api/pageviews", site=SITE)["data"]["pageviews"] == before + 1, timeout=30)
    yield dash_service


async def shown_tabs(page: Any, card: str) -> list[str]:
    return await page.eval_on_selector_all(f"#{card} [data-card-tab]:not([hidden])", "bs => bs.map(b => b.textContent)")


@pytest.mark.parametrize("width", WIDTHS)
async def test_web_view(dash_browser: Browser, live: Live, width: int) -> None:
    page, watch = await dash.open_dashboard(dash_browser, live, width=width)
    await dash.login(page)
    await page.wait_for_selector("#card-pages:not([hidden])")
    await page.wait_for_selector("#card-peak:not([hidden]) .hm-cell")
    await page.wait_for_selector("#world-map path.has-data")
    totals = live.get("api/pageviews", site=SITE)["data"]
    # top stats: figures, the change against the (empty) previous period, sparklines of the daily series
    await page.wait_for_function("n => document.getElementById('kpi-pageviews').textContent === n",
                                 arg=str(totals["pageviews"]))
    assert await page.text_content("#chg-pageviews") == "new"
    spark = await page.get_attribute("#spark-pageviews svg", "data-values")
    assert spark is not None and sum(int(v) for v in spark.split(",")) == totals["pageviews"]
    assert re.fullmatch(r"\d+\.\d", await page.text_content("#kpi-per-session") or "")  # one decimal
    # the main chart: integer ticks, increasing; its last day's label drawn (and inside the chart: the layout check)
    ticks = await page.eval_on_selector_all("#timeseries text.tick", "ts => ts.map(t => t.textContent)")
    assert all(re.fullmatch(r"\d[\d,]*", t) for t in ticks), ticks
    values = [int(t.replace(",", "")) for t in ticks]
    assert values == sorted(values) and values[0] == 0 and values[-1] >= totals["pageviews"] / 30
    days = await page.eval_on_selector_all("#timeseries circle[data-series=pageviews]",
                                           "cs => cs.map(c => c.dataset.label)")
    labels = await page.eval_on_selector_all("#timeseries text.xlabel", "ts => ts.map(t => t.textContent)")
    assert labels[-1] == days[-1]
    # cards: related lists behind tabs, lists without data hidden (one hostname says nothing)
    assert await shown_tabs(page, "card-pages") == ["Top pages", "Entry pages", "Exit pages", "Bounce rate"]
    assert await shown_tabs(page, "card-sources") == ["Referrers", "UTM source", "Medium", "Campaign", "Term",
                                                      "Content"]
    assert await shown_tabs(page, "card-devices") == ["Device", "Browser", "OS", "Screen"]
    assert await shown_tabs(page, "card-locations") == ["Map", "Countries", "Languages"]
    # the map shades the countries of the list, by page views
    countries = live.get("api/countries", site=SITE)["data"]
    shaded = await page.eval_on_selector_all("#world-map path.has-data",
                                             "ps => ps.map(p => [p.dataset.cc, +p.dataset.value])")
    assert sorted(map(tuple, shaded)) == sorted((c["country"], c["pageviews"]) for c in countries)
    assert len(countries) >= 3
    # peak hours: a row per weekday, 24 hours each, adding up to the page views of the range (one read)
    cells = await page.eval_on_selector_all("#peak-hours .hm-cell", "cs => cs.map(c => +c.dataset.value)")
    assert len(cells) == 7 * 24 and sum(cells) == totals["pageviews"]
    week = live.get("api/peak-hours/week", site=SITE)["data"]
    assert cells == [c["pageviews"] for c in week]  # Monday 00:00 first, as the answer orders them
    # a long name is one line, ellipsized, whole in its title; text columns left, figures right
    name = page.locator("#top-pages td.name", has_text="/blog/")
    assert await name.get_attribute("title") == LONG_PATH
    assert await name.evaluate("e => e.scrollWidth > e.clientWidth && getComputedStyle(e).whiteSpace === 'nowrap'")
    aligns = await page.eval_on_selector_all("#top-pages tbody tr:first-child td", "tds => tds.map(td => "
                                             "getComputedStyle(td).textAlign)")
    assert aligns == ["left", "right", "right"]
    await checked_shot(page, SHOTS, f"web-{width}")
    # another tab of a card, shown
    await page.click("[data-card-tab=utm-sources]")
    assert await page.is_visible("#utm-sources") and await page.is_hidden("#referrers")
    await page.click("[data-card-tab=countries]")
    await checked_shot(page, SHOTS, f"web-tabs-{width}")
    assert watch.errors == []
    await page.context.close()


async def test_numbers_follow_the_browser_locale(dash_browser: Browser, live: Live) -> None:
    context = await dash_browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    page = await context.new_page()
    await page.goto(f"{live.base_url}/analytics/dashboard")
    await dash.login(page)
    duration = live.get("api/session-duration", site=SITE)["data"]
    await page.wait_for_function("() => document.getElementById('kpi-bounce').textContent !== '-'")
    want = await page.evaluate("([b, v]) => [new Intl.NumberFormat('de-DE', {style: 'percent', "
                               "minimumFractionDigits: 1, maximumFractionDigits: 1}).format(b), "
                               "new Intl.NumberFormat('de-DE', {minimumFractionDigits: 1, "
                               "maximumFractionDigits: 1}).format(v)]",
                               [duration["bounce_rate"], duration["pageviews_per_session"]])
    assert "," in want[1]  # German writes a decimal comma
    assert [await page.text_content("#kpi-bounce"), await page.text_content("#kpi-per-session")] == want
    await context.close()


@pytest.mark.parametrize("width", WIDTHS)
async def test_realtime_view(dash_browser: Browser, live: Live, width: int) -> None:
    page, watch = await dash.open_dashboard(dash_browser, live, width=width, query=f"?tab=realtime&site={SITE}")
    await dash.login(page)
    await page.wait_for_selector("#rt-latest tbody tr:not(:has(td.empty))")
    # every page view of this module's service is a few minutes old: all in the last 30 minutes
    total = live.get("api/pageviews", site=SITE)["data"]["pageviews"]
    await page.wait_for_function("n => [...document.querySelectorAll('#rt-chart rect.column')]"
                                 ".reduce((s, r) => s + +r.dataset.value, 0) === n", arg=total)
    assert await page.locator("#rt-chart rect.column").count() == 30
    await checked_shot(page, SHOTS, f"realtime-{width}")
    assert watch.errors == []
    await page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
async def test_product_view(dash_browser: Browser, live: Live, width: int) -> None:
    page, watch = await dash.open_dashboard(dash_browser, live, width=width, query="?tab=product")
    await dash.login(page)
    await page.wait_for_selector("#trends-chart svg circle")
    # no empty funnel or retention table before one is asked for: their forms only
    assert await page.is_hidden("#funnel-result") and await page.is_hidden("#retention-result")
    await checked_shot(page, SHOTS, f"product-{width}")
    assert watch.errors == []
    await page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
async def test_people_views(dash_browser: Browser, live: Live, width: int) -> None:
    page, watch = await dash.open_dashboard(dash_browser, live, width=width, query="?tab=people")
    await dash.login(page)
    users = live.get("users")["data"]
    await dash.wait_rows(page, "#people-table", len(users))
    await checked_shot(page, SHOTS, f"people-{width}")
    await page.click("#people-table a[data-user=alice]")
    await page.wait_for_selector("#person:not([hidden]) #person-events tbody tr:not(:has(td.empty))")
    shown = await page.inner_text("#person")
    # a readable profile: no raw JSON, no ISO times with microseconds or a T
    assert "{" not in shown and '":' not in shown, shown
    assert not re.search(r"\d\d:\d\d:\d\d\.\d+|\d{4}-\d\d-\d\dT", shown), shown
    alice = live.get("users/alice")
    purchase = next(e for e in alice["events"] if e["event"] == "purchase")
    props = await page.eval_on_selector_all("#person-events dl.props", "ds => ds.map(d => d.innerText)")
    assert any("amount" in p and "10" in p for p in props) and purchase["properties"]["amount"] == 10
    await checked_shot(page, SHOTS, f"person-{width}")
    assert watch.errors == []
    await page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
async def test_shared_view_has_a_range_picker(dash_browser: Browser, live: Live, width: int) -> None:
    page, watch = await dash.open_dashboard(dash_browser, live, width=width,
                                            query=f"?site={SITE}#share={SITE_TOKEN}")

    def span(request: Request) -> int:
        """The days the read asks for (the dashboard's window: days of the browser's zone, given with tz)."""
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
        assert q["tz"]
        return (date.fromisoformat(q["end_date"][0]) - date.fromisoformat(q["start_date"][0])).days + 1

    pages = live.get("api/pages", token=SITE_TOKEN, site=SITE)["data"]
    await dash.wait_rows(page, "#top-pages", len(pages))
    await page.wait_for_selector("#card-peak:not([hidden])")
    assert await page.is_visible("#shared-range") and await page.input_value("#shared-range") == "30"
    async with page.expect_request(lambda r: "/api/pages?" in r.url) as info:
        await page.select_option("#shared-range", "7")
    assert span(await info.value) == 7 and "range=7" in page.url
    await dash.wait_rows(page, "#top-pages", len(pages))
    await page.wait_for_selector("#card-peak:not([hidden])")
    assert await page.evaluate("() => localStorage.getItem('np_analytics_token')") is None
    await checked_shot(page, SHOTS, f"shared-{width}")
    assert watch.errors == []
    await page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
async def test_first_run(dash_browser: Browser, live: Live, width: int) -> None:
    site = f"new-{width}.example"
    page, watch = await dash.open_dashboard(dash_browser, live, width=width)
    # no token yet: where it is
    assert await page.is_visible("#welcome")
    assert "secrets.env" in (await page.inner_text("#welcome")) and "install" in await page.inner_text("#welcome")
    await checked_shot(page, SHOTS, f"welcome-{width}")
    await page.fill("#site", site)
    await page.fill("#token", dash.SECRET)
    await page.click("#login button[type=submit]")
    await page.wait_for_selector("#setup:not([hidden])")
    assert await page.is_hidden("#welcome") and await page.is_hidden(".kpis")
    beacon = await page.text_content("#snippet-beacon")
    assert beacon == f'<script async src="{live.base_url}/analytics/a.js" data-site="{site}"></script>'
    assert 'data-write-key="YOUR_WRITE_KEY"' in (await page.text_content("#snippet-sdk") or "")
    assert f"{live.base_url}/analytics/sdk/analytics.js" in (await page.text_content("#snippet-sdk") or "")
    await checked_shot(page, SHOTS, f"first-run-{width}")
    # the first hit is noticed live: the setup card gives way to the figures
    live.post("hit", {"site": site, "path": "/hello", "session_id": "first"}, {"User-Agent": PERSON_UA})
    await page.wait_for_selector("#setup[hidden]", state="attached", timeout=30_000)
    await page.wait_for_function("() => document.getElementById('kpi-pageviews').textContent === '1'")
    await page.wait_for_function("() => document.getElementById('message').textContent.startsWith("
                                 "'First page view received: /hello')")
    await page.wait_for_selector("#card-pages:not([hidden])")
    await checked_shot(page, SHOTS, f"first-hit-{width}")
    assert watch.errors == []
    await page.context.close()
