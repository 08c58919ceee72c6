"""A partial day at a range's edge is read from its per-day rows when all its page views lie within the range
(store/web_reads.py), and from its fragments otherwise: every endpoint matches the reference either way."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from nself_analytics.store.rollups.aggregates import materialize
from nself_analytics.store.tx import read_snapshot
from nself_analytics.store.web import WebQuery
from nself_analytics.store.web_reads import _plan
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL

from .test_web_stats import DAY0, ENDPOINTS, HEADERS, LINKS, SITE, approx_equal, hits, reference  # noqa: F401


async def test_partial_edge_days_match_the_reference(client: Any, hits: list[dict[str, Any]]) -> None:  # noqa: F811
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        while await materialize(conn, retention_days=36500):
            pass
    times = sorted(h["ts"] for h in hits if h["site"] == SITE)
    last = max(times)
    ranges = [
        # ends after the data's last page view of its day (read from the day rows), then within that day
        (DAY0 + timedelta(days=2), DAY0 + timedelta(days=11, hours=23, minutes=59)),
        (DAY0 + timedelta(days=2), DAY0 + timedelta(days=5, hours=13, minutes=17)),
        # starts before the first page view of its day, then within a day
        (DAY0 + timedelta(days=3, minutes=1), DAY0 + timedelta(days=8)),
        (DAY0 + timedelta(days=3, hours=11, minutes=30), DAY0 + timedelta(days=8, hours=6, minutes=45)),
    ]
    ranges.append((DAY0 + timedelta(days=1), datetime.fromisoformat(last) + timedelta(seconds=1)))
    whole = 0
    for start, end in ranges:
        async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn, read_snapshot(conn) as cur:
            plan = await _plan(cur, WebQuery(site=SITE, start=start, end=end), True)
        # an edge day read whole: the day bounds reach past the range's edge
        whole += (plan["d2"] > end) + (plan["d1"] < start)
        for name in ENDPOINTS:
            params = {"site": SITE, "start": str(int(start.timestamp())), "end": str(int(end.timestamp())),
                      "limit": "1000"}
            response = await client.get(f"/analytics/api/{name}", params=params, headers=HEADERS)
            assert response.status == 200, (name, await response.text())
            body = await response.json()
            assert approx_equal(body["data"], reference(name, hits, params, LINKS)), (name, start, end)
    assert whole >= 2  # the last range's end and at least one other edge were read from the day rows
