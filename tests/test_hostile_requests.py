"""The 28 requests that answered 500 (issue 10): each gets a 4xx JSON error now and stores nothing."""

from __future__ import annotations

import asyncio
import gzip
import socket
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import SECRET, WRITE_KEY, pg_execute

TODAY = datetime.now(UTC).date()
RANGE = f"start_date={TODAY - timedelta(days=7)}&end_date={TODAY}"
FAR = "start_date=9999-12-01&end_date=9999-12-31"
SECRET_AUTH = {"Authorization": f"Bearer {SECRET}"}
WRITE_AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


GET_CASES = {
    "nul in steps": f"/analytics/funnel?{RANGE}&steps=a%00,b",
    "nul in breakdown": f"/analytics/funnel?{RANGE}&steps=a,b&breakdown=x%00",
    "nul in start_event (retention)": f"/analytics/retention?{RANGE}&start_event=a%00",
    "nul in start_event (sessions)": f"/analytics/sessions?{RANGE}&start_event=a%00",
    "nul in user_id (metrics)": f"/analytics/metrics?{RANGE}&user_id=u%00",
    "nul in user_id (sessions)": f"/analytics/sessions?{RANGE}&user_id=u%00",
    "nul in quotas event": "/analytics/quotas?event=a%00",
    "nul in violations user_id": "/analytics/quotas/violations?user_id=u%00",
    "end_date 9999 funnel": f"/analytics/funnel?{FAR}&steps=a,b",
    "end_date 9999 retention": f"/analytics/retention?{FAR}",
    "end_date 9999 metrics": f"/analytics/metrics?{FAR}",
    "end_date 9999 sessions": f"/analytics/sessions?{FAR}",
    "end_date 9999 metrics by month": f"/analytics/metrics?{FAR}&group_by=month",
    "end_date 9999 retention by month": f"/analytics/retention?{FAR}&period=month",
}


@pytest.mark.parametrize("path", GET_CASES.values(), ids=GET_CASES.keys())
async def test_hostile_query_parameters_are_400(client: Any, path: str) -> None:
    response = await client.get(path, headers=SECRET_AUTH)
    assert response.status == 400, await response.text()
    body = await response.json()
    assert body["status"] == "error" and body["message"]


POST_CASES = {
    "timestamp 1970 with sentAt 9999": ("/analytics/track", {"event": "e", "userId": "u",
                                                              "timestamp": "1970-01-01T00:00:00Z",
                                                              "sentAt": "9999-12-31T23:59:59Z"}),
    "numeric timestamp before 1970": ("/analytics/track", {"event": "e", "userId": "u", "timestamp": -86400 * 365}),
    "batch timestamp 1970 with sentAt 9999": ("/analytics/batch", {
        "sentAt": "9999-12-31T23:59:59Z",
        "batch": [{"type": "track", "event": "e", "userId": "u", "timestamp": "1970-01-01T00:00:00Z"}]}),
    "bad IPv6 URL in properties.url": ("/analytics/track", {"event": "e", "userId": "u",
                                                             "properties": {"url": "http://[::1"}}),
    "bad IPv6 URL in context.page.url": ("/analytics/page", {"userId": "u",
                                                              "context": {"page": {"url": "http://[::1"}}}),
    "properties nested 253 deep": ("/analytics/track", {"event": "e", "userId": "u", "properties": _nested(253)}),
    "context nested 253 deep": ("/analytics/track", {"event": "e", "userId": "u", "context": _nested(253)}),
    "batch context nested 300 deep": ("/analytics/batch", {"context": _nested(300),
                                                            "batch": [{"type": "track", "event": "e", "userId": "u"}]}),
}


@pytest.mark.parametrize(("path", "body"), POST_CASES.values(), ids=POST_CASES.keys())
async def test_hostile_messages_are_400_and_store_nothing(client: Any, settings: Any, drain: Any, path: str,
                                                          body: Any) -> None:
    response = await client.post(path, headers=WRITE_AUTH, json=body)
    assert response.status == 400, await response.text()
    assert (await response.json())["status"] == "error"
    await drain()
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_events")[0][0] == 0


async def test_hit_with_bad_ipv6_url_is_400(client: Any) -> None:
    response = await client.post("/analytics/hit", json={"writeKey": WRITE_KEY, "site": "a.test",
                                                         "url": "http://[::1", "referrer": "http://[::1"})
    assert response.status in (202, 400), await response.text()  # a bad URL field is ignored or refused, never 500


CORRUPT_GZIP = {
    "/hit": ("/analytics/hit", {}),
    "/track": ("/analytics/track", WRITE_AUTH),
    "/funnels": ("/analytics/funnels", SECRET_AUTH),
}


@pytest.mark.parametrize(("path", "headers"), CORRUPT_GZIP.values(), ids=CORRUPT_GZIP.keys())
async def test_corrupt_gzip_body_is_400(client: Any, path: str, headers: dict[str, str]) -> None:
    body = gzip.compress(b'{"event": "e", "userId": "u"}')[:-12] + b"garbage!"
    response = await client.post(path, data=body, headers={**headers, "Content-Encoding": "gzip",
                                                           "Content-Type": "application/json"})
    assert response.status == 400, await response.text()
    assert (await response.json())["status"] == "error"


def _raw_request(url: str, request: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("path", ["/analytics/metrics?" + RANGE, "/analytics/funnels"])
async def test_non_ascii_bearer_is_401(client: Any, path: str) -> None:
    """A raw 0xFF byte in the header (no client library sends one) and a non-ASCII character."""
    url = str(client.make_url("/"))
    raw = (f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + b"Authorization: Bearer \xff\r\n\r\n")
    answer = await asyncio.to_thread(_raw_request, url, raw)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    response = await client.get(path, headers={"Authorization": "Bearer \u00ff\u4e2d"})
    assert response.status == 401, await response.text()


async def test_non_ascii_bearer_on_ingest_is_401(client: Any) -> None:
    url = str(client.make_url("/"))
    body = b'{"event":"e","userId":"u"}'
    raw = (b"POST /analytics/track HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
           b"Authorization: Bearer \xff\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    answer = await asyncio.to_thread(_raw_request, url, raw)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
