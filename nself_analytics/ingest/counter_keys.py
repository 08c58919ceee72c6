"""Real-time counter keys in Redis: one key per event (and per event and user) per period bucket.

Written by the ingest script in the same round trip as the stream write; read by /counters and the
quota checks. Buckets are UTC; each period's key expires a little after its period ends.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from .redis_keys import COUNTER_PREFIX

__all__ = ["PERIODS", "counter_key", "increments", "period_bounds"]

# period -> bucket format and TTL of its keys (seconds): long enough to be read through its period.
PERIODS: dict[str, tuple[str, int]] = {
    "minute": ("%Y%m%d%H%M", 120),        # 2 minutes
    "hour": ("%Y%m%d%H", 7_200),          # 2 hours
    "day": ("%Y%m%d", 172_800),           # 2 days
    "month": ("%Y%m", 32 * 86_400 * 2),  # 64 days
    "total": ("", 0),                     # the retention window after its last increment (increments())
}


@functools.lru_cache(maxsize=8)
def _buckets(minute: int) -> dict[str, str]:
    """Each period's bucket of the UTC minute ``minute`` (Unix seconds // 60): formatted once per minute, not per
    event (strftime per period per event was 8% of /batch, py-spy)."""
    at = datetime.fromtimestamp(minute * 60, UTC)
    return {period: at.strftime(fmt) if fmt else "all" for period, (fmt, _ttl) in PERIODS.items()}


def _bucket(period: str, now: datetime) -> str:
    if period not in PERIODS:
        raise KeyError(period)
    return _buckets(int(now.timestamp()) // 60)[period]


def _scope(account: str) -> str:
    # other accounts than the default get their own key space; length prefixes keep ':' in names unambiguous
    return "" if account == "primary" else f"a:{len(account)}:{account}:"


def counter_key(period: str, event: str, now: datetime, user_id: str | None = None, account: str = "primary") -> str:
    """The key counting ``event`` (for ``user_id`` when given) of ``account`` in the ``period`` bucket of ``now``."""
    bucket = _bucket(period, now)
    if user_id is None:
        return f"{COUNTER_PREFIX}{_scope(account)}e:{period}:{bucket}:{event}"
    return f"{COUNTER_PREFIX}{_scope(account)}u:{period}:{bucket}:{len(event)}:{event}:{user_id}"


_EVENT_PERIODS = tuple(p for p in PERIODS if p != "month")


def increments(event: str, user_id: str | None, now: datetime, per_user: bool,
               account: str = "primary", total_ttl: int = 90 * 86_400) -> list[tuple[str, int]]:
    """(key, ttl) pairs to increment for one accepted track event. ``total`` keys expire ``total_ttl`` seconds
    (the retention window) after their last increment: a name no longer sent leaves nothing behind."""
    buckets = _buckets(int(now.timestamp()) // 60)
    scope = COUNTER_PREFIX + _scope(account)
    pairs = [(f"{scope}e:{p}:{buckets[p]}:{event}", total_ttl if p == "total" else PERIODS[p][1])
             for p in _EVENT_PERIODS]
    if per_user and user_id is not None:
        pairs += [(f"{scope}u:{p}:{buckets[p]}:{len(event)}:{event}:{user_id}",
                   total_ttl if p == "total" else PERIODS[p][1]) for p in PERIODS]
    return pairs


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime | None]:
    """Start and end (exclusive) of the period holding ``now``; ``total`` has no end."""
    now = now.astimezone(UTC)
    if period == "minute":
        start = now.replace(second=0, microsecond=0)
        return start, start + timedelta(minutes=1)
    if period == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if period == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end
    if period == "total":
        return datetime(1970, 1, 1, tzinfo=UTC), None
    raise ValueError(f"unknown period {period!r}")
