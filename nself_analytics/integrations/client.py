"""A small client of the service's HTTP API shared by the bots and the MCP server.

``ANALYTICS_URL`` is the service's address, with or without the ``/analytics`` mount
(``http://localhost:3206`` and ``http://localhost:3206/analytics`` are the same). Every call has a
total timeout; failures become :class:`Unreachable` (no answer), :class:`Unauthorized` (401) or
:class:`ServiceError` (another error, with the service's message), never a library exception.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from ..config import ConfigError

__all__ = ["AnalyticsClient", "ClientConfig", "Range", "ServiceError", "Unauthorized", "Unreachable", "parse_range"]

MOUNT = "/analytics"
DEFAULT_TIMEOUT_SECONDS = 15.0
# Answers larger than this are refused (a report needs a few KB; the API's own limits keep them small).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_RANGE = "7d"
MAX_RANGE_DAYS = 366
_RANGE = re.compile(r"^(\d{1,4})([hdwm])$")
_UNIT_DAYS = {"d": 1, "w": 7, "m": 30}


class ServiceError(Exception):
    """The service answered with an error; ``str()`` is a message fit for a chat reply."""


class Unreachable(ServiceError):
    """No answer from the service (down, wrong URL, timeout)."""


class Unauthorized(ServiceError):
    """The service refused the API token."""


@dataclass(frozen=True)
class Range:
    """A reporting range: Unix seconds for the web API, UTC dates for the product queries, a label."""

    start: int
    end: int
    label: str

    @property
    def start_date(self) -> date:
        return datetime.fromtimestamp(self.start, UTC).date()

    @property
    def end_date(self) -> date:
        return datetime.fromtimestamp(self.end - 1, UTC).date()


def parse_range(text: str | None, now: float | None = None) -> Range:
    """``24h``, ``7d`` (default), ``4w``, ``3m`` (30-day months), ``today``; ValueError with a usable message."""
    now = time.time() if now is None else now
    end = int(now) + 1
    value = (text or DEFAULT_RANGE).strip().lower()
    if value == "today":
        midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return Range(int(midnight.timestamp()), end, "today")
    match = _RANGE.match(value)
    if not match:
        raise ValueError(f"Unknown range {value[:20]!r}: use e.g. 24h, 7d, 30d, 4w, 3m or today")
    amount, unit = int(match.group(1)), match.group(2)
    seconds = amount * 3600 if unit == "h" else amount * _UNIT_DAYS[unit] * 86400
    if amount < 1 or seconds > MAX_RANGE_DAYS * 86400:
        raise ValueError(f"A range is 1h to {MAX_RANGE_DAYS} days")
    words = {"h": "hour", "d": "day", "w": "week", "m": "month"}
    label = f"last {amount} {words[unit]}{'s' if amount != 1 else ''}"
    return Range(end - seconds, end, label)


@dataclass(frozen=True)
class ClientConfig:
    """Where the service is and how to authenticate; ``site`` is the bots' default site."""

    url: str
    token: str
    site: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def base(self) -> str:
        """The API root, ending in ``/analytics``."""
        url = self.url.rstrip("/")
        return url if url.endswith(MOUNT) else url + MOUNT

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, url: str | None = None, token: str | None = None,
                 site: str | None = None, need_site: bool = False) -> ClientConfig:
        """From ANALYTICS_URL, ANALYTICS_API_TOKEN, ANALYTICS_SITE (arguments win); ConfigError names a missing one."""
        url = url or env.get("ANALYTICS_URL", "").strip() or None
        token = token or env.get("ANALYTICS_API_TOKEN", "").strip() or None
        site = site or env.get("ANALYTICS_SITE", "").strip() or None
        if not url:
            raise ConfigError("ANALYTICS_URL", "", "set it to the service's address, e.g. http://localhost:3206")
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError("ANALYTICS_URL", url, "must be an http(s) URL")
        if not token:
            raise ConfigError("ANALYTICS_API_TOKEN", "", "set it to the service's secret token")
        if need_site and not site:
            raise ConfigError("ANALYTICS_SITE", "", "set it to the site to report on, e.g. example.com")
        return cls(url=url, token=token, site=site)


class AnalyticsClient:
    """GET requests to the API with the token. A session per call: the bots and the MCP server make a few
    calls a minute, and nothing stays open between them (no session to close, none left behind)."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    def _client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            headers={"Authorization": f"Bearer {self.config.token}", "Accept": "application/json",
                     "User-Agent": "nself-analytics-client"})

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON answer of ``GET <base><path>``; None values in ``params`` are left out."""
        query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (params or {}).items()
                 if v is not None}
        url = self.config.base + path
        try:
            async with self._client() as session, session.get(url, params=query, allow_redirects=False) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(f"The analytics service at {self.config.base} is unreachable "
                              f"({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ServiceError("The analytics service's answer is too large")
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        if status == 401:
            raise Unauthorized("The analytics service refused the API token: check ANALYTICS_API_TOKEN")
        if status >= 400 or not isinstance(body, dict):
            raise ServiceError(f"The analytics service answered {status}: {message or 'no JSON answer'}")
        return body

    async def web(self, report: str, site: str, span: Range, limit: int | None = None) -> Any:
        """``data`` of ``GET /api/<report>`` for ``site`` over ``span``."""
        body = await self.get(f"/api/{quote(report)}", {"site": site, "start": span.start, "end": span.end,
                                                        "limit": limit})
        return body.get("data")

    @staticmethod
    def dates(span: Range) -> dict[str, str]:
        return {"start_date": span.start_date.isoformat(), "end_date": span.end_date.isoformat()}
