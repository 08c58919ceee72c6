"""The definition of every web metric under filters, in plain Python (docs/web-metrics.md). Imports nothing of
the code under test: it states what the /api/* web reads answer over a list of page-view rows (the dicts the
drain writes: ts, site, event, session_id, path, referrer, device, ...).

1. The page views of the read: the site's ``$pageview``/``$screen`` rows in [start, end), bots only with
   include_bots.
2. Sessions: page views grouped by session id; one without a session id belongs to the session of its
   visitor's UTC day ("~" + user id, anonymous id or IP hash + "~" + day). A session's page views are
   ordered by time, then path (bytes), then message id.
3. A session's facts are those of its first page view (referrer domain: "Direct / None" when it has none
   or it is the site's own; device, browser, OS, country, language, screen bucket, hostname, UTM), its
   entry page (first path) and exit page (the last page view: latest time, then largest path).
4. Session filters keep the sessions whose fact equals the value; a page filter (``path``, or ``goal=path:/x``)
   keeps the sessions with a page view of that path; an event filter (``event``, or ``goal=event:name``) keeps
   the sessions with an event of that name in the range (the site's, bots only with include_bots; the event
   belongs to the session its session key names). All filters given must hold.
5. On the selected sessions: sessions, visitors, bounces (sessions of one page view), durations (last minus
   first page view), views per session are those of the whole sessions; the counted page views are all
   their page views, or under a page filter those of that path. A row of a breakdown counts the counted
   page views of its value and the sessions with one; pages and the hours/days of the timeseries are per
   page view (in the read's time zone, by the UTC hour the page view falls in), every other dimension is
   the session's fact.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DIRECT = "Direct / None"
SCREENS = [("<576", 0, 575), ("576-767", 576, 767), ("768-991", 768, 991), ("992-1199", 992, 1199),
           (">=1200", 1200, None)]
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
SESSION_FILTERS = ("referrer", "device", "browser", "os", "country", "language", "screen", "hostname", *UTM)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

Person = Callable[[str, str], str]


def domain(referrer: str | None) -> str | None:
    if not referrer or not _SCHEME.match(referrer):
        return None
    host = re.split(r"[/?#]", referrer.split("://", 1)[1])[0].rsplit("@", 1)[-1].split(":")[0]
    return re.sub(r"^www\.", "", host.lower())


def screen(width: int | None) -> str | None:
    if width is None:
        return None
    return next(label for label, _, hi in SCREENS if hi is None or width <= hi)


def ts(h: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(h["ts"])


def session_key(h: dict[str, Any]) -> str:
    if h.get("session_id") is not None:
        return str(h["session_id"])
    who = h.get("user_id") or h.get("anonymous_id") or h.get("ip_hash") or ""
    return f"~{who}~{ts(h).astimezone(UTC).date().isoformat()}"


class Session:
    """One session's page views in the range, and its facts."""

    def __init__(self, key: str, views: list[dict[str, Any]], site: str) -> None:
        self.key = key
        self.views = sorted(views, key=lambda h: (ts(h), (h["path"] or "").encode(), h.get("message_id", "")))
        first = self.views[0]
        own = re.sub(r"^www\.", "", site)
        ref = domain(first.get("referrer"))
        props = first.get("properties") or {}
        self.facts: dict[str, str | None] = {
            "referrer": DIRECT if not ref or ref == own else ref,
            "device": first.get("device"), "browser": first.get("browser"), "os": first.get("os"),
            "country": first.get("country"), "language": first.get("language"),
            "screen": screen(first.get("screen_width")), "hostname": props.get("hostname", first["site"]),
            **{k: props.get(k) for k in UTM},
        }
        self.entry = first["path"]
        self.exit = max(self.views, key=lambda h: (ts(h), (h["path"] or "").encode()))["path"]
        self.seconds = (max(map(ts, self.views)) - min(map(ts, self.views))).total_seconds()
        ids = [h.get("user_id") or h.get("anonymous_id") or h.get("ip_hash") or key for h in self.views]
        self.visitor = min(ids)


