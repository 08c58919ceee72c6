"""The query parameters the product reads share, as msgspec Structs (decoded by web/routing.py before a handler
runs, documented in the OpenAPI from the same classes): the date range, the period, a user and a page."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

import msgspec

from . import params

__all__ = ["DateParams", "Day", "Name", "Period", "UserParams"]

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

    MESSAGES: ClassVar[dict[str, str]] = {"start_date": "Invalid date format. Use YYYY-MM-DD",
                                          "end_date": "Invalid date format. Use YYYY-MM-DD"}

    def dates(self, max_days: int = params.MAX_RANGE_DAYS, today: date | None = None) -> params.DateRange:
        """The range (ApiError 400 for one date without the other, a bad order, a range too long)."""
        given = {key: value for key, value in (("start_date", self.start_date), ("end_date", self.end_date))
                 if value is not None}
        return params.date_range(given, max_days, today)


class UserParams(DateParams, kw_only=True):
    """A date range, the period of a row, and optionally one user's events only."""

    group_by: Annotated[Period, msgspec.Meta(description="Period of a row")] = "day"
    user_id: Annotated[str, msgspec.Meta(max_length=params.MAX_NAME_LENGTH,
                                         description="Only this user's events")] | None = None
