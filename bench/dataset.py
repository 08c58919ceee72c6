"""Benchmark data on top of ``bench.generate``: web fields for page views, API messages, stored rows.

- :func:`with_web_fields` turns the generator's ``page_view`` events into web page views as the service
  stores them (type ``page``, event ``$pageview``, a site, a path, the referrer of a visit's first page), so
  ``/api/pages`` and the site index have data; rows then follow :data:`WEB_COLUMNS`.
- :func:`to_message` is the API message a client would send for such a row (``/batch``, ``/track``).
- :func:`stored_text` is the COPY text of exactly what the service stores for those messages (normalized by
  the service's own ``normalize``, enriched as the ingest path does for a request from 127.0.0.1), so the
  raw COPY ceiling writes the same rows as the HTTP path.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import msgspec

from nself_analytics.ingest.enrich import classify_user_agent, hash_ip
from nself_analytics.ingest.normalize import normalize
from nself_analytics.model.record import EventRecord
from nself_analytics.store.events import EVENT_COLUMNS

from .generate import COLUMNS
from .loadgen import USER_AGENT

__all__ = ["SITES", "WEB_COLUMNS", "stored_text", "to_message", "with_web_fields"]

WEB_COLUMNS = (*COLUMNS, "site", "path", "referrer")
SITES = ("example.com", "example.com", "example.com", "docs.example.com")
_SECTIONS = ("", "pricing", "blog", "docs", "features", "about", "changelog", "careers", "contact", "login")
_REFERRERS = (None, None, None, "https://www.google.com/", "https://www.google.com/", "https://news.ycombinator.com/",
              "https://twitter.com/", "https://www.reddit.com/r/selfhosted/", "https://github.com/", "https://duckduckgo.com/",
              "https://www.bing.com/", "https://www.linkedin.com/")
_PAGES = [f"/{s}" if s else "/" for s in _SECTIONS] + [f"/blog/post-{i}" for i in range(120)] + \
         [f"/docs/{topic}/{i}" for topic in ("install", "api", "sdk", "guides") for i in range(40)]
_PAGE_WEIGHTS = [1 / (rank + 1) ** 1.1 for rank in range(len(_PAGES))]  # Zipf-like: a few pages take most views


def with_web_fields(rows: Iterable[tuple[Any, ...]], seed: int = 1) -> Iterator[tuple[Any, ...]]:
    """Rows of ``COLUMNS`` → rows of ``WEB_COLUMNS``; ``page_view`` becomes a ``$pageview`` of a site and path."""
    rng = random.Random(seed)
    seen_sessions: set[str] = set()
    for row in rows:
        if row[4] != "page_view":
            yield (*row, None, None, None)
            continue
        session = row[7]
        first = session not in seen_sessions
        if first:
            seen_sessions.add(session)
            if len(seen_sessions) > 100_000:
                seen_sessions.clear()
        path = rng.choices(_PAGES, _PAGE_WEIGHTS)[0]
        referrer = rng.choice(_REFERRERS) if first else None
        yield (*row[:3], "page", "$pageview", *row[5:], rng.choice(SITES), path, referrer)


def to_message(row: tuple[Any, ...], kind: str | None = None) -> dict[str, Any]:
    """The API message for a ``WEB_COLUMNS`` row; ``kind='track'`` sends a page view as a track event."""
    ts, message_id, _account, row_type, event, user_id, anonymous_id, session_id, properties, site, path, ref = row
    message: dict[str, Any] = {"type": kind or row_type, "messageId": message_id, "timestamp": ts,
                               "anonymousId": anonymous_id, "sessionId": session_id,
                               "properties": json.loads(properties) if properties else {}}
    if user_id:
        message["userId"] = user_id
    if message["type"] == "page":
        message["properties"].update({"url": f"https://{site}{path}", **({"referrer": ref} if ref else {})})
    else:
        message["event"] = event
    return message


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def stored_text(messages: Iterable[dict[str, Any]], received_at: datetime, salt: str = "bench") -> str:
    """COPY text (columns of ``EVENT_COLUMNS``) of the rows the service stores for ``messages``."""
    device, browser, os_name, _bot = classify_user_agent(USER_AGENT)
    lines = []
    for message in messages:
        record = normalize(message, message["type"], received_at).record
        assert isinstance(record, EventRecord)
        if record.type == "page":  # the user agent of the request is used for page views only
            record.device, record.browser, record.os = device, browser, os_name
        record.is_bot = False
        record.ip_hash = hash_ip("127.0.0.1", salt, record.site)
        row = msgspec.structs.asdict(record)
        lines.append("\t".join(_copy_value(row[column]) for column in EVENT_COLUMNS))
    return "\n".join(lines) + "\n"