def page_views(hits: Iterable[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    start = datetime.fromtimestamp(int(params["start"]), UTC)
    end = datetime.fromtimestamp(int(params["end"]), UTC)
    bots = params.get("include_bots") == "true"
    return [h for h in hits if h["site"] == params["site"] and h["event"] in ("$pageview", "$screen")
            and start <= ts(h) < end and (bots or not h["is_bot"])]


def sessions(hits: Iterable[dict[str, Any]], params: dict[str, str]) -> list[Session]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for h in page_views(hits, params):
        grouped[session_key(h)].append(h)
    return [Session(k, v, params["site"]) for k, v in grouped.items()]


def wanted(name: str, value: str) -> str:
    """A filter's value as the facts hold it."""
    if name == "referrer":
        return DIRECT if value.lower() == DIRECT.lower() else value.lower().removeprefix("www.")
    if name == "country":
        return value.upper()
    if name == "hostname":
        return value.lower()
    return value


def page_filter(params: dict[str, str]) -> str | None:
    """The page filter: ``path``, or the path of ``goal=path:/x``."""
    goal = params.get("goal", "")
    return params.get("path") or (goal[len("path:"):] if goal.startswith("path:") else None)


def event_filters(params: dict[str, str]) -> set[str]:
    goal = params.get("goal", "")
    return ({params["event"]} if "event" in params else set()) | (
        {goal[len("event:"):]} if goal.startswith("event:") else set())


def events_of(hits: Iterable[dict[str, Any]], params: dict[str, str], names: set[str]) -> Counter[tuple[str, str]]:
    """(session key, name) -> the site's events of those names in the range."""
    start = datetime.fromtimestamp(int(params["start"]), UTC)
    end = datetime.fromtimestamp(int(params["end"]), UTC)
    bots = params.get("include_bots") == "true"
    return Counter((session_key(h), h["event"]) for h in hits if h["site"] == params["site"] and h["event"] in names
                   and start <= ts(h) < end and (bots or not h["is_bot"]))


def selected(hits: list[dict[str, Any]], params: dict[str, str]) -> list[Session]:
    out = []
    path, names = page_filter(params), event_filters(params)
    found = events_of(hits, params, names)
    for s in sessions(hits, params):
        if any(s.facts[n] != wanted(n, params[n]) for n in SESSION_FILTERS if n in params):
            continue
        if "entry_page" in params and s.entry != params["entry_page"]:
            continue
        if "exit_page" in params and s.exit != params["exit_page"]:
            continue
        if path is not None and not any(h["path"] == path for h in s.views):
            continue
        if any(not found[(s.key, name)] for name in names):
            continue
        out.append(s)
    return out


def counted(s: Session, params: dict[str, str]) -> list[dict[str, Any]]:
    """The page views of a selected session that page-view counts count."""
    path = page_filter(params)
    return [h for h in s.views if path is None or h["path"] == path]


def _rows(pairs: Iterable[tuple[Any, str]]) -> dict[Any, tuple[int, int]]:
    """(value, session key) per counted page view -> {value: (page views, sessions)}."""
    views: Counter[Any] = Counter()
    keys: dict[Any, set[str]] = defaultdict(set)
    for value, key in pairs:
        if value is None or value == "":
            continue
        views[value] += 1
        keys[value].add(key)
    return {v: (n, len(keys[v])) for v, n in views.items()}


def top(rows: dict[Any, tuple[int, int]], key: str, limit: int) -> list[dict[str, Any]]:
    def order(kv: tuple[Any, tuple[int, int]]) -> tuple[int, int, bytes]:
        return -kv[1][0], -kv[1][1], ("" if kv[0] == DIRECT else kv[0]).encode()

    return [{key: k, "pageviews": v[0], "sessions": v[1]} for k, v in sorted(rows.items(), key=order)[:limit]]


def _local(h: dict[str, Any], tz: str) -> datetime:
    """The start of the UTC hour of a page view, in the read's zone."""
    return ts(h).astimezone(UTC).replace(minute=0, second=0, microsecond=0).astimezone(ZoneInfo(tz))


def filtered(params: dict[str, str]) -> bool:
    """Whether a read has a filter (a session, page, entry, exit or event filter)."""
    return bool(page_filter(params) or event_filters(params) or "entry_page" in params or "exit_page" in params
                or any(n in params for n in SESSION_FILTERS))


def hourly_week(hits: list[dict[str, Any]], params: dict[str, str], person: Person) -> list[dict[str, Any]]:
    """The unfiltered peak-hours/week: per ISO weekday and hour of ``tz``, summed over its UTC hours, each hour's
    page views, sessions with one, and distinct visitors (persons of each (session, bot flag)'s smallest id in
    the hour, as the fragments keep them)."""
    tz = params.get("tz", "UTC")
    frags: dict[tuple[datetime, str, bool], str] = {}
    views: Counter[datetime] = Counter()
    for h in page_views(hits, params):
        hour = ts(h).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        key = session_key(h)
        who = h.get("user_id") or h.get("anonymous_id") or h.get("ip_hash") or key
        fragment = (hour, key, bool(h["is_bot"]))
        frags[fragment] = min(frags.get(fragment, who), who)
        views[hour] += 1
    persons: dict[datetime, set[str]] = defaultdict(set)
    keys: dict[datetime, set[str]] = defaultdict(set)
    for (hour, key, _bot), visitor in frags.items():
        persons[hour].add(person(visitor, "primary"))
        keys[hour].add(key)
    cells: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for hour, n in views.items():
        local = hour.astimezone(ZoneInfo(tz))
        cell = cells[(local.isoweekday(), local.hour)]
        cell[0] += len(persons[hour])
        cell[1] += n
        cell[2] += len(keys[hour])
    return [{"weekday": d, "hour": hr, "visitors": cells.get((d, hr), [0, 0, 0])[0],
             "pageviews": cells.get((d, hr), [0, 0, 0])[1], "sessions": cells.get((d, hr), [0, 0, 0])[2]}
            for d in range(1, 8) for hr in range(24)]


FACT_BREAKDOWNS = {"referrers": "referrer", "devices": "device", "languages": "language", "browsers": "browser",
                   "os": "os", "countries": "country", "hostnames": "hostname", "utm-sources": "utm_source",
                   "utm-mediums": "utm_medium", "utm-campaigns": "utm_campaign", "utm-terms": "utm_term",
                   "utm-contents": "utm_content"}


def reference(name: str, hits: list[dict[str, Any]], params: dict[str, str], person: Person) -> Any:
    """What GET /api/{name} answers as its ``data`` (visitors exact; ``person(id, account)`` resolves ids)."""
    chosen = selected(hits, params)
    limit = int(params.get("limit", 10))
    tz = params.get("tz", "UTC")
    per_view = [(h, s) for s in chosen for h in counted(s, params)]
    if name == "pageviews":
        return {"pageviews": len(per_view), "sessions": len(chosen),
                "visitors": len({person(s.visitor, "primary") for s in chosen})}
    if name in FACT_BREAKDOWNS:
        fact = FACT_BREAKDOWNS[name]
        rows = _rows((s.facts[fact], s.key) for h, s in per_view)
        return top(rows, fact, limit)
    if name == "pages":
        return top(_rows((h["path"], s.key) for h, s in per_view), "path", limit)
    if name == "timeseries":
        zone = ZoneInfo(tz)
        start = datetime.fromtimestamp(int(params["start"]), UTC).astimezone(zone)
        last = (datetime.fromtimestamp(int(params["end"]), UTC) - timedelta(microseconds=1)).astimezone(zone)
        days = _rows((_local(h, tz).date().isoformat(), s.key) for h, s in per_view)
        out, day = [], start.date()
        while day <= last.date():
            views, n = days.get(day.isoformat(), (0, 0))
            out.append({"date": day.isoformat(), "pageviews": views, "sessions": n})
            day += timedelta(days=1)
        return out
    if name == "peak-hours":
        hours = _rows((_local(h, tz).hour, s.key) for h, s in per_view)
        return [{"hour": hr, "pageviews": hours.get(hr, (0, 0))[0], "sessions": hours.get(hr, (0, 0))[1]}
                for hr in range(24)]
    if name == "peak-hours/week" and not filtered(params):
        return hourly_week(hits, params, person)
    if name == "peak-hours/week":  # per ISO weekday and hour: counted page views, their sessions and persons
        views: Counter[tuple[int, int]] = Counter()
        keys: dict[tuple[int, int], set[str]] = defaultdict(set)
        persons: dict[tuple[int, int], set[str]] = defaultdict(set)
        for h, s in per_view:
            local = _local(h, tz)
            cell = (local.isoweekday(), local.hour)
            views[cell] += 1
            keys[cell].add(s.key)
            persons[cell].add(person(s.visitor, "primary"))
        return [{"weekday": d, "hour": hr, "visitors": len(persons[(d, hr)]), "pageviews": views[(d, hr)],
                 "sessions": len(keys[(d, hr)])} for d in range(1, 8) for hr in range(24)]
    if name == "screen-widths":
        buckets = _rows((s.facts["screen"], s.key) for h, s in per_view)
        return [{"bucket": label, "min": lo, "max": hi, "pageviews": buckets.get(label, (0, 0))[0],
                 "sessions": buckets.get(label, (0, 0))[1]} for label, lo, hi in SCREENS]
    if name in ("entry-pages", "exit-pages", "bounce-rates"):
        pick: Callable[[Session], str] = (lambda s: s.exit) if name == "exit-pages" else (lambda s: s.entry)
        count: Counter[str] = Counter(pick(s) for s in chosen)
        bounces: Counter[str] = Counter(pick(s) for s in chosen if len(s.views) == 1)
        rows = sorted(count.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:limit]
        if name == "bounce-rates":
            return [{"path": p, "sessions": n, "bounces": bounces[p], "bounce_rate": round(bounces[p] / n, 4)}
                    for p, n in rows]
        return [{"path": p, "sessions": n} for p, n in rows]
    if name == "session-duration":
        n = len(chosen)
        durations = [s.seconds for s in chosen]
        bounced = sum(1 for s in chosen if len(s.views) == 1)
        return {"sessions": n, "average_seconds": round(statistics.fmean(durations), 3) if n else 0.0,
                "median_seconds": round(statistics.median(durations), 3) if n else 0.0,
                "pageviews_per_session": round(sum(len(s.views) for s in chosen) / n, 3) if n else 0.0,
                "bounces": bounced, "bounce_rate": round(bounced / n, 4) if n else 0.0}
    raise AssertionError(name)


def goal_path(hits: list[dict[str, Any]], params: dict[str, str], path: str, person: Person) -> tuple[int, int]:
    """A page goal under the filters: its page views in the selected sessions, and their persons with one."""
    chosen = selected(hits, params)
    with_goal = [s for s in chosen if any(h["path"] == path for h in s.views)]
    return (sum(1 for s in with_goal for h in s.views if h["path"] == path),
            len({person(s.visitor, "primary") for s in with_goal}))


def goal_event(hits: list[dict[str, Any]], params: dict[str, str], name: str, person: Person) -> tuple[int, int]:
    """An event goal under filters: its events in the selected sessions, and their persons with one."""
    chosen = selected(hits, params)
    found = events_of(hits, params, {name})
    with_goal = [s for s in chosen if found[(s.key, name)]]
    return sum(found[(s.key, name)] for s in with_goal), len({person(s.visitor, "primary") for s in with_goal})
