"""Known web data on the live service for the bot and MCP tests, and the HTTP API's own answers about it."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

SITE = "reports.example.com"
TODAY = datetime.now(UTC).date().isoformat()
DAY = {"start_date": TODAY, "end_date": TODAY}
# (event, user, properties) tracked on the live service (product_data, conftest.py), account "primary"
EVENTS = [
    ("mcp_signup", "m1", {"plan": "pro"}), ("mcp_signup", "m2", {"plan": "free"}),
    ("mcp_signup", "m3", {"plan": "pro"}),
    ("mcp_purchase", "m1", {"amount": 30}), ("mcp_purchase", "m2", {"amount": 12}),
    ("play", "m1", {}), ("stop", "m1", {}),
]
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
# (path, referrer, language, session, user agent, ip): 6 page views in 3 sessions.
HITS = [
    ("/pricing", "https://www.google.com/search", "en-US", "s1", CHROME, "8.8.8.8"),
    ("/pricing", "https://www.google.com/search", "en-US", "s1", CHROME, "8.8.8.8"),
    ("/pricing", "https://www.google.com/search", "en-US", "s1", CHROME, "8.8.8.8"),
    ("/docs", "https://news.ycombinator.com/item", "de-DE", "s2", IPHONE, "8.8.4.4"),
    ("/docs", "https://news.ycombinator.com/item", "de-DE", "s2", IPHONE, "8.8.4.4"),
    ("/", None, "fr-FR", "s3", CHROME, "81.2.69.160"),
]


def api(live: Any, path: str, token: str | None = None, **params: Any) -> Any:
    """``GET /analytics<path>`` of the live service with the secret token; the parsed JSON answer."""
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f"{live.base_url}/analytics{path}{'?' + query if query else ''}",
                                     headers={"Authorization": f"Bearer {token or live.secret}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def web_data(live: Any, report: str, **params: Any) -> Any:
    return api(live, f"/api/{report}", site=SITE, start=int(time.time()) - 7 * 86400, end=int(time.time()) + 1,
               **params)["data"]
