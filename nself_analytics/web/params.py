"""Parsing and validation of query parameters and JSON bodies of the read API.

Every function raises :class:`ApiError` (400) with a message naming the parameter, so handlers stay
declarative. Limits (documented in the README):

- dates are ``YYYY-MM-DD`` in UTC, inclusive; a range spans at most ``MAX_RANGE_DAYS`` days; with no dates a
  product query covers the last ``DEFAULT_RANGE_DAYS`` days, today included;
- periods are ``day``, ``week`` (ISO, starting Monday) or ``month``;
- durations use :func:`config.parse_duration` (``30s``, ``15m``, ``2h``, ``7d``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from aiohttp import web

from ..config import parse_duration
from .auth import GRANT
from .credentials import ACCOUNT_PATTERN
from .errors import ApiError
from .guards import check_depth

__all__ = [
    "DEFAULT_RANGE_DAYS",
    "MAX_NAME_LENGTH",
    "MAX_RANGE_DAYS",
    "PERIODS",
    "DateRange",
    "account",
    "add_periods",
    "choice",
    "date_range",
    "duration",
    "event_name",
    "integer",
    "json_body",
    "midnight",
    "optional_text",
    "period_floor",
    "zone",
]

MAX_RANGE_DAYS = 366
# The dates a query may name (events are stored between 1970 and 2999: see messages.parse_timestamp).
MIN_DATE, MAX_DATE = date(1970, 1, 1), date(2999, 12, 31)
DEFAULT_RANGE_DAYS = 30  # the range of a product query given no dates (as the web API's default)
MAX_NAME_LENGTH = 200
PERIODS = ("day", "week", "month")
ACCOUNT_HEADER = "X-Source-Account-Id"
DEFAULT_ACCOUNT = "primary"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DateRange:
    """An inclusive range of UTC dates, with the half-open instants ``[start, end)`` it covers."""

    __slots__ = ("first", "last")

    def __init__(self, first: date, last: date) -> None:
        self.first = first
        self.last = last

    @property
    def start(self) -> datetime:
        """Midnight UTC at the start of the first day."""
        return midnight(self.first)

    @property
    def end(self) -> datetime:
        """Midnight UTC after the last day (exclusive)."""
        return midnight(self.last + timedelta(days=1))


def midnight(day: date) -> datetime:
    """The instant ``day`` starts, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def account(request: web.Request) -> str:
    """The effective source account of a request: THE one place that says which account a request acts on.

    A credential bound to an account acts on that account (an ``X-Source-Account-Id`` naming another one is
    a 403); a bare credential acts on the ``X-Source-Account-Id`` header, else ``primary``.
    """
    value = request.headers.get(ACCOUNT_HEADER, "").strip()
    if value and not ACCOUNT_PATTERN.match(value):
        raise ApiError(400, f"Invalid {ACCOUNT_HEADER}: use 1-64 letters, digits, '_', '-', '.' or ':'")
    grant = request.get(GRANT)
    if grant is not None and grant.account is not None:
        if value and value != grant.account:
            raise ApiError(403, f"This credential is bound to another account than {value!r}")
        return grant.account
    return value or DEFAULT_ACCOUNT


