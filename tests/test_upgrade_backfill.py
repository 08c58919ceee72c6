"""The upgrade's backfill (issue 23 item 2): a 1.1.1 database's events get the rollups 1.2 added in bounded,
resumable batches after the migrations, and every read stays exact before, during and after it.

The reference is this session's database after ingest, drain and the aggregator (as 1.2 builds it). The upgraded one
is a database built by 1.1.1's migrations (tests/fixtures/migrations_1_1_1/) holding the same partitions, events and
users, then migrated by this version's files: nothing in it is dirty, its new rollups are empty, so a read that
ignored the backfill's pending hours would miss every event.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiopg
import psycopg2

from nself_analytics.config import Settings
from nself_analytics.host.migrate import migrations_dir
from nself_analytics.store.backfills import backfills, run_batch
from nself_analytics.store.rollups.aggregates import materialize

from .conftest import SECRET, drop_databases, pg_execute
from .test_upgrade_schema import CONSOLIDATED, LATER, RELEASE_1_1_1, migrate, sibling

SITE = "shop.example"
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
DAYS = 4
ROLLUPS = ("np_analytics_event_times", "np_analytics_web_sessions", "np_analytics_web_daily",
           "np_analytics_web_day_stats", "np_analytics_web_hour_stats")


def _messages() -> list[dict[str, Any]]:
    """Page views of sessions with UTM, signups and purchases, and session start/stop events over DAYS days."""
    messages: list[dict[str, Any]] = []
    for day in range(DAYS):
        for n in range(12):
            at = NOW - timedelta(days=day, hours=2 * n, minutes=n)
            user = f"u{(day * 12 + n) % 9}"
            session = f"s{day}-{n % 5}"
            base = {"anonymousId": f"a{n % 7}", "timestamp": at.isoformat(), "messageId": str(uuid.uuid4())}
            for step, path in enumerate(("/", "/pricing", f"/docs/{n % 3}")[: 1 + n % 3]):
                messages.append({**base, "messageId": str(uuid.uuid4()), "type": "page", "name": path,
                                 "timestamp": (at + timedelta(seconds=40 * step)).isoformat(), "sessionId": session,
                                 "properties": {"url": f"https://{SITE}{path}",
                                                "utm_source": "news", "utm_term": f"t{n % 2}",
                                                "utm_content": "banner" if n % 4 else "text"}})
            messages.append({**base, "type": "track", "event": "signup", "userId": user})
            if n % 3:
                messages.append({**base, "messageId": str(uuid.uuid4()), "type": "track", "event": "purchase",
                                 "userId": user, "timestamp": (at + timedelta(minutes=20)).isoformat()})
            messages.append({**base, "messageId": str(uuid.uuid4()), "type": "track", "event": "session_start",
                             "userId": user})
            messages.append({**base, "messageId": str(uuid.uuid4()), "type": "track", "event": "session_end",
                             "userId": user, "timestamp": (at + timedelta(minutes=5 + n)).isoformat()})
    return messages


READS = [
    ("/analytics/funnel", {"steps": "signup,purchase"}),
    ("/analytics/sessions", {"start_event": "session_start", "stop_event": "session_end"}),
    *((f"/analytics/api/{report}", {"site": SITE}) for report in (
        "pageviews", "pages", "entry-pages", "exit-pages", "utm-terms", "utm-contents", "session-duration",
        "timeseries", "bounce-rates")),
    ("/analytics/sites", {}),
]


async def _answers(client: Any) -> dict[str, Any]:
    first, last = (NOW - timedelta(days=DAYS + 1)).date(), (NOW + timedelta(days=1)).date()
    window = {"start_date": first.isoformat(), "end_date": last.isoformat(),
              "start": str(int((NOW - timedelta(days=DAYS + 1)).timestamp())), "end": str(int(NOW.timestamp()) + 7200)}
    answers = {}
    for path, params in READS:
        response = await client.get(path, headers={"Authorization": f"Bearer {SECRET}"}, params={**window, **params})
        assert response.status == 200, (path, await response.text())
        body = await response.json()
        body.pop("meta", None)
        answers[path] = body
    return answers


def _copy(source: str, target: str, table: str) -> None:
    buffer = io.StringIO()
    with psycopg2.connect(source) as src, src.cursor() as cur:
        cur.copy_expert(f"COPY (SELECT * FROM {table}) TO STDOUT", buffer)
    buffer.seek(0)
    with psycopg2.connect(target) as dst, dst.cursor() as cur:
        cur.copy_expert(f"COPY {table} FROM STDIN", buffer)


def _rows(database_url: str, table: str) -> list[str]:
    return sorted(text for (text,) in pg_execute(database_url, f"SELECT t::text FROM {table} t"))


def _release_1_1_1_copy(stores: Any) -> str:
    """A 1.1.1 database with the reference's partitions, events and users, upgraded by this version's migrations."""
    upgraded = sibling(stores.database_url, "backfill_from_1_1_1")
    migrate(upgraded, RELEASE_1_1_1)
    for (bound,) in pg_execute(stores.database_url, """
            SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'np_analytics_events'::regclass"""):
        day = date.fromisoformat(bound.split("'")[1][:10])
        pg_execute(upgraded, f"CREATE TABLE np_analytics_events_p{day:%Y%m%d} PARTITION OF np_analytics_events "
                             f"{bound}")
    # 1.1.1's drain wrote the same columns (0100 adds none to these tables)
    _copy(stores.database_url, upgraded, "np_analytics_events")
    _copy(stores.database_url, upgraded, "np_analytics_users")
    assert migrate(upgraded, migrations_dir()) == [*CONSOLIDATED, *LATER]
    return upgraded


async def test_backfill_keeps_reads_exact_and_rebuilds_the_rollups(
        client: Any, drain: Any, pool_conn: Any, make_client: Any, settings: Settings, stores: Any,
        tmp_path: Path) -> None:
    messages = _messages()
    for at in range(0, len(messages), 100):
        response = await client.post("/analytics/v1/batch", json={"batch": messages[at:at + 100]},
                                     headers={"Authorization": f"Bearer {settings.write_keys[0]}"})
        assert response.status == 200, await response.text()
    await drain()
    while await materialize(pool_conn, retention_days=settings.retention_days):
        pass
    expected = await _answers(client)
    assert expected["/analytics/api/pageviews"]["data"]["pageviews"] > 0
    assert expected["/analytics/funnel"]["steps"][1]["users"] > 0
    assert sum(day["sessionCount"] for day in expected["/analytics/sessions"]["data"]) > 0

    upgraded = _release_1_1_1_copy(stores)
    for table in ROLLUPS:
        assert pg_execute(upgraded, f"SELECT count(*) FROM {table}") == [(0,)]
    upgraded_client = await make_client(dataclasses.replace(settings, database_url=upgraded, data_dir=tmp_path))
    # before the first batch every hour is pending: read from raw events
    assert await _answers(upgraded_client) == expected
    async with aiopg.connect(upgraded) as conn:
        [state] = await backfills(conn)
        assert (state.name, state.position, state.finished_at, state.batches) == ("rollups_1_2", None, None, 0)
        # two batches: the newest day, then 5 hours of the day before (the rest of it and the older ones pending)
        first = await run_batch(conn, settings.retention_days)
        second = await run_batch(conn, settings.retention_days, hours=5)
        assert first is not None and second is not None and second.finished_at is None
        assert second.batches == 2 and second.position == first.position - timedelta(hours=5)
        assert first.position.astimezone(UTC).hour == 0
        assert await _answers(upgraded_client) == expected
        # to the end: one batch per day of the partitions, then nothing more
        done = second
        for hours in (0, 100, *[24] * 1000):  # the partitions other tests of this database made count too
            if (state := await run_batch(conn, settings.retention_days, hours=hours)) is None:
                break
            done = state
        assert done.finished_at is not None and done.position == done.lo
        # one batch per day from the newest partition's end back to lo (days without a partition too: other tests
        # of this database may leave gaps), two more for the day cut at 5 hours and at 1 (hours=0 is clamped to 1,
        # 100 to the rest of that day)
        bounds = pg_execute(upgraded, """
            SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'np_analytics_events'::regclass""")
        newest = max(date.fromisoformat(bound.split("'")[1][:10]) for (bound,) in bounds) + timedelta(days=1)
        assert done.batches == 2 + (newest - done.lo.astimezone(UTC).date()).days
        assert await run_batch(conn, settings.retention_days) is None
    assert await _answers(upgraded_client) == expected
    for table in ROLLUPS:  # the same rollups as the aggregator built from the same events
        assert _rows(upgraded, table) == _rows(settings.database_url, table), table
    health = await (await upgraded_client.get("/analytics/health",
                                              headers={"Authorization": f"Bearer {SECRET}"})).json()
    [progress] = health["backfills"]
    assert progress["name"] == "rollups_1_2" and progress["finished"] is True
    assert progress["batches"] == done.batches and progress["hours"] == done.hours > 0
    drop_databases(stores, "backfill_from_1_1_1")
