"""A soak of the hardened data plane: valid traffic mixed with the hostile cases of issue 10, against the real
service (bench/harness.py). Every valid event must be stored exactly once and be visible in Postgres within 5 s
of its 202, throughout; the poison entries must end in the dead-letter stream.

    .venv/bin/python -m bench.soak [--seconds 60] [--senders 4]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import string
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from .harness import SECRET, WRITE_KEY, Harness, progress

VISIBLE_WITHIN_SECONDS = 5.0


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _get(url: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {SECRET}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Soak:
    def __init__(self, harness: Harness, seconds: float, senders: int) -> None:
        self.h = harness
        self.base = harness.base_url + "/analytics"
        self.seconds = seconds
        self.senders = senders
        self.accepted: dict[str, float] = {}  # message id -> time of its 202
        self.lock = threading.Lock()
        self.hostile: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()

    def _valid(self) -> None:
        headers = {"Authorization": f"Bearer {WRITE_KEY}", "Content-Type": "application/json"}
        while not self.stop.is_set():
            ids = [str(uuid.uuid4()) for _ in range(20)]
            body = {"batch": [{"type": "track", "event": "soak", "userId": f"u{random.randrange(500)}",
                               "messageId": m} for m in ids]}
            status = _post(self.base + "/batch", json.dumps(body).encode(), headers)
            now = time.monotonic()
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 202:
                    for m in ids:
                        self.accepted.setdefault(m, now)

    def _count(self, name: str, status: int) -> None:
        with self.lock:
            self.hostile[f"{name} -> {status}"] = self.hostile.get(f"{name} -> {status}", 0) + 1

    def _hostile(self) -> None:
        write = {"Authorization": f"Bearer {WRITE_KEY}", "Content-Type": "application/json"}
        r = redis.Redis.from_url(self.h.redis_url)
        old = (datetime.now(UTC) - timedelta(days=400)).isoformat()
        cases = [
            ("shared context 200 KB", lambda: _post(self.base + "/batch", json.dumps(
                {"context": {"z": [0] * 100_000},
                 "batch": [{"type": "track", "event": "ctx", "userId": "h"} for _ in range(100)]}).encode(), write)),
            ("event older than retention", lambda: _post(self.base + "/track", json.dumps(
                {"event": "old", "userId": "h", "timestamp": old}).encode(), write)),
            ("1970 timestamp, 9999 sentAt", lambda: _post(self.base + "/track", json.dumps(
                {"event": "x", "userId": "h", "timestamp": "1970-01-01T00:00:00Z",
                 "sentAt": "9999-12-31T00:00:00Z"}).encode(), write)),
            ("properties nested 300 deep", lambda: _post(self.base + "/track", json.dumps(
                {"event": "x", "userId": "h", "properties": _nested(300)}).encode(), write)),
            ("corrupt gzip", lambda: _post(self.base + "/track", gzip.compress(b"{}")[:-6] + b"xxxxxx",
                                           {**write, "Content-Encoding": "gzip"})),
            ("new event name (10,000 names)", lambda: _post(self.base + "/track", json.dumps(
                {"event": "n" + uuid.uuid4().hex, "userId": "h"}).encode(), write)),
            ("NUL in a query", lambda: _get(self.base + "/metrics?user_id=u%00")),
            ("metrics over 366 days", lambda: _get(self.base + "/metrics?start_date="
                                                   f"{datetime.now(UTC).date() - timedelta(days=365)}"
                                                   f"&end_date={datetime.now(UTC).date()}")),
            ("poison entry (index row too large)", lambda: self._poison(r)),
        ]
        while not self.stop.is_set():
            name, case = random.choice(cases)
            self._count(name, case())
            time.sleep(0.05)

    def _poison(self, r: redis.Redis) -> int:
        name = "".join(random.choices(string.ascii_letters, k=9000))
        payload = {"type": "track", "event": name, "user_id": "h", "message_id": str(uuid.uuid4()),
                   "ts": datetime.now(UTC).isoformat(), "source_account_id": "primary"}
        r.xadd("np_analytics:events", {"e": json.dumps(payload)})
        return 0

    def _watch(self, latencies: list[float], late: list[str]) -> None:
        seen: set[str] = set()
        while True:
            with self.lock:
                waiting = [m for m in self.accepted if m not in seen]
            if waiting:
                rows = self.h.sql("SELECT message_id::text FROM np_analytics_events WHERE event = 'soak' "
                                  "AND message_id = ANY(%s::uuid[])", (waiting,))
                now = time.monotonic()
                for (m,) in rows:
                    seen.add(m)
                    latency = now - self.accepted[m]
                    latencies.append(latency)
                    if latency > VISIBLE_WITHIN_SECONDS:
                        late.append(m)
            if self.stop.is_set() and not waiting:
                return
            if self.stop.is_set() and time.monotonic() > self.stopped_at + 60:
                return
            time.sleep(0.25)

    def run(self) -> dict[str, Any]:
        latencies: list[float] = []
        late: list[str] = []
        threads = [threading.Thread(target=self._valid) for _ in range(self.senders)]
        threads.append(threading.Thread(target=self._hostile))
        watcher = threading.Thread(target=self._watch, args=(latencies, late))
        for t in threads:
            t.start()
        watcher.start()
        time.sleep(self.seconds)
        self.stopped_at = time.monotonic()
        self.stop.set()
        for t in threads:
            t.join()
        watcher.join()
        [(total, distinct)] = self.h.sql("SELECT count(*), count(DISTINCT message_id) FROM np_analytics_events "
                                         "WHERE event = 'soak'")
        dead = redis.Redis.from_url(self.h.redis_url).xlen("np_analytics:dead")
        latencies.sort()
        return {
            "seconds": self.seconds, "valid_accepted": len(self.accepted), "valid_stored": total,
            "valid_distinct": distinct, "exactly_once": total == distinct == len(self.accepted),
            "visible_p50_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
            "visible_p99_s": round(latencies[int(len(latencies) * 0.99)], 3) if latencies else None,
            "visible_max_s": round(latencies[-1], 3) if latencies else None,
            "late_over_5s": len(late), "dead_letters": dead, "valid_statuses": self.statuses,
            "hostile": dict(sorted(self.hostile.items())),
        }


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    harness = Harness()
    try:
        harness.start_stores()
        harness.reset()
        harness.start_service(ANALYTICS_MAX_EVENT_NAMES="2000")
        redis.Redis.from_url(harness.redis_url).delete("np_analytics:dead")
        progress(f"soak: {args.seconds:.0f} s, {args.senders} valid senders and one hostile sender")
        print(json.dumps(Soak(harness, args.seconds, args.senders).run(), indent=2))
    finally:
        harness.close()


if __name__ == "__main__":
    main()
