"""Web enrichment: the offline country database, bot and device classification of user agents."""

from __future__ import annotations

import pytest

from nself_analytics.ingest.enrich import browser_hit_is_bot, classify_user_agent, country_for_ip
from nself_analytics.ingest.geo import lookup_country

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
        "Mobile/15E148 Safari/604.1")
CUBOT = ("Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
         "Mobile Safari/537.36")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
HEADLESS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/150.0.0.0 "
            "Safari/537.36")


@pytest.mark.parametrize(("ip", "country"), [
    ("8.8.8.8", "US"), ("1.0.16.1", "JP"), ("2001:4860:4860::8888", "US"), (" 81.2.69.142 ", "GB"),
    ("10.1.2.3", None), ("127.0.0.1", None), ("192.168.0.9", None), ("::1", None), ("203.0.113.7", None),
    ("not-an-ip", None), ("", None),
])
def test_country_from_bundled_database(ip: str, country: str | None) -> None:
    assert lookup_country(ip) == country
    assert country_for_ip(ip or None) == country


@pytest.mark.parametrize(("ua", "expected"), [
    (CHROME, ("desktop", "Chrome", "Windows", False)),
    (IPHONE, ("mobile", "Safari", "iOS", False)),
    (IPAD, ("tablet", "Safari", "iOS", False)),
    (CUBOT, ("mobile", "Chrome", "Android", False)),  # a phone brand, not a bot
    (FIREFOX_LINUX, ("desktop", "Firefox", "Linux", False)),
    (CHROME + " Edg/131.0.0.0", ("desktop", "Edge", "Windows", False)),
    (HEADLESS, ("desktop", "Chrome", "Linux", True)),
    (None, (None, None, None, False)),  # server SDKs send no user agent: not a bot
])
def test_classify_user_agent(ua: str | None, expected: tuple[object, ...]) -> None:
    assert classify_user_agent(ua) == expected


@pytest.mark.parametrize("ua", [
    HEADLESS,
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0) Chrome/116.0 Safari/537.36",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    CHROME + " Chrome-Lighthouse",
    "Mediapartners-Google", "facebookexternalhit/1.1", "curl/8.5.0", "Python/3.11 aiohttp/3.14",
])
def test_known_bots(ua: str) -> None:
    assert classify_user_agent(ua)[3] is True
    assert browser_hit_is_bot(ua) is True


@pytest.mark.parametrize(("ua", "is_bot"), [
    (None, True), ("", True), ("   ", True), ("SomeApp/1.0", True),  # no browser sends these
    (CHROME, False), (IPHONE, False), (CUBOT, False), ("Opera/9.80 (Windows NT 6.1) Presto/2.12", False),
])
def test_beacon_hits_need_a_browser_user_agent(ua: str | None, is_bot: bool) -> None:
    assert browser_hit_is_bot(ua) is is_bot
