"""Helpers of the query tests: events written straight to Postgres (as the drain writes them), and
plain-Python reference implementations of the query semantics of the spec, to compare with."""

from __future__ import annotations

import asyncio
import calendar
import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nself_analytics.store.partitions import ensure_partitions
from nself_analytics.web.params import add_periods, period_floor

from .store_writes import write_events

EVENT_TABLES = ("np_analytics_events, np_analytics_aggregates, np_analytics_aggregate_dirty, np_analytics_users, "
                "np_analytics_activity, np_analytics_seen, np_analytics_event_times, np_analytics_person_map, "
                "np_analytics_message_ids")


def _base(now: datetime) -> datetime:
    """January 1st of the latest year ending before ``now``, with 2025's calendar (not a leap year, Jan 1 a
    Wednesday): the tests name weekdays, ISO weeks, month ends and a DST change of that calendar (Jan 6 a Monday,
    March 9 New York's 23-hour day), so the data moves with the clock but keeps its calendar (at most 11 years back:
    the calendar repeats every 6 or 11 years)."""
    year = now.year - 1  # a whole year in the past: the June "now" of the pruning tests too
    while not (datetime(year, 1, 1).weekday() == 2 and not calendar.isleap(year)):
        year -= 1
    return datetime(year, 1, 1, tzinfo=UTC)


BASE = _base(datetime.now(UTC))


MAX_IDS = 500  # Settings.max_ids_per_person's default


@dataclass
class Ev:
    """One event as the tests think of it."""

    user: str | None
    ts: datetime
    event: str
    props: dict[str, Any] | None = None
    anon: str | None = None
    bot: bool = False
    account: str = "primary"
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def who(self) -> str | None:
        return self.user if self.user is not None else self.anon

    def row(self) -> dict[str, Any]:
        return {"ts": self.ts.isoformat(), "message_id": self.message_id, "source_account_id": self.account,
                "type": "track", "event": self.event, "user_id": self.user, "anonymous_id": self.anon,
                "is_bot": self.bot, "properties": self.props}


@dataclass(frozen=True)
class Link:
    """An identity message: identify (user, anonymous id ``other`` or None) or alias (user, previous id); or one
    of the secret token's explicit operations (never drained): merge (``user``: into, ``other``: from) and split
    (``user``: the distinct id)."""

    kind: str
    user: str
    other: str | None
    account: str = "primary"

    def op(self) -> dict[str, Any]:
        """As the drain hands it to the store."""
        return {"a": self.account, "k": self.kind, "u": self.user, "d": self.other}

    def identify(self) -> dict[str, Any] | None:
        """The user upsert of an identify (it makes ``user`` a known user)."""
        if self.kind != "identify":
            return None
        return {"source_account_id": self.account, "user_id": self.user, "anonymous_id": self.other,
                "traits": {}, "ts": BASE.isoformat()}


def links_of(ids: Sequence[str], max_size: int = 6) -> Any:
    """A hypothesis strategy: identity messages over the distinct ids ``ids``."""
    from hypothesis import strategies as st

    return st.lists(st.builds(Link, st.sampled_from(["identify", "alias"]), st.sampled_from(ids),
                              st.one_of(st.none(), st.sampled_from(ids))), max_size=max_size)


async def insert(conn: Any, events: Sequence[Ev], identifies: Sequence[dict[str, Any]] = (),
                 links: Sequence[Link] = (), max_ids: int = MAX_IDS) -> int:
    """Write events, identify messages and identity links as one drained batch."""
    await ensure_partitions(conn, {e.ts.astimezone(UTC).date() for e in events})
    users = [*identifies, *(row for link in links if (row := link.identify()) is not None)]
    return await write_events(conn, [e.row() for e in events], users, [link.op() for link in links],
                             max_ids=max_ids)


async def reset(conn: Any) -> None:
    """Empty the event tables (inside one hypothesis example)."""
    async with conn.cursor() as cur:
        await cur.execute(f"TRUNCATE {EVENT_TABLES}")


async def run_examples(check: Callable[[Callable[[Coroutine[Any, Any, Any]], Any]], None]) -> None:
    """Run a hypothesis test from an async test: ``check(run)`` runs in a worker thread and each
    example hands its coroutine to ``run``, which runs it on this test's event loop (where the
    client and connection fixtures live) and returns its result."""
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    await asyncio.to_thread(check, run)


def day_of(ts: datetime, tz: str = "UTC") -> date:
    """The date of ``ts`` in zone ``tz`` (IANA)."""
    return ts.astimezone(ZoneInfo(tz)).date()


