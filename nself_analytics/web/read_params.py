"""The query parameters the product reads share, as msgspec Structs (decoded by web/routing.py before a handler
runs, documented in the OpenAPI from the same classes): the date range, the period, a user and a page."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo

import msgspec

from . import params

__all__ = ["DateParams", "Day", "Name", "Period", "UserParams", "Zone", "zoned"]

_DAY = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", extra_json_schema={"format": "date"})]
# an event name, a property or an id: what params.event_name accepts
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=params.MAX_NAME_LENGTH)]
Period = Literal["day", "week", "month"]
Day = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]  # an answer's YYYY-MM-DD


# ``tz``: the zone of a read's days (start_date/end_date, the default range's today, the days, weeks and months of
# its rows), checked by params.zone (an unknown zone is a 400)
Zone = Annotated[str, msgspec.Meta(max_length=64, description=(
    "IANA time zone of the read's days (start_date/end_date, the default range's today, the days, weeks and months "
    "of its rows; default UTC); an unknown zone is a 400"))]


class DateParams(msgspec.Struct, kw_only=True):
    """``start_date`` and ``end_date``: both or neither (the last 30 days), days of ``tz``; see web/params.py
    date_range and :func:`zoned`."""

    start_date: Annotated[_DAY, msgspec.Meta(description=(
        "First day (of tz, inclusive); give both dates or neither (the last 30 days of tz, today included)"))
    ] | None = None
    end_date: Annotated[_DAY, msgspec.Meta(description=(
        "Last day (of tz, inclusive); at most 366 days after start_date"))] | None = None
    tz: Zone = "UTC"

    MESSAGES: ClassVar[dict[str, str]] = {"start_date": "Invalid date format. Use YYYY-MM-DD",
                                          "end_date": "Invalid date format. Use YYYY-MM-DD",
                                          "tz": "tz must be an IANA name of at most 64 characters"}

    def dates(self, max_days: int = params.MAX_RANGE_DAYS, today: date | None = None) -> params.DateRange:
        """The range's days (ApiError 400 for one date without the other, a bad order, a range too long or an
        unknown zone); the default range ends on today of ``tz``."""
        zone_info = self.zone()
        given = {key: value for key, value in (("start_date", self.start_date), ("end_date", self.end_date))
                 if value is not None}
        return params.date_range(given, max_days, today or datetime.now(zone_info).date())

    def zone(self) -> ZoneInfo:
        """``tz`` checked (ApiError 400 when it is not an IANA name)."""
        return ZoneInfo(params.zone({"tz": self.tz}))


class UserParams(DateParams, kw_only=True):
    """A date range, the period of a row, and optionally one user's events only."""

    group_by: Annotated[Period, msgspec.Meta(description="Period of a row")] = "day"
    user_id: Annotated[str, msgspec.Meta(max_length=params.MAX_NAME_LENGTH,
                                         description="Only this user's events")] | None = None


def zoned(query: DateParams, tz: str | None = None, max_days: int = params.MAX_RANGE_DAYS
          ) -> tuple[params.DateRange, datetime, datetime]:
    """The range of ``query`` in zone ``tz`` (default: the query's; ApiError 400 when unknown): its days and the
    instants [start, end) from the first day's midnight to the midnight after the last."""
    zone_info = ZoneInfo(params.zone({"tz": query.tz if tz is None else tz}))
    dates = query.dates(max_days, today=datetime.now(zone_info).date())
    return (dates, datetime.combine(dates.first, time.min, zone_info),
            datetime.combine(dates.last + timedelta(days=1), time.min, zone_info))
