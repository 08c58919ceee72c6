"""A real forwarding HTTP proxy for the SDK tests, with fault injection, plus a static file server.

The proxy forwards every request to the live service. A path prefix ``/fault/<mode>/<key>``
(stripped before forwarding) picks a fault for the ``/analytics/batch`` requests of that key; a
plain path is forwarded untouched. An SDK pointed at ``proxy.url(mode, key)`` as its host thus
meets the fault without any other coordination. Modes:

- ``ok``: forward everything;
- ``503``: answer the first batch request ``503`` with ``Retry-After: 1`` (as the service does when
  its queue is full), forward the next ones;
- ``drop``: close the connection of the first batch request without forwarding or answering;
- ``drop-after``: forward the first batch request (the service accepts it), then close the
  connection without answering, so the SDK cannot know its batch was stored;
- ``switch``: close every connection without answering while the key is down (``set_down``).

Each request is recorded (time, path, outcome, message ids, how it authenticated) per key, for the
tests' assertions. Everything runs on an event loop in a thread of its own, so synchronous tests
(running ``go test`` or ``node --test`` as subprocesses) and async ones (Playwright) can use it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from .conftest import pg_execute, wait_for

__all__ = [
    "MODES",
    "ProxyRecord",
    "SdkProxy",
    "assert_case_delivered",
    "assert_fault_exercised",
    "assert_screen_group_alias_stored",
    "assert_stored_once",
    "stored_counts",
    "wait_records",
]

MODES = ("ok", "503", "drop", "drop-after", "switch")
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Retry-After, X-Request-Id",
}


@dataclass
class ProxyRecord:
    """One request that reached the proxy."""

    at: float
    method: str
    path: str
    outcome: str  # "forwarded", "503", "dropped", "forwarded-then-dropped"
    status: int | None  # status the SDK received (None: connection closed)
    message_ids: list[str] = field(default_factory=list)
    body_write_key: bool = False
    authorization: str | None = None
    content_type: str | None = None
    sec_fetch_mode: str | None = None  # browsers: "no-cors" for a text/plain sendBeacon, "cors" for fetch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SdkProxy:
    """The proxy (``base_url``) and a static server on another origin (``static_url``)."""

    def __init__(self, upstream: str, static_dirs: dict[str, Path] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.static_dirs = static_dirs or {}
        self.pages: dict[str, str] = {}
        self._records: dict[str, list[ProxyRecord]] = {}
        self._batch_counts: dict[str, int] = {}
        self._down: set[str] = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sdk-proxy", daemon=True)
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None
        self.port = _free_port()
        self.static_port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.static_url = f"http://127.0.0.1:{self.static_port}"

    # --- control (any thread) ---------------------------------------------------------------

    def url(self, mode: str, key: str) -> str:
        """The host an SDK should use to meet ``mode`` under ``key`` (no trailing slash)."""
        assert mode in MODES, mode
        assert key and "/" not in key, key
        return f"{self.base_url}/fault/{mode}/{key}"

    def set_down(self, key: str, down: bool) -> None:
        """In mode ``switch``: drop (True) or forward (False) every request of ``key``."""
        with self._lock:
            (self._down.add if down else self._down.discard)(key)

    def records(self, key: str, batch_only: bool = True) -> list[ProxyRecord]:
        with self._lock:
            records = list(self._records.get(key, []))
        return [r for r in records if r.path.endswith("/analytics/batch")] if batch_only else records

    def add_page(self, path: str, html: str) -> str:
        """Serve ``html`` at ``path`` on the static origin; return its URL."""
        self.pages[path] = html
        return self.static_url + path

    def start(self) -> SdkProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    # --- servers (proxy thread) -------------------------------------------------------------

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=30))
        proxy = web.Application(client_max_size=10 * 1024 * 1024)
        proxy.router.add_route("*", "/{tail:.*}", self._forward)
        static = web.Application()
        static.router.add_get("/{tail:.*}", self._static)
        for app, port in ((proxy, self.port), (static, self.static_port)):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self._runners.append(runner)

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _static(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in self.pages:
            return web.Response(text=self.pages[path], content_type="text/html",
                                headers={"Cache-Control": "no-store"})
        for prefix, root in self.static_dirs.items():
            if path.startswith(prefix + "/"):
                target = (root / path[len(prefix) + 1:]).resolve()
                if target.is_file() and target.is_relative_to(root.resolve()):
                    headers = {"Cache-Control": "no-store"}
                    if target.suffix in (".js", ".mjs"):
                        headers["Content-Type"] = "text/javascript"
                    return web.FileResponse(target, headers=headers)
        raise web.HTTPNotFound()

    def _record(self, key: str, record: ProxyRecord) -> None:
        with self._lock:
            self._records.setdefault(key, []).append(record)

    def _fault_for(self, mode: str, key: str, is_batch: bool) -> str | None:
        with self._lock:
            if mode == "switch":
                return "drop" if key in self._down else None
            if not is_batch or mode == "ok":
                return None
            n = self._batch_counts.get(key, 0)
            self._batch_counts[key] = n + 1
            return mode if n == 0 else None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        mode, key = "ok", ""
        parts = path.split("/", 4)  # "", "fault", mode, key, rest
        if len(parts) >= 4 and parts[1] == "fault":
            mode, key = parts[2], parts[3]
            path = "/" + (parts[4] if len(parts) > 4 else "")
            if mode not in MODES:
                return web.Response(status=404, text=f"unknown fault mode {mode}")
        body = await request.read()
        is_batch = request.method == "POST" and path.endswith("/analytics/batch")
        record = ProxyRecord(at=time.monotonic(), method=request.method, path=path, outcome="forwarded",
                             status=None, authorization=request.headers.get("Authorization"),
                             content_type=request.headers.get("Content-Type"),
                             sec_fetch_mode=request.headers.get("Sec-Fetch-Mode"))
        if is_batch:
            try:
                parsed = json.loads(body)
                record.message_ids = [m.get("messageId") or m.get("message_id") for m in parsed.get("batch", [])]
                record.body_write_key = bool(parsed.get("writeKey"))
            except (ValueError, AttributeError):
                pass
        fault = self._fault_for(mode, key, is_batch)

        if fault == "503":
            record.outcome, record.status = "503", 503
            self._record(key, record)
            return web.json_response({"status": "error", "message": "Ingest queue is full; retry later"},
                                     status=503, headers={"Retry-After": "1", **CORS})
        if fault == "drop":
            record.outcome = "dropped"
            self._record(key, record)
            return await self._close(request)

        url = self.upstream + path + (f"?{request.query_string}" if request.query_string else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        assert self._session is not None
        async with self._session.request(request.method, url, headers=headers, data=body,
                                         allow_redirects=False) as upstream:
            payload = await upstream.read()
            if fault == "drop-after":
                record.outcome = "forwarded-then-dropped"
                self._record(key, record)
                return await self._close(request)
            record.status = upstream.status
            self._record(key, record)
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=upstream.status, body=payload, headers=out_headers)

    @staticmethod
    async def _close(request: web.Request) -> web.StreamResponse:
        """Close the connection without a byte of answer (what a crash or network cut looks like)."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        # aiohttp cannot write to the aborted transport; it drops the response without an answer.
        raise asyncio.CancelledError()