def _parse_date(text: str) -> date:
    if not _DATE.match(text):
        raise ApiError(400, "Invalid date format. Use YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "Invalid date format. Use YYYY-MM-DD") from None
    if not MIN_DATE <= parsed <= MAX_DATE:
        # beyond them no event can exist, and period arithmetic near year 9999 overflows
        raise ApiError(400, f"Dates must be between {MIN_DATE} and {MAX_DATE}")
    return parsed


def date_range(query: Mapping[str, str], max_days: int = MAX_RANGE_DAYS, today: date | None = None) -> DateRange:
    """``start_date`` and ``end_date`` (inclusive, at most ``max_days`` days apart); neither given: the
    last ``DEFAULT_RANGE_DAYS`` days up to today (UTC), both included. One without the other is an error."""
    first_text, last_text = query.get("start_date", "").strip(), query.get("end_date", "").strip()
    if not first_text and not last_text:
        last = today or datetime.now(UTC).date()
        return DateRange(last - timedelta(days=DEFAULT_RANGE_DAYS - 1), last)
    if not first_text or not last_text:
        raise ApiError(400, "start_date and end_date go together: give both, or neither for the last 30 days")
    first, last = _parse_date(first_text), _parse_date(last_text)
    if last < first:
        raise ApiError(400, "end_date must not be before start_date")
    if (last - first).days + 1 > max_days:
        raise ApiError(400, f"The date range is limited to {max_days} days")
    return DateRange(first, last)


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) - {"localtime", "posixrules"}  # files of the folder, not zones


_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")


def zone(query: Mapping[str, str]) -> str:
    """``tz``: an IANA time zone name (``Europe/Berlin``), default ``UTC``; the zone of a read's days and
    hours."""
    name = query.get("tz", "").strip()
    if not name:
        return "UTC"
    if len(name) > 64 or not _ZONE.match(name):
        raise ApiError(400, "tz must be an IANA time zone name such as Europe/Berlin")
    try:
        if name not in _zones():  # the IANA names only (not the zoneinfo folder's other files, e.g. localtime)
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(400, f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin") from None
    return "UTC" if name in ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu") else name


def choice(query: Mapping[str, str], name: str, options: Collection[str], default: str | None) -> str:
    """One of ``options``; ``default`` when absent (None makes it required)."""
    value = query.get(name, "").strip()
    if not value:
        if default is None:
            raise ApiError(400, f"{name} is required")
        return default
    if value not in options:
        raise ApiError(400, f"Invalid {name} {value!r}: use one of {', '.join(options)}")
    return value


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer between ``low`` and ``high`` (inclusive); ``default`` when absent."""
    text = query.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def duration(text: str, name: str, low: float, high: float) -> float:
    """Seconds of a duration such as ``7d`` between ``low`` and ``high`` seconds."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ApiError(400, f"Invalid {name} {text!r}: use a duration such as 30s, 15m, 2h or 7d") from None
    if not low <= seconds <= high:
        raise ApiError(400, f"{name} must be between {_human(low)} and {_human(high)}")
    return seconds


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def event_name(value: object, name: str = "event") -> str:
    """A non-empty event (or property) name of at most MAX_NAME_LENGTH characters."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{name} is required")
    value = value.strip()
    if len(value) > MAX_NAME_LENGTH:
        raise ApiError(400, f"{name} is longer than {MAX_NAME_LENGTH} characters")
    return value


def optional_text(query: Mapping[str, str], name: str) -> str | None:
    """A non-empty string parameter (checked like an event name), or None when absent."""
    value = query.get(name, "").strip()
    return event_name(value, name) if value else None


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body; 400 when it is not one."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "Invalid JSON body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The JSON body must be an object")
    check_depth(await request.read(), body)  # before the recursive walk below
    _check_text(body)
    return body


def _check_text(value: Any) -> None:
    """400 for strings PostgreSQL cannot store: NUL, or an unpaired surrogate (a lone \\uD800 escape)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, "Invalid JSON body: text must not contain NUL (\\u0000)")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ApiError(400, "Invalid JSON body: a \\u escape is an unpaired surrogate") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def period_floor(day: date, period: str) -> date:
    """The first day of the ``period`` (day, ISO week, month) holding ``day``."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def add_periods(day: date, period: str, count: int) -> date:
    """``day`` (a period start) moved by ``count`` periods."""
    if period == "day":
        return day + timedelta(days=count)
    if period == "week":
        return day + timedelta(weeks=count)
    if period == "month":
        months = day.year * 12 + day.month - 1 + count
        return date(months // 12, months % 12 + 1, 1)
    raise ValueError(f"unknown period {period!r}")