# --- reference implementations -----------------------------------------------------------------

def ref_persons(links: Iterable[Link], max_ids: int = MAX_IDS) -> dict[tuple[str, str], str]:
    """{(account, distinct id): person} of the linked ids (an id without an entry is its own person).

    The definition of a person, applied in message order:
    - identify(user, anon): anon joins user's person, unless anon is already linked, has ids linked to it,
      or is a known user (the user of an earlier identify): two known users are never merged by identify.
    - alias(user, previous): previous's whole person and user's person become one, unless previous's person is
      identified (one of its ids is a known user: PostHog's rule). The smaller person is re-pointed into the
      larger (a tie: previous's into user's).
    - no person grows past ``max_ids`` ids: a link that would is refused.
    - merge(into, from) (the token's): from's whole person joins into's (whose root stays), identified or not,
      within ``max_ids``.
    - split(id) (the token's): id leaves its person; when id is the root, the other ids stay one person whose
      root is the smallest of them (byte order), unless the person holds more than ``max_ids`` ids.
    """
    person: dict[tuple[str, str], str] = {}
    known: set[tuple[str, str]] = set()

    def members(a: str, root: str) -> list[tuple[str, str]]:
        return [key for key, p in person.items() if key[0] == a and p == root]

    for link in links:
        a, d = link.account, link.other
        target = person.get((a, link.user), link.user)
        if link.kind == "identify":
            known.add((a, link.user))
            if d is None or d in (link.user, target):
                continue
            if (a, d) in person or members(a, d) or (a, d) in known:
                continue
            if 1 + len(members(a, target)) + 1 > max_ids:
                continue
            person[(a, d)] = target
        elif link.kind == "alias":
            if d is None or d == link.user:
                continue
            current = person.get((a, d), d)
            if current == target:
                continue
            if (a, current) in known or any(key in known for key in members(a, current)):
                continue
            size_target, size_current = 1 + len(members(a, target)), 1 + len(members(a, current))
            if size_target + size_current > max_ids:
                continue
            loser, winner = (current, target) if size_current <= size_target else (target, current)
            for key in members(a, loser):
                person[key] = winner
            person[(a, loser)] = winner
        elif link.kind == "merge" and d is not None:
            source = person.get((a, d), d)
            if source == target or 1 + len(members(a, target)) + 1 + len(members(a, source)) > max_ids:
                continue
            for key in members(a, source):
                person[key] = target
            person[(a, source)] = target
        elif link.kind == "split":
            if person.pop((a, link.user), None) is not None:
                continue
            rest = members(a, link.user)
            if not rest or len(rest) >= max_ids:
                continue
            root = min(key[1] for key in rest)
            del person[(a, root)]
            for key in rest:
                if key[1] != root:
                    person[key] = root
    return person


def resolver(links: Iterable[Link] = ()) -> Callable[[str | None, str], str | None]:
    """person(distinct id, account): the person of an id (None stays None)."""
    mapping = ref_persons(links)
    return lambda distinct, account="primary": None if distinct is None else mapping.get((account, distinct), distinct)


def ref_funnel(events: Iterable[Ev], steps: Sequence[str], start: datetime, end: datetime, window: timedelta,
               breakdown: str | None = None, links: Sequence[Link] = ()) -> dict[Any, list[tuple[int, float | None]]]:
    """{group: [(users, median seconds from previous)] per step}; group None is everyone, others are
    breakdown values (a missing property is the value None under the key ('value', None)). Users are persons."""
    person = resolver(links)
    by_user: dict[str, list[Ev]] = defaultdict(list)
    for e in events:
        who = person(e.who, e.account)
        if who is not None and not e.bot:
            by_user[who].append(e)
    best: dict[Any, dict[str, tuple[int, datetime, list[datetime]]]] = defaultdict(dict)
    for user, evs in by_user.items():
        evs.sort(key=lambda e: e.ts)
        for first in evs:
            if first.event != steps[0] or not start <= first.ts < end:
                continue
            times = [first.ts]
            for name in steps[1:]:
                nxt = next((e for e in evs if e.event == name and e.ts > times[-1]), None)
                if nxt is None or nxt.ts - first.ts > window:
                    break
                times.append(nxt.ts)
            groups: list[Any] = [None]
            if breakdown is not None:
                value = (first.props or {}).get(breakdown)
                groups.append(("value", None if value is None else str(value)))
            for group in groups:
                current = best[group].get(user)
                if current is None or (len(times), -first.ts.timestamp()) > (current[0], -current[1].timestamp()):
                    best[group][user] = (len(times), first.ts, times)
    out: dict[Any, list[tuple[int, float | None]]] = {}
    for group in [None, *(g for g in best if g is not None)]:
        rows = []
        for k in range(len(steps)):
            reached = [times for reach, _t0, times in best[group].values() if reach > k]
            median = statistics.median((t[k] - t[k - 1]).total_seconds() for t in reached) if k and reached else None
            rows.append((len(reached), median))
        out[group] = rows
    return out


