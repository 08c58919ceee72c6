"""Real-time counter keys in Redis: one key per event (and per event and user) per period bucket.

Written by the ingest script in the same round trip as the stream write; read by /counters and the
quota checks. Buckets are UTC; each period's key expires a little after its period ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .keys import COUNTER_PREFIX

__all__ = ["PERIODS", "counter_key", "increments", "period_bounds"]

# period -> bucket format and TTL of its keys (seconds): long enough to be read through its period.
PERIODS: dict[str, tuple[str, int]] = {
    "minute": ("%Y%m%d%H%M", 120),        # 2 minutes
    "hour": ("%Y%m%d%H", 7_200),          # 2 hours
    "day": ("%Y%m%d", 172_800),           # 2 days
    "month": ("%Y%m", 32 * 86_400 * 2),  # 64 days
    "total": ("", 0),                     # the retention window after its last increment (increments())
}


def counter_key(period: str, event: str, now: datetime, user_id: str | None = None, account: str = "primary") -> str:
    """The key counting ``event`` (for ``user_id`` when given) of ``account`` in the ``period`` bucket of ``now``."""
    fmt, _ttl = PERIODS[period]
    bucket = now.astimezone(UTC).strftime(fmt) if fmt else "all"
    # other accounts than the default get their own key space; length prefixes keep ':' in names unambiguous
    scope = "" if account == "primary" else f"a:{len(account)}:{account}:"
    if user_id is None:
        return f"{COUNTER_PREFIX}{scope}e:{period}:{bucket}:{event}"
    return f"{COUNTER_PREFIX}{scope}u:{period}:{bucket}:{len(event)}:{event}:{user_id}"


def increments(event: str, user_id: str | None, now: datetime, per_user: bool,
               account: str = "primary", total_ttl: int = 90 * 86_400) -> list[tuple[str, int]]:
    """(key, ttl) pairs to increment for one accepted track event. ``total`` keys expire ``total_ttl`` seconds
    (the retention window) after their last increment: a name no longer sent leaves nothing behind."""
    ttls = {p: (total_ttl if p == "total" else ttl) for p, (_f, ttl) in PERIODS.items()}
    pairs = [(counter_key(p, event, now, account=account), ttls[p]) for p in PERIODS if p != "month"]
    if per_user and user_id is not None:
        pairs += [(counter_key(p, event, now, user_id, account), ttls[p]) for p in PERIODS]
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
