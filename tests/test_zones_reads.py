"""tz on the reads whose rows are periods (/trends, /metrics, /sessions, /retention, /sites, /export): every one
agrees exactly with a plain-Python reference over the same events in UTC, America/New_York (around its latest DST
change: a 23- or 25-hour day, found with zoneinfo from now) and zones with a 30- and a 45-minute offset; from raw
events (every hour dirty), after the aggregator ran, and with the raw rows deleted (the rollups only: exact where
a read assembles whole hours; store/rollups/zones.py states what a split hour of a 30/45-minute zone does then).
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nself_analytics.store.partitions import ensure_partitions
from nself_analytics.store.rollups.aggregates import materialize
from nself_analytics.store.rollups.zones import split_hours

from .queries_support import Ev, day_of, periods_between, ref_metrics, ref_retention, ref_sessions
from .store_writes import write_events

NEW_YORK = ZoneInfo("America/New_York")
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"]
WHOLE_HOURS = {"UTC", "America/New_York"}
NAMES = ["play", "stop", "signup", "use"]
SITES = ["a.example", "b.example"]
HOUR = timedelta(hours=1)


def latest_dst_day(now: datetime) -> date:
    """The latest New York day before today that is not 24 hours long (a DST change), within the past year."""
    day = now.astimezone(NEW_YORK).date() - timedelta(days=1)
    for _ in range(370):
        length = (datetime.combine(day + timedelta(days=1), time.min, NEW_YORK).astimezone(UTC)
                  - datetime.combine(day, time.min, NEW_YORK).astimezone(UTC))
        if length != timedelta(days=1):
            return day
        day -= timedelta(days=1)
    raise AssertionError("no DST change in New York within a year")


NOW = datetime.now(UTC).replace(microsecond=0)
DST_DAY = latest_dst_day(NOW)
FIRST, LAST = DST_DAY - timedelta(days=2), DST_DAY + timedelta(days=2)
RANGE = {"start_date": FIRST.isoformat(), "end_date": LAST.isoformat()}


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, ZoneInfo(tz))


def make_events() -> tuple[list[Ev], list[dict[str, Any]]]:
    """Events every 15 minutes (about 40% of the slots) from two days before the range to six days after it (never
    later than an hour ago), plus one at every zone's local midnight of those days and one a minute before it; and
    page views of two sites. Returns (events as the references read them, the rows written)."""
    rng = random.Random(24)
    start = datetime.combine(FIRST - timedelta(days=2), time.min, UTC)
    end = min(datetime.combine(LAST + timedelta(days=6), time.min, UTC), NOW - HOUR)
    instants = [start + timedelta(minutes=15 * k) for k in range(int((end - start) / timedelta(minutes=15)))]
    instants = [t for t in instants if rng.random() < 0.4]
    day = FIRST - timedelta(days=2)
    while day <= LAST + timedelta(days=6):
        for tz in ZONES:
            midnight = local_midnight(day, tz)
            instants += [t.astimezone(UTC) for t in (midnight, midnight - timedelta(minutes=1)) if start <= t < end]
        day += timedelta(days=1)
    events, rows = [], []
    for n, ts in enumerate(sorted(instants)):
        user = rng.randrange(8)
        anonymous = rng.random() < 0.2
        bot = rng.random() < 0.05
        if rng.random() < 0.25:  # a page view of a site
            ev = Ev(None, ts, "$pageview", anon=f"v{user}", bot=bot)
            rows.append({**ev.row(), "site": SITES[user % 2], "path": "/", "session_id": f"s{user}-{ts:%j}"})
        else:
            ev = Ev(None if anonymous else f"u{user}", ts, rng.choice(NAMES), anon=f"a{user}" if anonymous else None,
                    bot=bot)
            rows.append(ev.row())
        events.append(ev)
        assert n < 5000
    return events, rows


EVENTS, ROWS = make_events()


def bucket_label(ts: datetime, interval: str, tz: str) -> str:
    """The label of the bucket holding ``ts`` in zone ``tz`` (the answer's bucket format)."""
    local = ts.astimezone(ZoneInfo(tz))
    if interval == "hour":
        start = ts - timedelta(minutes=local.minute, seconds=local.second)
        return (start.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00Z") if tz == "UTC"
                else start.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds"))
    day = local.date()
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    return day.isoformat()


def ref_trend_counts(events: list[Ev], names: list[str], first: date, last: date, interval: str,
                     tz: str) -> dict[str, dict[str, int]]:
    """{event: {bucket label: count}} of the non-bot events of ``names`` in the days [first, last] of ``tz``."""
    start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    out: dict[str, dict[str, int]] = {name: defaultdict(int) for name in names}
    for e in events:
        if e.event in names and not e.bot and start <= e.ts < end:
            out[e.event][bucket_label(e.ts, interval, tz)] += 1
    return {name: dict(counts) for name, counts in out.items()}


def placed_by_hour(events: list[Ev], tz: str, first: date, last: date, unit: str) -> list[Ev]:
    """The rule for a split hour of a 30/45-minute zone whose raw events are gone (store/trends.py): its events count
    at the hour's start."""
    start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    split = set(split_hours(start, end, tz, unit))
    out = []
    for e in events:
        hour = e.ts.replace(minute=0, second=0)
        out.append(Ev(e.user, hour, e.event, anon=e.anon, bot=e.bot) if hour in split else e)
    return out


def ref_sites(events: list[Ev], rows: list[dict[str, Any]], tz: str) -> list[dict[str, Any]]:
    start, end = local_midnight(FIRST, tz), local_midnight(LAST + timedelta(days=1), tz)
    seen: dict[str, list[datetime]] = defaultdict(list)
    for e, row in zip(events, rows, strict=True):
        if row.get("site") and not e.bot and start <= e.ts < end:
            seen[row["site"]].append(e.ts)
    ranked = sorted(seen, key=lambda site: (-len(seen[site]), site))
    return [{"site": site, "pageviews": len(seen[site]),
             "first_seen": min(seen[site]).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "last_seen": max(seen[site]).strftime("%Y-%m-%dT%H:%M:%SZ")} for site in ranked]


async def get(client: Any, auth: Any, path: str, **params: str) -> Any:
    response = await client.get(f"/analytics/{path}", headers=auth["secret"], params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def load(pool_conn: Any, state: str) -> None:
    await ensure_partitions(pool_conn, {e.ts.astimezone(UTC).date() for e in EVENTS})
    for k in range(0, len(ROWS), 500):
        await write_events(pool_conn, ROWS[k:k + 500], [])
    if state == "raw":
        return
    while await materialize(pool_conn, retention_days=36500):
        pass
    if state == "rollups":  # the raw rows go, as pruning drops them: the reads have the rollups only
        async with pool_conn.cursor() as cur:
            await cur.execute("DELETE FROM np_analytics_events")


def test_the_data_has_a_dst_day_and_split_hours() -> None:
    # the test is about these: a New York day of 23 or 25 hours in the range, events at every zone's midnights
    length = (local_midnight(DST_DAY + timedelta(days=1), "America/New_York").astimezone(UTC)
              - local_midnight(DST_DAY, "America/New_York").astimezone(UTC))
    assert length in (timedelta(hours=23), timedelta(hours=25)) and FIRST < DST_DAY < LAST
    kolkata = {e.ts for e in EVENTS} & {local_midnight(FIRST, "Asia/Kolkata").astimezone(UTC)}
    assert kolkata and split_hours(local_midnight(FIRST, "Asia/Kolkata"), local_midnight(LAST, "Asia/Kolkata"),
                                   "Asia/Kolkata", "day")
    assert not split_hours(local_midnight(FIRST, "America/New_York"), local_midnight(LAST, "America/New_York"),
                           "America/New_York", "hour")


@pytest.mark.parametrize("state", ["raw", "aggregated", "rollups"])
async def test_trends_and_metrics_in_every_zone(client: Any, auth: Any, pool_conn: Any, state: str) -> None:
    await load(pool_conn, state)
    for tz in ZONES:
        # counts read the hour aggregates: with the rollups only, a split hour counts at its start
        exact = state != "rollups" or tz in WHOLE_HOURS
        for interval in ("day", "week"):
            body = await get(client, auth, "trends", events="play,use", interval=interval, tz=tz, **RANGE)
            assert body["tz"] == tz and (body["start_date"], body["end_date"]) == (FIRST.isoformat(), LAST.isoformat())
            counted_i = placed_by_hour(EVENTS, tz, FIRST, LAST, interval) if state == "rollups" else EVENTS
            want = ref_trend_counts(counted_i, ["play", "use"], FIRST, LAST, interval, tz)
            for series in body["series"]:
                got = dict(zip(body["buckets"], series["data"], strict=True))
                assert {k: v for k, v in got.items() if v} == want[series["event"]], (tz, interval, series["event"])
            if exact:
                assert want == ref_trend_counts(EVENTS, ["play", "use"], FIRST, LAST, interval, tz)
        # the DST day by the hour: 23 or 25 buckets in New York, each hour's count
        day = {"start_date": DST_DAY.isoformat(), "end_date": DST_DAY.isoformat()}
        hourly = await get(client, auth, "trends", events="play", interval="hour", tz=tz, **day)
        hours = (local_midnight(DST_DAY + timedelta(days=1), tz).astimezone(UTC)
                 - local_midnight(DST_DAY, tz).astimezone(UTC)) // HOUR
        assert len(hourly["buckets"]) == hours and len(set(hourly["buckets"])) == hours
        # (every hour of a 30/45-minute zone is split: with the rollups only, its events count at its start)
        want_hours = ref_trend_counts(placed_by_hour(EVENTS, tz, DST_DAY, DST_DAY, "hour") if state == "rollups"
                                      else EVENTS, ["play"], DST_DAY, DST_DAY, "hour", tz)["play"]
        got_hours = dict(zip(hourly["buckets"], hourly["series"][0]["data"], strict=True))
        assert want_hours and {k: v for k, v in got_hours.items() if v} == want_hours, tz
        if state != "rollups":  # users: raw events (never after pruning)
            users = await get(client, auth, "trends", events="use", measure="users", tz=tz, **RANGE)
            start, end = local_midnight(FIRST, tz), local_midnight(LAST + timedelta(days=1), tz)
            per_day: dict[str, set[str]] = defaultdict(set)
            for e in EVENTS:
                if e.event == "use" and not e.bot and start <= e.ts < end and e.who:
                    per_day[bucket_label(e.ts, "day", tz)].add(e.who)
            got = dict(zip(users["buckets"], users["series"][0]["data"], strict=True))
            assert {k: v for k, v in got.items() if v} == {k: len(v) for k, v in per_day.items()}, tz
        for group_by in ("day", "week", "month"):
            body = await get(client, auth, "metrics", group_by=group_by, tz=tz, **RANGE)
            assert body["tz"] == tz
            counts = ref_metrics(placed_by_hour(EVENTS, tz, FIRST, LAST, group_by) if state == "rollups" else EVENTS,
                                 FIRST, LAST, group_by, tz=tz)
            assert [row["date"] for row in body["data"]] == [p.isoformat() for p in
                                                             periods_between(FIRST, LAST, group_by)]
            for row in body["data"]:
                want_row = counts.get(date.fromisoformat(row["date"]), {})
                assert {k: v for k, v in row["counts"].items() if v} == want_row, (tz, group_by, row["date"])
            if exact:
                assert counts == ref_metrics(EVENTS, FIRST, LAST, group_by, tz=tz)
            if state != "rollups":  # one user's events: raw
                mine = await get(client, auth, "metrics", group_by=group_by, tz=tz, user_id="u1", **RANGE)
                want_user = ref_metrics(EVENTS, FIRST, LAST, group_by, user="u1", tz=tz)
                for row in mine["data"]:
                    assert ({k: v for k, v in row["counts"].items() if v}
                            == want_user.get(date.fromisoformat(row["date"]), {})), (tz, group_by)


@pytest.mark.parametrize("state", ["raw", "aggregated", "rollups"])
async def test_sessions_retention_and_sites_in_every_zone(client: Any, auth: Any, pool_conn: Any,
                                                          state: str) -> None:
    await load(pool_conn, state)
    for tz in ZONES:
        # sessions: the event-times rollup holds exact times, so every zone is exact, raw rows or not
        for group_by in ("day", "week"):
            body = await get(client, auth, "sessions", group_by=group_by, tz=tz, **RANGE)
            assert body["tz"] == tz
            want = ref_sessions(EVENTS, FIRST, LAST, group_by, tz=tz)
            assert want, "the data has sessions"
            for row in body["data"]:
                count, total = want.get(date.fromisoformat(row["date"]), (0, 0.0))
                assert (row["sessionCount"], row["totalDuration"]) == (count, pytest.approx(total, abs=1e-3)), tz
        # retention: the activity rollup is per UTC day, so another zone reads raw events (none left: rollups)
        if state != "rollups" or tz == "UTC":
            for start_event in (None, "signup"):
                extra = {"start_event": start_event} if start_event else {}
                body = await get(client, auth, "retention", period="day", periods="4", tz=tz, **extra, **RANGE)
                assert body["tz"] == tz
                want = ref_retention(EVENTS, FIRST, LAST, "day", 4, start_event, None, tz=tz)
                assert want, "the data has cohorts"
                today = NOW.astimezone(ZoneInfo(tz)).date()
                got = {row["cohort"]: row["retained"] for row in body["data"]}
                expected = {c.isoformat(): want.get(c, [0] * 4)[:max(0, min(4, (today - c).days + 1))]
                            for c in periods_between(FIRST, LAST, "day") if c >= min(want)}
                assert got == expected, (tz, start_event)
        # sites: whole UTC days from the day rows, whole hours from the fragments, the half-hour edges of a
        # 30/45-minute zone from raw page views (gone with the raw rows: the web reads' rule)
        body = await get(client, auth, "sites", tz=tz, **RANGE)
        kept = EVENTS
        if state == "rollups" and tz not in WHOLE_HOURS:
            start, end = local_midnight(FIRST, tz), local_midnight(LAST + timedelta(days=1), tz)
            edges = {start.astimezone(UTC).replace(minute=0), end.astimezone(UTC).replace(minute=0)}
            kept = [Ev(None, e.ts, e.event, bot=True) if e.ts.replace(minute=0, second=0) in edges else e
                    for e in EVENTS]
        want_sites = ref_sites(kept, ROWS, tz)
        assert want_sites and body["data"] == want_sites, tz


async def test_export_takes_the_days_of_its_zone(client: Any, auth: Any, pool_conn: Any) -> None:
    await load(pool_conn, "raw")
    for tz in ZONES:
        day = {"start_date": DST_DAY.isoformat(), "end_date": DST_DAY.isoformat()}
        response = await client.get("/analytics/export", headers=auth["secret"], params={**day, "tz": tz})
        assert response.status == 200, await response.text()
        lines = [json.loads(line) for line in (await response.text()).splitlines() if line]
        ids = Counter(line["messageId"] for line in lines if line.get("type") != "identify")
        want = {e.message_id for e in EVENTS if day_of(e.ts, tz) == DST_DAY}
        assert set(ids) == want and max(ids.values()) == 1, tz


@pytest.mark.parametrize("path", ["trends?events=a", "metrics", "sessions", "retention", "sites",
                                  "export?start_date=2020-01-01&end_date=2020-01-01"])
@pytest.mark.parametrize("tz", ["Mars/Olympus", "localtime", "../../etc", "../../etc/passwd", "x" * 65,
                                "America/New_York" + "/x" * 30, "UTC\x00", " "])
async def test_a_bad_zone_is_a_400(client: Any, auth: Any, path: str, tz: str) -> None:
    route, _, query = path.partition("?")
    params = dict(item.split("=") for item in query.split("&") if item)
    response = await client.get(f"/analytics/{route}", headers=auth["secret"], params={**params, "tz": tz})
    if tz == " ":  # blank: the default zone
        assert response.status == 200, await response.text()
        return
    assert response.status == 400, tz
    body = await response.json()
    assert body["status"] == "error" and ("tz" in body["message"] or "time zone" in body["message"])