def period_index(cohort: date, day: date, period: str) -> int:
    """Whole periods from the period starting at ``cohort`` to the one holding ``day``."""
    p = period_floor(day, period)
    if period == "month":
        return (p.year - cohort.year) * 12 + p.month - cohort.month
    return (p - cohort).days // (7 if period == "week" else 1)


def ref_retention(events: Iterable[Ev], first_day: date, last_day: date, period: str, periods: int,
                  start_event: str | None, return_event: str | None,
                  links: Sequence[Link] = (), tz: str = "UTC") -> dict[date, list[int]]:
    """{cohort period start: [size, retained 1, ...]} for cohorts with users (all columns); users are persons;
    days are those of ``tz``."""
    person = resolver(links)
    events = [Ev(person(e.who, e.account), e.ts, e.event, account=e.account) for e in events
              if e.who is not None and not e.bot]
    first: dict[str, datetime] = {}
    for e in events:
        if start_event is None or e.event == start_event:
            first[e.who] = min(first.get(e.who, e.ts), e.ts)  # type: ignore[index]
    cohort_of = {u: period_floor(day_of(t, tz), period) for u, t in first.items()
                 if first_day <= day_of(t, tz) <= last_day}
    retained: dict[date, list[set[str]]] = defaultdict(lambda: [set() for _ in range(periods)])
    for user, cohort in cohort_of.items():
        retained[cohort][0].add(user)
    for e in events:
        cohort = cohort_of.get(e.who)  # type: ignore[arg-type]
        if cohort is None or (return_event is not None and e.event != return_event):
            continue
        k = period_index(cohort, day_of(e.ts, tz), period)
        if 1 <= k < periods:
            retained[cohort][k].add(e.who)  # type: ignore[arg-type]
    return {cohort: [len(s) for s in sets] for cohort, sets in retained.items()}


def ref_metrics(events: Iterable[Ev], first_day: date, last_day: date, group_by: str,
                user: str | None = None, links: Sequence[Link] = (), tz: str = "UTC") -> dict[date, dict[str, int]]:
    """Counts per period (of ``tz``) and event; with ``user``, of the events of that user's person."""
    person = resolver(links)
    out: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in events:
        if e.bot or not first_day <= day_of(e.ts, tz) <= last_day:
            continue
        if user is not None and person(e.who, e.account) != person(user, e.account):
            continue
        out[period_floor(day_of(e.ts, tz), group_by)][e.event] += 1
    return {p: dict(c) for p, c in out.items()}


def ref_sessions(events: Iterable[Ev], first_day: date, last_day: date, group_by: str, start_event: str = "play",
                 stop_event: str = "stop", user: str | None = None,
                 links: Sequence[Link] = (), tz: str = "UTC") -> dict[date, tuple[int, float]]:
    """Per period (of ``tz``): (sessions, total seconds); a stop closes the most recent open start of its user
    (person)."""
    person = resolver(links)
    by_user: dict[str, list[Ev]] = defaultdict(list)
    for e in events:
        who = person(e.who, e.account)
        if who is not None and not e.bot and e.event in (start_event, stop_event):
            if user is None or who == person(user, e.account):
                by_user[who].append(e)
    out: dict[date, tuple[int, float]] = {}
    for evs in by_user.values():
        evs.sort(key=lambda e: (e.ts, e.event != start_event, uuid.UUID(e.message_id)))
        stack: list[datetime] = []
        for e in evs:
            if e.event == start_event:
                stack.append(e.ts)
            elif stack:
                begun = stack.pop()
                if first_day <= day_of(begun, tz) <= last_day:
                    p = period_floor(day_of(begun, tz), group_by)
                    count, total = out.get(p, (0, 0.0))
                    out[p] = (count + 1, total + (e.ts - begun).total_seconds())
    return out


def periods_between(first_day: date, last_day: date, period: str) -> list[date]:
    out, current = [], period_floor(first_day, period)
    while current <= last_day:
        out.append(current)
        current = add_periods(current, period, 1)
    return out
