"""The hostile side of the soak (bench/soak.py): what a client holding only a write key, or a webhook receiver,
can throw at the service while other accounts send valid traffic.

- issue 10's cases: oversized shared context, events older than retention, absurd times, deep nesting, corrupt
  gzip, poison queue entries (an index row too large), hostile reads;
- issue 21's: an alias chain growing one link per request through a public key, a flood of new event names
  through a public key, message ids that other accounts use, a webhook receiver that accepts connections and
  never answers, and 100 webhooks fanned out on one event.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import string
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

HOSTILE_ACCOUNT = "hostile"
PUBLIC_KEY = "wk_soak_public_key"  # a public write key of the hostile account (ANALYTICS_WRITE_KEYS)
FANOUT_WEBHOOKS = 100  # MAX_WEBHOOKS_PER_ACCOUNT


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def get(url: str, secret: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


class SilentReceiver:
    """A webhook receiver that accepts every connection and never answers (a dead or hostile endpoint)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.sock.close()


class Hostile:
    """One hostile sender: picks a case at random until ``stop`` is set; counts each case's answers."""

    def __init__(self, base: str, secret: str, write_key: str, redis_url: str, stop: threading.Event,
                 count: Callable[[str, int], None]) -> None:
        self.base = base
        self.secret = secret
        self.write = {"Authorization": f"Bearer {write_key}", "Content-Type": "application/json"}
        self.public = {"Authorization": f"Bearer {PUBLIC_KEY}", "Content-Type": "application/json"}
        self.redis_url = redis_url
        self.stop = stop
        self.count = count
        self.chain = 0  # links of the alias chain so far
        self.stolen: list[str] = []  # message ids the valid senders used, replayed under the hostile account
        self.preclaimed: list[str] = []  # message ids the hostile account used first, then handed to valid senders
        self.lock = threading.Lock()

    def setup_webhooks(self, dead_port: int) -> None:
        """FANOUT_WEBHOOKS webhooks of the hostile account on one event, all at the silent receiver."""
        headers = {"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json",
                   "X-Source-Account-Id": HOSTILE_ACCOUNT}
        for index in range(FANOUT_WEBHOOKS):
            body = {"url": f"http://127.0.0.1:{dead_port}/hook/{index}", "events": ["event.tracked"],
                    "event_names": ["fanout"]}
            status = post(self.base + "/webhooks", json.dumps(body).encode(), headers)
            if status not in (200, 201):
                raise RuntimeError(f"creating webhook {index} answered {status}")

    def steal(self, message_id: str) -> None:
        with self.lock:
            if len(self.stolen) < 5000:
                self.stolen.append(message_id)

    def take_preclaimed(self) -> str | None:
        """A message id the hostile account already sent (a valid sender uses it next), if any."""
        with self.lock:
            return self.preclaimed.pop() if self.preclaimed else None

    def run(self) -> None:
        r = redis.Redis.from_url(self.redis_url)
        old = (datetime.now(UTC) - timedelta(days=400)).isoformat()
        cases: list[tuple[str, Callable[[], int]]] = [
            ("shared context 200 KB", lambda: post(self.base + "/batch", json.dumps(
                {"context": {"z": [0] * 100_000},
                 "batch": [{"type": "track", "event": "ctx", "userId": "h"} for _ in range(100)]}).encode(),
                self.write)),
            ("event older than retention", lambda: post(self.base + "/track", json.dumps(
                {"event": "old", "userId": "h", "timestamp": old}).encode(), self.write)),
            ("1970 timestamp, 9999 sentAt", lambda: post(self.base + "/track", json.dumps(
                {"event": "x", "userId": "h", "timestamp": "1970-01-01T00:00:00Z",
                 "sentAt": "9999-12-31T00:00:00Z"}).encode(), self.write)),
            ("properties nested 300 deep", lambda: post(self.base + "/track", json.dumps(
                {"event": "x", "userId": "h", "properties": nested(300)}).encode(), self.write)),
            ("corrupt gzip", lambda: post(self.base + "/track", gzip.compress(b"{}")[:-6] + b"xxxxxx",
                                          {**self.write, "Content-Encoding": "gzip"})),
            ("NUL in a query", lambda: get(self.base + "/metrics?user_id=u%00", self.secret)),
            ("poison entry (index row too large)", lambda: self._poison(r)),
            ("alias chain, 100 links a request (public key)", self._chain),
            ("new event names, 100 a request (public key)", self._names),
            ("message ids of other accounts (public key)", self._stolen_ids),
            ("message ids other accounts use next (public key)", self._preclaim),
            ("event with 100 webhooks at a silent receiver", lambda: post(self.base + "/v1/track", json.dumps(
                {"event": "fanout", "userId": "h", "messageId": str(uuid.uuid4())}).encode(), self.public)),
        ]
        while not self.stop.is_set():
            name, case = random.choice(cases)
            self.count(name, case())
            self.stop.wait(0.05)

    def _chain(self) -> int:
        start = self.chain
        self.chain += 100
        batch = [{"type": "alias", "userId": f"chain{i + 1}", "previousId": f"chain{i}"}
                 for i in range(start, start + 100)]
        return post(self.base + "/v1/batch", json.dumps({"batch": batch}).encode(), self.public)

    def _names(self) -> int:
        batch = [{"type": "track", "event": f"junk_{uuid.uuid4().hex[:12]}", "userId": "h"} for _ in range(100)]
        return post(self.base + "/v1/batch", json.dumps({"batch": batch}).encode(), self.public)

    def _stolen_ids(self) -> int:
        with self.lock:
            ids = random.sample(self.stolen, min(50, len(self.stolen)))
        if not ids:
            return 0
        batch = [{"type": "track", "event": "soak", "userId": "thief", "messageId": m} for m in ids]
        return post(self.base + "/v1/batch", json.dumps({"batch": batch}).encode(), self.public)

    def _preclaim(self) -> int:
        ids = [str(uuid.uuid4()) for _ in range(50)]
        batch = [{"type": "track", "event": "soak", "userId": "thief", "messageId": m} for m in ids]
        status = post(self.base + "/v1/batch", json.dumps({"batch": batch}).encode(), self.public)
        with self.lock:
            self.preclaimed.extend(ids)
        return status

    def _poison(self, r: redis.Redis) -> int:
        name = "".join(random.choices(string.ascii_letters, k=9000))
        payload = {"type": "track", "event": name, "user_id": "h", "message_id": str(uuid.uuid4()),
                   "ts": datetime.now(UTC).isoformat(), "source_account_id": HOSTILE_ACCOUNT}
        r.xadd("np_analytics:events", {"e": json.dumps(payload)})
        return 0
