"""Chaos ingest: send N events through /batch while Redis and Postgres are each restarted once,
then check that np_analytics_events holds each of them exactly once.

    .venv/bin/python -m tests.chaos_ingest --events 100000

The service runs as its own process on its own embedded stores (in a temporary folder). The
client behaves like an SDK: a batch that gets a 503 or a dropped connection is sent again with the
same message ids, until it is accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg2

from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.embedded_redis import EmbeddedRedis

WRITE_KEY = "wk_chaos_write_key"
SECRET = "sk_chaos_secret_token_0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _count(database_url: str) -> tuple[int, int]:
    try:
        conn = psycopg2.connect(database_url, connect_timeout=3)
    except psycopg2.OperationalError:
        return -1, -1
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT message_id) FROM np_analytics_events")
            total, distinct = cur.fetchone()
            return int(total), int(distinct)
    finally:
        conn.close()


async def _send_all(base_url: str, batches: list[list[dict[str, Any]]], concurrency: int,
                    progress: list[int], gates: list[tuple[int, asyncio.Event, asyncio.Event]]) -> dict[str, int]:
    """Send every batch until accepted. Past each gate's threshold, senders wait until its restart has begun,
    so every restart happens while events are still being sent, however fast the service accepts them."""
    stats = {"requests": 0, "retries": 0, "503": 0, "errors": 0}
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    headers = {"Authorization": f"Bearer {WRITE_KEY}"}
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            for threshold, reached, gate in gates:
                if progress[0] >= threshold and not gate.is_set():
                    reached.set()
                    await gate.wait()
            if queue.empty():
                break
            batch = queue.get_nowait()
            delay = 0.05
            while True:
                stats["requests"] += 1
                try:
                    async with session.post(f"{base_url}/analytics/batch", json={"batch": batch},
                                            headers=headers) as response:
                        if response.status == 202:
                            break
                        if response.status == 503:
                            stats["503"] += 1
                        else:
                            raise RuntimeError(f"unexpected {response.status}: {await response.text()}")
                except (TimeoutError, aiohttp.ClientError):
                    stats["errors"] += 1
                stats["retries"] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            progress[0] += len(batch)

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return stats


def run_chaos(events: int, data_dir: Path, concurrency: int = 8, log: Any = None) -> dict[str, Any]:
    """Run the scenario; return figures and whether every event is stored exactly once."""
    say = log or (lambda msg: sys.stderr.write(msg + "\n"))
    pg = EmbeddedPostgres(data_dir / "stores")
    rd = EmbeddedRedis(data_dir / "stores")
    database_url, redis_url = pg.start(), rd.start()
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "ANALYTICS_PORT": str(port),
           "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_DATA_DIR": str(data_dir / "service"),
           "ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY,
           "ANALYTICS_QUEUE_BUFFER": str(max(events, 10_000)), "ANALYTICS_RECLAIM_IDLE": "2s"}
    log_file = (data_dir / "service.log").open("ab")
    service = subprocess.Popen([sys.executable, "-m", "nself_analytics.host.cli", "start", "--migrate"], env=env,
                               stdout=log_file, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or service.poll() is not None:
                    raise RuntimeError("service did not start") from None
                time.sleep(0.1)
        day = (datetime.now(UTC) - timedelta(days=17)).strftime("%Y-%m-%dT12:00:00Z")  # within the retention
        batches = [[{"type": "track", "event": f"chaos.{i % 7}", "userId": f"u{(b * 100 + i) % 997}",
                     "messageId": str(uuid.uuid4()), "timestamp": day, "properties": {"n": b * 100 + i}}
                    for i in range(min(100, events - b * 100))] for b in range((events + 99) // 100)]
        progress = [0]
        started = time.monotonic()

        async def scenario() -> dict[str, int]:
            gates = [(n, asyncio.Event(), asyncio.Event()) for n in (events // 3, 2 * events // 3)]
            sender = asyncio.create_task(_send_all(base_url, batches, concurrency, progress, gates))
            restarted: list[str] = []
            for name, (_threshold, reached, gate), server in (("Redis", gates[0], rd), ("Postgres", gates[1], pg)):
                waiting = asyncio.create_task(reached.wait())
                await asyncio.wait([waiting, sender], return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                say(f"restarting {name} at {progress[0]} accepted")
                gate.set()  # sending goes on while the store is down
                await asyncio.to_thread(server.stop)
                await asyncio.sleep(0.5)
                await asyncio.to_thread(server.start)
                restarted.append(name.lower())
            stats = await sender
            stats["restarts"] = len(restarted)
            return stats

        stats = asyncio.run(scenario())
        accepted_seconds = time.monotonic() - started
        say(f"all {events} accepted in {accepted_seconds:.1f}s; waiting for the drain")
        deadline = time.monotonic() + max(120, events / 500)
        total = distinct = 0
        while time.monotonic() < deadline:
            total, distinct = _count(database_url)
            if total >= events:
                break
            time.sleep(0.5)
        time.sleep(1.0)  # anything more would be a duplicate: look once more
        total, distinct = _count(database_url)
        stored_seconds = time.monotonic() - started
        return {"events": events, "stored": total, "distinct": distinct, "exactly_once": total == distinct == events,
                "accepted_seconds": round(accepted_seconds, 2), "stored_seconds": round(stored_seconds, 2), **stats}
    finally:
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                service.kill()
        log_file.close()
        rd.stop()
        pg.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with tempfile.TemporaryDirectory(prefix="nself-chaos-") as tmp:
        result = run_chaos(args.events, Path(tmp), args.concurrency)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result["exactly_once"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
