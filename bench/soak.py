"""A soak of the hardened data plane: valid traffic of two accounts mixed with every hostile case of issues 10 and
21 (bench/soak_hostile.py), against the real service (bench/harness.py). Every valid event must be stored exactly
once, in its own account, and be visible in Postgres within 5 s of its 2xx, throughout; the poison entries must
end in the dead-letter stream; /health must report the hostile load (names dropped, dead letters) and stay healthy.

    .venv/bin/python -m bench.soak [--seconds 60] [--senders 4]

tests/test_soak.py runs it in CI (the live tier) and asserts its result.
"""

from __future__ import annotations

import argparse
import http.server
import json
import random
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, ClassVar

from .harness import DATA_DIR, SECRET, WRITE_KEY, Harness, progress
from .soak_hostile import HOSTILE_ACCOUNT, PUBLIC_KEY, Hostile, SilentReceiver, post

VISIBLE_WITHIN_SECONDS = 5.0
VALID_ACCOUNTS = ("acme", "globex")


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A healthy webhook receiver of a valid account: records when each delivery arrives."""

    arrived: ClassVar[dict[str, float]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            message_id = json.loads(body)["data"]["message_id"]
        except (ValueError, KeyError, TypeError):
            message_id = None
        if message_id:
            self.arrived.setdefault(str(message_id), time.monotonic())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


class Soak:
    def __init__(self, harness: Harness, seconds: float, senders: int) -> None:
        self.h = harness
        self.base = harness.base_url + "/analytics"
        self.seconds = seconds
        self.senders = senders
        self.accepted: dict[tuple[str, str], float] = {}  # (account, message id) -> time of its 2xx
        self.hooked: dict[str, float] = {}  # message id of a webhooked valid event -> time of its 2xx
        self.lock = threading.Lock()
        self.hostile_counts: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()
        self.hostile = Hostile(self.base, SECRET, WRITE_KEY, harness.redis_url, self.stop, self._count)

    def _count(self, name: str, status: int) -> None:
        with self.lock:
            key = f"{name} -> {status}"
            self.hostile_counts[key] = self.hostile_counts.get(key, 0) + 1

    def _valid(self, account: str) -> None:
        headers = {"Authorization": f"Bearer {WRITE_KEY}", "Content-Type": "application/json",
                   "X-Source-Account-Id": account}
        while not self.stop.is_set():
            ids = [self.hostile.take_preclaimed() or str(uuid.uuid4()) if random.random() < 0.2
                   else str(uuid.uuid4()) for _ in range(20)]
            ids = list(dict.fromkeys(ids))
            body = {"batch": [{"type": "track", "event": "soak", "userId": f"u{random.randrange(500)}",
                               "messageId": m} for m in ids]}
            status = post(self.base + "/batch", json.dumps(body).encode(), headers)
            now = time.monotonic()
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 202:
                    for m in ids:
                        self.accepted.setdefault((account, m), now)
            if status == 202:
                for m in ids[:2]:
                    self.hostile.steal(m)

    def _hooked(self) -> None:
        """One webhooked event of a valid account a second: its delivery must not wait on the hostile ones."""
        headers = {"Authorization": f"Bearer {WRITE_KEY}", "Content-Type": "application/json",
                   "X-Source-Account-Id": VALID_ACCOUNTS[0]}
        while not self.stop.wait(1.0):
            message_id = str(uuid.uuid4())
            status = post(self.base + "/track", json.dumps({"event": "hooked", "user_id": "u",
                                                            "message_id": message_id}).encode(), headers)
            if status == 202:
                with self.lock:
                    self.hooked[message_id] = time.monotonic()

    def _watch(self, latencies: list[float], late: list[tuple[str, str]]) -> None:
        seen: set[tuple[str, str]] = set()
        while True:
            with self.lock:
                waiting = [key for key in self.accepted if key not in seen]
            if waiting:
                rows = self.h.sql(
                    "SELECT source_account_id, message_id::text FROM np_analytics_events WHERE event = 'soak' "
                    "AND source_account_id = ANY(%s) AND message_id = ANY(%s::uuid[])",
                    (list(VALID_ACCOUNTS), list({m for _a, m in waiting})))
                now = time.monotonic()
                for account, m in rows:
                    key = (account, m)
                    if key in seen or key not in self.accepted:
                        continue
                    seen.add(key)
                    latency = now - self.accepted[key]
                    latencies.append(latency)
                    if latency > VISIBLE_WITHIN_SECONDS:
                        late.append(key)
            if self.stop.is_set() and not waiting:
                return
            if self.stop.is_set() and time.monotonic() > self.stopped_at + 60:
                return
            time.sleep(0.25)

    def _health(self) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(self.base + "/health", headers={"Authorization": f"Bearer {SECRET}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status), json.load(response)
        except urllib.error.HTTPError as exc:
            return int(exc.code), json.load(exc)

    def run(self) -> dict[str, Any]:
        silent = SilentReceiver()
        receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        try:
            self.hostile.setup_webhooks(silent.port)
            hook = {"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook", "events": ["event.tracked"],
                    "event_names": ["hooked"]}
            status = post(self.base + "/webhooks", json.dumps(hook).encode(),
                          {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json",
                           "X-Source-Account-Id": VALID_ACCOUNTS[0]})
            assert status in (200, 201), status
            return self._run()
        finally:
            receiver.shutdown()
            receiver.server_close()
            silent.close()

    def _run(self) -> dict[str, Any]:
        latencies: list[float] = []
        late: list[tuple[str, str]] = []
        threads = [threading.Thread(target=self._valid, args=(VALID_ACCOUNTS[i % 2],)) for i in range(self.senders)]
        threads += [threading.Thread(target=self.hostile.run), threading.Thread(target=self._hooked)]
        watcher = threading.Thread(target=self._watch, args=(latencies, late))
        for t in threads:
            t.start()
        watcher.start()
        health_during: list[int] = []
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            health_during.append(self._health()[0])
        self.stopped_at = time.monotonic()
        self.stop.set()
        for t in threads:
            t.join()
        watcher.join()
        health_status, health = self._health()
        rows = self.h.sql("SELECT source_account_id, count(*), count(DISTINCT message_id) FROM np_analytics_events "
                          "WHERE event = 'soak' AND source_account_id = ANY(%s) GROUP BY 1", (list(VALID_ACCOUNTS),))
        total = sum(int(r[1]) for r in rows)
        distinct = sum(int(r[2]) for r in rows)
        delivered = [_Receiver.arrived[m] - t for m, t in self.hooked.items() if m in _Receiver.arrived]
        links = self.h.sql("SELECT count(*), count(DISTINCT person_id) FROM np_analytics_person_map "
                           "WHERE source_account_id = %s", (HOSTILE_ACCOUNT,))[0]
        latencies.sort()
        delivered.sort()
        return {
            "seconds": self.seconds, "valid_accepted": len(self.accepted), "valid_stored": total,
            "valid_distinct": distinct, "exactly_once": total == distinct == len(self.accepted),
            "visible_p50_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
            "visible_p99_s": round(latencies[int(len(latencies) * 0.99)], 3) if latencies else None,
            "visible_max_s": round(latencies[-1], 3) if latencies else None,
            "late_over_5s": len(late), "valid_statuses": self.statuses,
            "webhook_valid_sent": len(self.hooked), "webhook_valid_delivered": len(delivered),
            "webhook_valid_p50_s": round(delivered[len(delivered) // 2], 3) if delivered else None,
            "webhook_valid_max_s": round(delivered[-1], 3) if delivered else None,
            "alias_chain_links_sent": self.hostile.chain, "hostile_person_map": {"ids": links[0], "persons": links[1]},
            "health_statuses_during": health_during, "health_status_after": health_status,
            "health_after": {k: health.get(k) for k in ("healthy", "queue_depth", "dead_letters",
                                                        "dropped_event_names", "dropped_suppressed",
                                                        "refused_links", "tasks")},
            "hostile": dict(sorted(self.hostile_counts.items())),
        }


def soak_env() -> dict[str, str]:
    """The service's settings for a soak: a server key (every account) and the hostile account's public key."""
    return {"ANALYTICS_WRITE_KEYS": f"{WRITE_KEY},public:{HOSTILE_ACCOUNT}={PUBLIC_KEY}",
            "ANALYTICS_MAX_EVENT_NAMES": "2000", "ANALYTICS_WEBHOOK_TIMEOUT": "10s"}


def run_soak(seconds: float, senders: int, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    harness = Harness(data_dir)
    try:
        harness.start_stores()
        harness.reset()
        harness.sql("TRUNCATE np_analytics_webhooks, np_analytics_webhook_deliveries, np_analytics_person_map "
                    "CASCADE")
        harness.start_service(**soak_env())
        progress(f"soak: {seconds:.0f} s, {senders} valid senders of {len(VALID_ACCOUNTS)} accounts, one hostile")
        return Soak(harness, seconds, senders).run()
    finally:
        harness.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run_soak(args.seconds, args.senders), indent=2))


if __name__ == "__main__":
    main()
