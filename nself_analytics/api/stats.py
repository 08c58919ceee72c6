"""The web-analytics read API: GET /api/{pageviews,pages,referrers,timeseries,...} of one site.

Secret token only. Parameters: ``site`` (required), ``start``/``end`` (Unix seconds; default the
last 30 days), ``limit`` (top lists), ``include_bots``, and the filters ``path``, ``referrer``
(a domain), ``country``, ``device``, ``browser``, ``os`` and ``utm_source``/``utm_medium``/``utm_campaign``/
``utm_term``/``utm_content``. Responses are ``{"status": "success", "data": ..., "meta": ...}``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..ingest.hits import MAX_UTM, UTM_KEYS
from ..store import web_reads as store
from ..store.web import WebQuery
from ..web.errors import ApiError
from ..web.params import account
from ..web.pools import reading
from ..web.routing import SITE, Route

__all__ = ["ACTIVE_WINDOW_SECONDS", "DEFAULT_RANGE_SECONDS", "DEVICES", "MAX_LIMIT", "ROUTES", "parse_query"]

DEFAULT_RANGE_SECONDS = 30 * 86_400
MAX_TIMESERIES_DAYS = 3_660
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
ACTIVE_WINDOW_SECONDS = 300
DEVICES = ("mobile", "tablet", "desktop")
MAX_NAME = 100  # a browser or OS name filter
_UNIX = re.compile(r"^\d{1,12}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_SITE = re.compile(r"^[a-z0-9_.:\[\]-]{1,253}$")

Reader = Callable[[Any, WebQuery], Awaitable[Any]]


def _unix(query: Mapping[str, str], name: str) -> int | None:
    text = query.get(name, "").strip()
    if not text:
        return None
    if not _UNIX.match(text) or int(text) > MAX_TIMESTAMP:
        raise ApiError(400, f"{name} must be Unix seconds (an integer from 0 to {MAX_TIMESTAMP})")
    return int(text)


def _text(query: Mapping[str, str], name: str, limit: int) -> str | None:
    value = query.get(name, "").strip()
    if not value:
        return None
    if len(value) > limit:
        raise ApiError(400, f"{name} is longer than {limit} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ApiError(400, f"{name} must not contain a NUL character")
    return value


def parse_query(query: Mapping[str, str], now: float | None = None) -> WebQuery:
    """The shared parameters of a read; ApiError(400) naming the first bad one."""
    site = (_text(query, "site", 253) or "").lower()
    if not site:
        raise ApiError(400, "site is required (the hostname the beacon reports, e.g. example.com)")
    if not _SITE.match(site):
        raise ApiError(400, "site must be a hostname such as example.com")
    end = _unix(query, "end")
    start = _unix(query, "start")
    if end is None:
        end = int(now if now is not None else time.time()) + 1
    if start is None:
        start = max(0, end - DEFAULT_RANGE_SECONDS)
    if start >= end:
        raise ApiError(400, "start must be before end")
    limit_text = query.get("limit", "").strip()
    limit = DEFAULT_LIMIT
    if limit_text:
        if not re.match(r"^\d{1,6}$", limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(limit_text)
    bots = query.get("include_bots", "").strip().lower()
    if bots not in ("", "true", "false", "1", "0"):
        raise ApiError(400, "include_bots must be true or false")
    country = _text(query, "country", 2)
    if country is not None and not _COUNTRY.match(country):
        raise ApiError(400, "country must be an ISO 3166 alpha-2 code such as US")
    device = _text(query, "device", 10)
    if device is not None and device not in DEVICES:
        raise ApiError(400, f"device must be one of {', '.join(DEVICES)}")
    referrer = _text(query, "referrer", 253)
    if referrer is not None:
        referrer = referrer.lower().removeprefix("www.")
    utm = tuple((key, value) for key in UTM_KEYS if (value := _text(query, key, MAX_UTM)) is not None)
    return WebQuery(
        site=site, start=datetime.fromtimestamp(start, UTC), end=datetime.fromtimestamp(end, UTC),
        include_bots=bots in ("true", "1"), path=_text(query, "path", 1024), referrer=referrer,
        country=country.upper() if country else None, device=device, limit=limit,
        browser=_text(query, "browser", MAX_NAME), os=_text(query, "os", MAX_NAME), utm=utm,
    )


async def _answer(request: web.Request, reader: Reader, *, max_days: int | None = None,
                  active: bool = False) -> web.Response:
    query = replace(parse_query(request.query), account=account(request))
    if active:  # the last few minutes, whatever the range asked
        now = time.time()
        query = replace(query, start=datetime.fromtimestamp(now - ACTIVE_WINDOW_SECONDS, UTC),
                        end=datetime.fromtimestamp(now + 60, UTC))
    if max_days is not None and (query.end - query.start).total_seconds() > max_days * 86_400:
        raise ApiError(400, f"The range is limited to {max_days} days")
    async with reading(request) as conn:
        data = await reader(conn, query)
    meta = {"site": query.site, "start": int(query.start.timestamp()), "end": int(query.end.timestamp())}
    return web.json_response({"status": "success", "data": data, "meta": meta})


def _breakdown(name: str, key: str) -> Reader:
    async def read(conn: Any, query: WebQuery) -> Any:
        return await store.breakdown(conn, query, name, key)

    return read


async def _active(conn: Any, query: WebQuery) -> dict[str, int]:
    counts = await store.summary(conn, query)
    return {"active": counts["sessions"], "pageviews": counts["pageviews"]}


# Path (under /api) -> (reader, options). One GET route each, named stats.<path>.
READERS: dict[str, tuple[Reader, dict[str, Any]]] = {
    "pageviews": (store.summary, {}),
    "pages": (_breakdown("pages", "path"), {}),
    "referrers": (_breakdown("referrers", "referrer"), {}),
    "timeseries": (store.timeseries, {"max_days": MAX_TIMESERIES_DAYS}),
    "devices": (_breakdown("devices", "device"), {}),
    "languages": (_breakdown("languages", "language"), {}),
    "browsers": (_breakdown("browsers", "browser"), {}),
    "os": (_breakdown("os", "os"), {}),
    "countries": (_breakdown("countries", "country"), {}),
    "hostnames": (_breakdown("hostnames", "hostname"), {}),
    "active": (_active, {"active": True}),
    "entry-pages": (store.entry_pages, {}),
    "exit-pages": (store.exit_pages, {}),
    "bounce-rates": (store.bounce_rates, {}),
    "peak-hours": (store.peak_hours, {}),
    "screen-widths": (store.screen_widths, {}),
    "session-duration": (store.session_duration, {}),
}


def _handler(reader: Reader, options: dict[str, Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await _answer(request, reader, **options)

    return handler


SUMMARIES = {
    "pageviews": "Page views, sessions and visitors (a visitor: user id, anonymous id, else the day's IP hash)",
    "pages": "Top pages", "referrers": "Top referring domains",
    "timeseries": "Page views and sessions per day (UTC), every day of the range",
    "devices": "Page views by device (mobile, tablet, desktop)", "languages": "Page views by browser language",
    "browsers": "Page views by browser", "os": "Page views by operating system", "countries": "Page views by country",
    "hostnames": "Page views by hostname", "active": "Sessions active in the last 5 minutes",
    "entry-pages": "Pages sessions start on", "exit-pages": "Pages sessions end on",
    "bounce-rates": "Per entry page: sessions with a single page view", "peak-hours": "Page views per hour (UTC)",
    "screen-widths": "Page views by screen width bucket",
    "session-duration": "Average and median seconds between a session's first and last page view",
}

ROUTES = [Route("GET", f"/api/{name}", _handler(reader, options), SITE, name=f"stats.{name}",
                tags=("Web analytics",), summary=SUMMARIES[name])
          for name, (reader, options) in READERS.items()]
