"""tz on the product reads: the days of start_date/end_date are the zone's; an unknown zone is a 400. The reads
whose rows are periods are checked against references in every zone in tests/test_zones_reads.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .queries_support import Ev, insert

ZONE = "America/New_York"


async def test_the_days_of_a_range_are_the_zones(client: Any, auth: Any, pool_conn: Any) -> None:
    # day D (ten days ago): 03:00 UTC of D+1 is still D in New York (UTC-4/-5); 12:00 UTC of D is D in both
    day = (datetime.now(UTC) - timedelta(days=10)).date()
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    late = noon + timedelta(hours=15)  # 03:00 UTC the next day
    await insert(pool_conn, [Ev("u1", noon, "signup", {"plan": "pro"}), Ev("u1", late, "purchase", {"amount": 5}),
                             Ev("u2", late, "signup", {"plan": "free"})])
    dates = {"start_date": day.isoformat(), "end_date": day.isoformat()}

    async def get(path: str, **extra: str) -> Any:
        response = await client.get(f"/analytics/{path}", headers=auth["secret"], params={**dates, **extra})
        assert response.status == 200, await response.text()
        return await response.json()

    utc = {row["event"]: row["count"] for row in (await get("events"))["data"]}
    local = {row["event"]: row["count"] for row in (await get("events", tz=ZONE))["data"]}
    assert utc == {"signup": 1} and local == {"signup": 2, "purchase": 1}
    funnel_utc = await get("funnel", steps="signup,purchase")
    funnel_local = await get("funnel", steps="signup,purchase", tz=ZONE)
    # an attempt starts in the range's days and completes within the window, wherever that ends
    assert [s["users"] for s in funnel_utc["steps"]] == [1, 1]
    assert [s["users"] for s in funnel_local["steps"]] == [2, 1]
    props = await get("events/signup/properties", tz=ZONE)
    assert props["sampled_events"] == 2


@pytest.mark.parametrize("path", ["events", "funnel?steps=a,b", "events/a/properties", "api/pageviews?site=x.com"])
@pytest.mark.parametrize("tz", ["Mars/Olympus", "localtime", "../../etc/passwd", "x" * 65])
async def test_an_unknown_zone_is_a_400(client: Any, auth: Any, path: str, tz: str) -> None:
    joiner = "&" if "?" in path else "?"
    response = await client.get(f"/analytics/{path}{joiner}tz={tz}", headers=auth["secret"])
    assert response.status == 400
    body = await response.json()
    assert (body["status"] == "error" and "tz" in body["message"]) or "time zone" in body["message"]


@pytest.mark.parametrize("path", ["trends?events=a", "metrics", "sessions", "retention", "sites"])
async def test_reads_of_periods_take_any_zone(client: Any, auth: Any, path: str) -> None:
    # (their answers in every zone: tests/test_zones_reads.py)
    route, _, query = path.partition("?")
    params = dict(item.split("=") for item in query.split("&") if item)
    for tz in ("Asia/Tokyo", "Asia/Kathmandu", "UTC"):
        response = await client.get(f"/analytics/{route}", headers=auth["secret"], params={**params, "tz": tz})
        assert response.status == 200, await response.text()
        assert (await response.json())["tz"] == tz
