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


class DateParams(msgspec.Struct, kw_only=True):
    """``start_date`` and ``end_date``: both or neither (the last 30 days); see web/params.py date_range."""

    start_date: Annotated[_DAY, msgspec.Meta(description=(
        "First day (UTC, inclusive); give both dates or neither (the last 30 days, today included)"))] | None = None
    end_date: Annotated[_DAY, msgspec.Meta(description=(
        "Last day (UTC, inclusive); at most 366 days after start_date"))] | None = None

    # the reads whose rows are UTC days (trends, metrics, sessions, retention, sites) take tz=UTC only, so another
    # zone is a 400 rather than silently ignored; those that count by instants take any zone (Zone)
    tz: Annotated[str, msgspec.Meta(max_length=64, description=(
        "UTC only for this read (its rows are UTC days); /funnel, /events and the web reads take any IANA zone"))] = (
        "UTC")
    ZONED: ClassVar[bool] = False  # True: the read takes any zone (see zoned)

    MESSAGES: ClassVar[dict[str, str]] = {"start_date": "Invalid date format. Use YYYY-MM-DD",
                                          "end_date": "Invalid date format. Use YYYY-MM-DD",
                                          "tz": "tz must be an IANA name of at most 64 characters"}

    def dates(self, max_days: int = params.MAX_RANGE_DAYS, today: date | None = None) -> params.DateRange:
        """The range (ApiError 400 for one date without the other, a bad order, a range too long, or a zone other than
        UTC for a read whose rows are UTC days)."""
        if not self.ZONED and self.tz != "UTC":
            raise params.ApiError(400, f"tz={self.tz[:64]!r} is not taken by this read yet: its rows are UTC days "
                                       "(tz=UTC); /funnel, /events and the web reads take any IANA zone")
        given = {key: value for key, value in (("start_date", self.start_date), ("end_date", self.end_date))
                 if value is not None}
        return params.date_range(given, max_days, today)


class UserParams(DateParams, kw_only=True):
    """A date range, the period of a row, and optionally one user's events only."""

    group_by: Annotated[Period, msgspec.Meta(description="Period of a row")] = "day"
    user_id: Annotated[str, msgspec.Meta(max_length=params.MAX_NAME_LENGTH,
                                         description="Only this user's events")] | None = None


# ``tz`` of a read whose range is whole days but that counts events by their instants (funnels, event names and
# properties): the days of start_date/end_date (and "today" of the default range) are that zone's
Zone = Annotated[str, msgspec.Meta(max_length=64, description=(  # with ZONED = True on the class
    "IANA time zone of the days of start_date/end_date and of the default range's today (default UTC); an "
    "unknown zone is a 400"))]


def zoned(query: DateParams, tz: str, max_days: int = params.MAX_RANGE_DAYS) -> tuple[params.DateRange, datetime,
                                                                                       datetime]:
    """The range of ``query`` in zone ``tz`` (ApiError 400 when unknown): its days and the instants [start, end)
    from the first day's midnight to the midnight after the last."""
    zone_info = ZoneInfo(params.zone({"tz": tz}))
    dates = query.dates(max_days, today=datetime.now(zone_info).date())
    return (dates, datetime.combine(dates.first, time.min, zone_info),
            datetime.combine(dates.last + timedelta(days=1), time.min, zone_info))