def wait_records(proxy: SdkProxy, key: str, predicate: Callable[[list[ProxyRecord]], Any],
                 timeout: float = 30) -> list[ProxyRecord]:
    """Poll the proxy's records of ``key`` until ``predicate`` holds; return them or fail."""
    deadline = time.monotonic() + timeout
    while True:
        records = proxy.records(key)
        if predicate(records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"proxy records of {key!r} never matched: {records}")
        time.sleep(0.05)


# --- assertions shared by the SDK tests -----------------------------------------------------------

def stored_counts(database_url: str, message_ids: list[str]) -> dict[str, int]:
    """How many rows of np_analytics_events each message id has (ids without rows are absent)."""
    rows = pg_execute(database_url, "SELECT message_id::text, count(*) FROM np_analytics_events "
                                    "WHERE message_id = ANY(%s::uuid[]) GROUP BY 1", (message_ids,))
    return {row[0]: int(row[1]) for row in rows}


def assert_stored_once(database_url: str, message_ids: list[str], timeout: float = 30) -> None:
    """Wait until every id is in np_analytics_events, then (after the drain had time to store any
    duplicate) assert each is there exactly once."""
    assert message_ids, "no message ids to check"
    deadline = time.monotonic() + timeout
    while len(counts := stored_counts(database_url, message_ids)) < len(set(message_ids)):
        if time.monotonic() > deadline:
            missing = sorted(set(message_ids) - set(counts))
            raise AssertionError(f"{len(missing)} of {len(message_ids)} messages never stored: {missing[:5]}")
        time.sleep(0.1)
    time.sleep(1.5)  # negative check (bounded): a duplicate would be stored within it
    counts = stored_counts(database_url, message_ids)
    assert counts == dict.fromkeys(message_ids, 1), f"not stored exactly once: {counts}"


