"""User-agent enrichment against a corpus of real user agents (tests/data/user_agents.json: browsers on desktops,
phones and tablets as they send them, labelled by kind, and bots as the crawler-user-agents project recorded them).

The expectations do not come from our code: the device kind is the corpus's label; browser and OS are ua-parser's
own parse of the string, named through the table below (written here, not imported); the bot flag must agree with
the label and, for the browsers, with the maintained crawler-user-agents list."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import crawleruseragents
import pytest
import ua_parser

from nself_analytics.ingest.enrich import classify_user_agent

CORPUS = json.loads((Path(__file__).parent / "data" / "user_agents.json").read_text())

# ua-parser's families -> the names the dashboard shows (a family not listed keeps its name)
BROWSER_NAMES = {
    "Chrome": "Chrome", "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome",
    "HeadlessChrome": "Chrome", "Chromium": "Chrome", "Safari": "Safari", "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari", "Firefox": "Firefox", "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox", "Edge": "Edge", "Edge Mobile": "Edge", "Opera": "Opera", "Opera Mobile": "Opera",
    "Opera Mini": "Opera", "Opera Touch": "Opera", "Samsung Internet": "Samsung Internet",
    "IE": "Internet Explorer", "IE Mobile": "Internet Explorer",
}
OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Windows": "Windows", "Windows 7": "Windows",
            "Windows 10": "Windows", "Ubuntu": "Linux", "Fedora": "Linux", "Linux": "Linux"}


def _family(part: object) -> str | None:
    return getattr(part, "family", None)


def test_the_corpus_is_large_and_varied() -> None:
    kinds = Counter(entry["kind"] for entry in CORPUS)
    assert len(CORPUS) >= 200 and len({entry["ua"] for entry in CORPUS}) == len(CORPUS)
    assert min(kinds[kind] for kind in ("desktop", "mobile", "tablet", "bot")) >= 20, kinds


@pytest.mark.parametrize("entry", CORPUS, ids=lambda entry: f"{entry['kind']}:{entry['ua'][:60]}")
def test_columns_match_ua_parser_and_the_label(entry: dict[str, str]) -> None:
    ua, kind = entry["ua"], entry["kind"]
    device, browser, os_name, is_bot = classify_user_agent(ua)
    parsed = ua_parser.parse(ua)
    family, os_family = _family(parsed.user_agent), _family(parsed.os)
    assert browser == (BROWSER_NAMES.get(family, family) if family else None)
    assert os_name == (OS_NAMES.get(os_family, os_family) if os_family else None)
    if kind == "bot":
        assert is_bot is True
        return
    assert device == kind
    assert is_bot is False
    assert not crawleruseragents.is_crawler(ua), "the maintained list calls this browser a crawler"


def test_parses_are_cached() -> None:
    classify_user_agent.cache_clear()
    for entry in CORPUS:
        classify_user_agent(entry["ua"])
    for entry in CORPUS:
        classify_user_agent(entry["ua"])
    info = classify_user_agent.cache_info()
    assert (info.misses, info.hits) == (len(CORPUS), len(CORPUS))
