"""The aggregator never retries the same input forever (decision 6): an hour whose recomputation outlasts the
statement timeout every time (a trigger that sleeps, injected for one account) is quarantined alone, left dirty
(reads of it stay exact from raw events), named in the job's detail, retried after a backoff, and released once it
materializes; the other hours materialize meanwhile."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from nself_analytics.config import Settings
from nself_analytics.pipeline.aggregator import Aggregator
from nself_analytics.web.appkeys import ANALYTICS_APP, WORKER_POOL

from .conftest import WRITE_KEY, pg_execute

SLOW_TRIGGER = """
CREATE OR REPLACE FUNCTION np_test_slow_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$;
CREATE TRIGGER np_test_slow_rollup BEFORE INSERT ON np_analytics_aggregates FOR EACH ROW
    WHEN (NEW.source_account_id = 'slow') EXECUTE FUNCTION np_test_slow_rollup();
"""
DROP_TRIGGER = """
DROP TRIGGER IF EXISTS np_test_slow_rollup ON np_analytics_aggregates;
DROP FUNCTION IF EXISTS np_test_slow_rollup();
"""


async def sql(settings: Settings, statement: str) -> list[tuple[Any, ...]]:
    return await asyncio.to_thread(pg_execute, settings.database_url, statement)


async def test_an_hour_that_times_out_alone_is_quarantined_and_released(make_client: Any, settings: Settings,
                                                                         drain: Any) -> None:
    fast = settings.with_(background_timeout=0.5)  # the worker pool's statement timeout
    client = await make_client(fast)
    for account in ("slow", "fine"):
        response = await client.post("/analytics/batch", headers={
            "Authorization": f"Bearer {WRITE_KEY}", "X-Source-Account-Id": account},
            json={"batch": [{"type": "track", "event": "rollup", "userId": f"u{i}"} for i in range(3)]})
        assert response.status == 202
    await drain()
    aggregator = Aggregator(client.app[ANALYTICS_APP][WORKER_POOL], fast.retention_days, first_backoff=0.3)
    await sql(fast, SLOW_TRIGGER)
    try:
        await aggregator.run()  # returns: the slow hour does not hold the job
        dirty = await sql(fast, "SELECT source_account_id FROM np_analytics_aggregate_dirty")
        assert dirty == [("slow",)]  # left dirty: reads of it stay exact from raw events
        done = await sql(fast, "SELECT source_account_id, sum(count) FROM np_analytics_aggregates "
                               "WHERE granularity = 'hour' GROUP BY 1")
        assert done == [("fine", 3)]
        quarantined = aggregator.detail()["quarantined"]
        assert isinstance(quarantined, list) and [q["source_account_id"] for q in quarantined] == ["slow"]
        assert quarantined[0]["failures"] == 1
        # before its backoff ends, the hour is not tried again (the run is quick and changes nothing)
        await aggregator.run()
        assert [q["failures"] for q in aggregator.detail()["quarantined"]] == [1]  # type: ignore[union-attr]
        await asyncio.sleep(0.35)
        await aggregator.run()  # retried alone, times out again: backoff doubles
        assert [q["failures"] for q in aggregator.detail()["quarantined"]] == [2]  # type: ignore[union-attr]
    finally:
        await sql(fast, DROP_TRIGGER)
    deadline = time.monotonic() + 10
    while aggregator.quarantine:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
        await aggregator.run()
    assert await sql(fast, "SELECT count(*) FROM np_analytics_aggregate_dirty") == [(0,)]
    done = await sql(fast, "SELECT source_account_id, sum(count) FROM np_analytics_aggregates "
                           "WHERE granularity = 'hour' GROUP BY 1 ORDER BY 1")
    assert done == [("fine", 3), ("slow", 3)]