def assert_fault_exercised(proxy: SdkProxy, key: str, mode: str, message_ids: list[str]) -> None:
    """The proxy really injected ``mode``'s fault, the SDK retried the same messages (same ids), and
    every message reached the service in a request it answered 2xx."""
    records = proxy.records(key)
    assert records, f"no batch request reached the proxy under {key}"
    first = records[0]
    expected_outcome = {"ok": "forwarded", "503": "503", "drop": "dropped",
                        "drop-after": "forwarded-then-dropped"}[mode]
    assert first.outcome == expected_outcome, records
    if mode != "ok":
        retries = [r for r in records[1:] if set(first.message_ids) <= set(r.message_ids)]
        assert retries, f"the faulted batch {first.message_ids} was never sent again: {records}"
        assert retries[0].status is not None and 200 <= retries[0].status < 300, retries[0]
        if mode == "503":
            gap = retries[0].at - first.at
            assert gap >= 0.95, f"retried {gap:.3f}s after a 503 with Retry-After: 1"
    delivered = {i for r in records if r.status is not None and 200 <= r.status < 300 for i in r.message_ids}
    assert set(message_ids) <= delivered, f"never accepted: {set(message_ids) - delivered}"


def assert_case_delivered(database_url: str, proxy: SdkProxy, manifest: dict[str, Any], tracks: int) -> None:
    """Check one live case an SDK test wrote (case, mode, key, event, user_id, ids, traits): every
    message stored exactly once, the proxy's fault really happened, nothing stored twice under
    another id, page views stored as $pageview, identify traits on the user."""
    assert manifest.get("failed", 0) == 0, manifest
    track_ids = manifest["ids"]["track"]
    page_ids = manifest["ids"].get("page") or []
    assert len(track_ids) == tracks == len(set(track_ids)), manifest
    assert_stored_once(database_url, track_ids + page_ids)
    assert_fault_exercised(proxy, manifest["key"], manifest["mode"], track_ids + page_ids)
    rows = pg_execute(database_url, "SELECT count(*), count(DISTINCT message_id), min(user_id), max(type) "
                                    "FROM np_analytics_events WHERE event = %s", (manifest["event"],))
    assert rows[0] == (tracks, tracks, manifest["user_id"], "track"), rows
    for page_id in page_ids:
        pages = pg_execute(database_url, "SELECT event, type, path, user_id, properties->>'name' "
                                         "FROM np_analytics_events WHERE message_id = %s", (page_id,))
        assert pages == [("$pageview", "page", "/pricing", manifest["user_id"], "Pricing")], pages
    if manifest.get("traits"):
        traits = wait_for(lambda: pg_execute(database_url, "SELECT traits FROM np_analytics_users WHERE user_id = %s",
                                             (manifest["user_id"],)))
        assert traits[0][0] == manifest["traits"], traits


def assert_screen_group_alias_stored(database_url: str, ids: list[str]) -> None:
    """A screen (name Settings, property tab=billing), a group (id team-...) and an alias an SDK sent, in that
    order, with Segment's field names: each stored once, with its type."""
    assert_stored_once(database_url, ids)
    stored = pg_execute(database_url, "SELECT type, event, properties->>'group_id', properties->>'tab' "
                                      "FROM np_analytics_events WHERE message_id = ANY(%s::uuid[]) ORDER BY type",
                        (ids,))
    assert [row[0] for row in stored] == ["alias", "group", "screen"], stored
    assert stored[1][2].startswith("team-") and stored[2][1:] == ("$screen", None, "billing"), stored
