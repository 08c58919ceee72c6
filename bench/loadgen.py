"""Load generator, run as its own process: ``python -m bench.loadgen CONFIG.json`` prints one JSON result.

A minimal HTTP/1.1 keep-alive client on asyncio protocols: request bytes are built before the clock
starts and responses are parsed only as far as the status line and Content-Length, so on a small machine
the generator leaves as much CPU as it can to the service it measures.

- closed loop: ``connections`` requests in flight, each sent as soon as the previous one is answered; a 503
  (queue full) is retried after a short pause, as a client SDK would.
- open loop: ``rate`` requests per second on a fixed schedule for ``duration`` seconds, each on an idle
  connection (a new one when none is idle); latency counts from the scheduled send time, so a stalled
  service cannot hide the requests it delayed (no coordinated omission).

Config keys: port, path, key, bodies (file, one request body per line), mode (closed|open), connections,
rate, duration, procs (processes to split the bodies over; each runs its own event loop), ports (optional:
several instances of the service, the connections spread over them round robin).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["percentile", "run"]

USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0 Safari/537.36")
RETRY_PAUSE_SECONDS = 0.02


class _Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None and not self.waiter.done():
            status = self._parse()
            if status is not None:
                self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection closed: {exc}"))

    def _parse(self) -> int | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buf[:end]).lower()
        length = 0
        at = head.find(b"content-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15: stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(self.buf) < total:
            return None
        status = int(head[9:12])
        del self.buf[:total]
        return status

    async def request(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


def _requests(config: dict[str, Any], bodies: list[bytes]) -> list[bytes]:
    head = (f"POST {config['path']} HTTP/1.1\r\nHost: 127.0.0.1:{config['port']}\r\n"
            f"Authorization: Bearer {config['key']}\r\nContent-Type: application/json\r\n"
            f"User-Agent: {USER_AGENT}\r\n")
    return [(head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body for body in bodies]


class _Ports:
    """The service's ports, handed out round robin to new connections."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.ports = list(config.get("ports") or [config["port"]])
        self.next = 0

    def take(self) -> int:
        port = self.ports[self.next % len(self.ports)]
        self.next += 1
        return port


async def _connect(port: int) -> _Conn:
    _transport, protocol = await asyncio.get_running_loop().create_connection(_Conn, "127.0.0.1", port)
    return protocol


async def _closed(config: dict[str, Any], requests: list[bytes]) -> dict[str, Any]:
    ports = _Ports(config)
    conns = [await _connect(ports.take()) for _ in range(min(config["connections"], len(requests)))]
    statuses: Counter[int] = Counter()
    retries = 0
    todo = iter(requests)

    async def worker(conn: _Conn) -> None:
        nonlocal retries
        for data in todo:
            while True:
                status = await conn.request(data)
                statuses[status] += 1
                if status != 503:
                    break
                retries += 1
                await asyncio.sleep(RETRY_PAUSE_SECONDS)

    first = time.time()
    await asyncio.gather(*(worker(conn) for conn in conns))
    return {"t_first": first, "t_last": time.time(), "statuses": dict(statuses), "retries": retries,
            "latencies": []}


async def _open(config: dict[str, Any], requests: list[bytes]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    ports = _Ports(config)
    idle = [await _connect(ports.take()) for _ in range(config["connections"])]
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    count = min(len(requests), int(config["rate"] * config["duration"]))

    async def one(data: bytes, due: float) -> None:
        conn = idle.pop() if idle else await _connect(ports.take())
        try:
            status = await conn.request(data)
        except ConnectionError:
            statuses[0] += 1
            return
        latencies.append(loop.time() - due)
        statuses[status] += 1
        idle.append(conn)

    start = loop.time() + 0.05
    first = time.time() + 0.05
    tasks = []
    for index in range(count):
        due = start + index / config["rate"]
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[index], due)))
    await asyncio.gather(*tasks)
    return {"t_first": first, "t_last": time.time(), "statuses": dict(statuses), "retries": 0,
            "latencies": latencies, "connections_used": len(idle)}


def _run_part(config: dict[str, Any], bodies: list[bytes]) -> dict[str, Any]:
    requests = _requests(config, bodies)
    runner = _open if config["mode"] == "open" else _closed
    return asyncio.run(runner(config, requests))


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank method, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def run(config: dict[str, Any]) -> dict[str, Any]:
    """Send the bodies of ``config['bodies']`` as configured; return timings, status counts and latencies."""
    bodies = Path(config["bodies"]).read_bytes().splitlines()
    procs = max(1, int(config.get("procs", 1)))
    if procs == 1:
        parts = [_run_part(config, bodies)]
    else:
        share = {**config, "connections": max(1, config["connections"] // procs),
                 "rate": config.get("rate", 0) / procs}
        with ProcessPoolExecutor(procs) as pool:
            parts = list(pool.map(_run_part, [share] * procs, [bodies[i::procs] for i in range(procs)]))
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    for part in parts:
        statuses.update({int(k): v for k, v in part["statuses"].items()})
        latencies += part["latencies"]
    return {
        "requests": len(bodies) if config["mode"] == "closed" else sum(statuses.values()),
        "t_first": min(p["t_first"] for p in parts),
        "t_last": max(p["t_last"] for p in parts),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "retries": sum(p["retries"] for p in parts),
        "latency_ms": {name: (None if (v := percentile(latencies, q)) is None else round(v * 1000, 2))
                       for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run(json.loads(Path(sys.argv[1]).read_text()))) + "\n")
