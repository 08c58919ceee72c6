"""Realistic synthetic events for benchmarks, and a COPY loader into np_analytics_events.

``generate_events(n, users, days, seed)`` yields rows in the order of ``COLUMNS``: users join on a
random day, their activity follows a heavy-tailed distribution, and each visit is a short sequence
(login, page views, searches, play/pause/stop, a cart that sometimes ends in a purchase), so funnels,
retention and sessions have something real to find. ~20 event names, ``plan``/``platform``
properties, a few anonymous visitors. Deterministic for a seed.

``load_events(database_url, rows)`` creates the daily partitions, COPYs the rows in, and marks their
hours dirty as the drain would (so the aggregator has work to do).
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

import aiopg
import psycopg2

from nself_analytics.config import Settings
from nself_analytics.store.partitions import ensure_partitions

__all__ = ["COLUMNS", "EVENT_NAMES", "generate_events", "load_events"]

COLUMNS = ("ts", "message_id", "source_account_id", "type", "event", "user_id", "anonymous_id", "session_id",
           "properties")

# background events a visit sprinkles in, with weights
_FILLER = {"page_view": 30, "screen_view": 10, "click": 10, "search": 6, "like": 3, "comment": 1.5, "share": 1,
           "error": 2, "notification_opened": 2, "settings_changed": 0.7, "invite": 0.5}
EVENT_NAMES = ("signup", "activate", "login", "logout", "add_to_cart", "checkout_started", "purchase",
               "subscription.created", "play", "pause", "stop", *_FILLER)
_PLANS = ("free", "free", "free", "pro", "team")
_PLATFORMS = ("web", "web", "ios", "android")


def _visit(rng: random.Random, first: bool) -> list[tuple[str, float]]:
    """(event, seconds after the visit start) of one visit."""
    names, weights = list(_FILLER), list(_FILLER.values())
    out: list[tuple[str, float]] = []
    t = 0.0

    def add(name: str, gap: float) -> None:
        nonlocal t
        t += rng.expovariate(1 / gap)
        out.append((name, t))

    if first:
        add("signup", 5)
        if rng.random() < 0.6:
            add("activate", 300)
    else:
        add("login", 2)
    for _ in range(rng.randint(1, 6)):
        add(rng.choices(names, weights)[0], 40)
    if rng.random() < 0.35:  # media: play, maybe pause/play, stop (sometimes never stopped)
        add("play", 20)
        if rng.random() < 0.3:
            add("pause", 200)
            add("play", 60)
        if rng.random() < 0.9:
            add("stop", 600)
    if rng.random() < 0.25:
        add("add_to_cart", 60)
        if rng.random() < 0.5:
            add("checkout_started", 90)
            if rng.random() < 0.6:
                add("purchase", 120)
                if rng.random() < 0.1:
                    add("subscription.created", 10)
    if rng.random() < 0.2:
        add("logout", 30)
    return out


def generate_events(n: int, users: int, days: int, seed: int = 1,
                    now: datetime | None = None, account: str = "primary") -> Iterator[tuple[object, ...]]:
    """Yield about ``n`` event rows (``COLUMNS`` order) for ``users`` users over the last ``days`` days."""
    rng = random.Random(seed)
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    begin = end - timedelta(days=days)
    span = (end - begin).total_seconds()
    activity = [rng.paretovariate(1.3) for _ in range(users)]
    per_unit = n / sum(activity)
    produced = 0
    for index, weight in enumerate(activity):
        budget = max(1, round(weight * per_unit))
        user_id = f"user-{seed}-{index}"
        anonymous = rng.random() < 0.1  # visitors who never log in
        joined = rng.random() * span * 0.9
        plan, platform = rng.choice(_PLANS), rng.choice(_PLATFORMS)
        props = json.dumps({"plan": plan, "platform": platform})
        first, count = True, 0
        while count < budget:
            visit_start = joined if first else joined + rng.random() * (span - joined)
            session = uuid.UUID(int=rng.getrandbits(128)).hex[:16]
            for name, offset in _visit(rng, first):
                ts = begin + timedelta(seconds=min(visit_start + offset, span - 1))
                yield (ts.isoformat(), str(uuid.UUID(int=rng.getrandbits(128), version=4)), account, "track", name,
                       None if anonymous else user_id, f"anon-{seed}-{index}", session, props)
                count += 1
                produced += 1
                if count >= budget or produced >= n:
                    break
            first = False
            if produced >= n:
                return


def _csv_field(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return '"' + text.replace('"', '""') + '"'


def load_events(database_url: str, rows: Iterable[tuple[object, ...]], chunk: int = 100_000,
                columns: tuple[str, ...] = COLUMNS) -> int:
    """COPY ``rows`` (``columns`` order, ts first) into np_analytics_events; mark hours dirty; return the count."""
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    total = 0
    days: set[date] = set()
    copy = f"COPY np_analytics_events ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    try:
        buffer: list[tuple[object, ...]] = []

        def flush() -> None:
            new_days = {datetime.fromisoformat(str(r[0])).astimezone(UTC).date() for r in buffer} - days
            if new_days:
                asyncio.run(_ensure(database_url, new_days))
                days.update(new_days)
            text = "".join(",".join(_csv_field(v) for v in r) + "\n" for r in buffer)
            with conn.cursor() as cur:
                cur.copy_expert(copy, io.StringIO(text))
            buffer.clear()

        for row in rows:
            buffer.append(row)
            total += 1
            if len(buffer) >= chunk:
                flush()
        if buffer:
            flush()
        with conn.cursor() as cur:
            cur.execute("""
                INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
                SELECT DISTINCT source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                FROM np_analytics_events ON CONFLICT DO NOTHING""")
            # the drain records each stored event's message id for the de-duplication window (migration 0080):
            # the events of the last window, as if received at their time, so the bench counts that table too
            cur.execute("""
                INSERT INTO np_analytics_message_ids (source_account_id, message_id, received_at)
                SELECT source_account_id, message_id, ts FROM np_analytics_events
                WHERE ts >= now() - make_interval(secs => %s) ON CONFLICT DO NOTHING""", (Settings.dedupe_window,))
            cur.execute("ANALYZE np_analytics_events")
            cur.execute("ANALYZE np_analytics_message_ids")
    finally:
        conn.close()
    return total


async def _ensure(database_url: str, days: set[date]) -> None:
    async with aiopg.connect(database_url) as conn:
        await ensure_partitions(conn, days)
