"""Data and figures of the backup/restore and export/import round trips: a mixed set of messages (page views of
several browsers, tracks, identify, alias, group, screen) over the last days, and every figure a person reads
of it (metrics, a funnel, retention, web stats, people), to compare two instances."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import redis

from nself_analytics.config import Settings
from nself_analytics.host.migrate import apply_migrations
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.store.partitions import forget_partitions
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .integrations_support import CHROME, IPHONE

SITE = "shop.example"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _at(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def messages(prefix: str = "", days: float = 3.0) -> list[dict[str, Any]]:
    """About 40 messages of 4 visitors over ``days`` days; ``prefix`` makes the ids of another set."""
    out: list[dict[str, Any]] = []
    agents = (CHROME, IPHONE, FIREFOX, CHROME)
    for n, agent in enumerate(agents):
        visitor = f"{prefix}v{n}"
        for k, path in enumerate(("/", "/pricing", "/docs")):
            out.append({"type": "page", "anonymousId": visitor, "timestamp": _at(days - n * 0.5 - k * 0.01),
                        "properties": {"url": f"https://{SITE}{path}?utm_source=news", "title": path},
                        "context": {"userAgent": agent, "ip": f"81.2.69.{160 + n}", "locale": "en-US",
                                    "page": {"referrer": "https://www.google.com/"}, "screen": {"width": 1280},
                                    "sessionId": f"{prefix}s{n}"}})
        out.append({"type": "track", "event": "signup", "anonymousId": visitor,
                    "timestamp": _at(days - n * 0.5 - 0.05), "properties": {"plan": "pro" if n % 2 else "free"},
                    "context": {"userAgent": agent}})
        if n < 3:
            out.append({"type": "identify", "userId": f"{prefix}u{n}", "anonymousId": visitor,
                        "timestamp": _at(days - n * 0.5 - 0.06), "traits": {"email": f"{prefix}u{n}@example.com",
                                                                          "n": n}})
            for day in range(3):
                out.append({"type": "track", "event": "purchase", "userId": f"{prefix}u{n}",
                            "timestamp": _at(days - n * 0.5 - 0.07 - day), "properties": {"amount": 10 + n + day}})
    out.append({"type": "alias", "userId": f"{prefix}u0", "previousId": f"{prefix}v3", "timestamp": _at(0.5)})
    out.append({"type": "group", "userId": f"{prefix}u1", "groupId": "g1", "traits": {"name": "Acme"},
                "timestamp": _at(0.4)})
    out.append({"type": "screen", "userId": f"{prefix}u2", "name": "Home", "timestamp": _at(0.3)})
    for message in out:
        message["messageId"] = str(uuid.uuid4())
    return out


async def send(client: Any, auth: Any, batch: list[dict[str, Any]]) -> None:
    for start in range(0, len(batch), 50):
        response = await client.post("/analytics/v1/batch", json={"batch": batch[start:start + 50]},
                                     headers=auth["write"])
        assert response.status == 200, await response.text()


async def hits(client: Any) -> int:
    """Beacon page views (POST /hit), one of them without a visitor id; how many."""
    bodies = [{"site": SITE, "path": "/beacon", "referrer": "https://news.example/item?id=1", "language": "de-DE",
               "screen_width": 390, "session_id": "hit-s1", "anonymous_id": "hit-visitor"},
              {"site": SITE, "path": "/beacon/2", "session_id": "hit-s1", "anonymous_id": "hit-visitor"},
              {"site": SITE, "path": "/", "webdriver": False}]
    for body in bodies:
        response = await client.post("/analytics/hit", json=body, headers={"User-Agent": IPHONE})
        assert response.status == 202, await response.text()
    return len(bodies)


async def _get(client: Any, auth: Any, path: str, **params: Any) -> Any:
    response = await client.get(f"/analytics{path}", headers=auth["secret"], params=params)
    assert response.status == 200, f"{path}: {await response.text()}"
    body = await response.json()
    body.pop("request_id", None)
    return body


async def figures(client: Any, auth: Any, now: int) -> dict[str, Any]:
    """What the dashboards and the API show of the data, up to Unix time ``now``."""
    today = datetime.fromtimestamp(now, UTC).date()
    dates = {"start_date": str(today - timedelta(days=10)), "end_date": str(today)}
    web = {"site": SITE, "start": now - 10 * 86400, "end": now + 1}
    out: dict[str, Any] = {
        "metrics": await _get(client, auth, "/metrics", **dates),
        "funnel": await _get(client, auth, "/funnel", steps="signup,purchase", **dates),
        "retention": await _get(client, auth, "/retention", start_event="signup", period="day", periods="5",
                                **dates),
        "users": await _get(client, auth, "/users"),
    }
    for name in ("pageviews", "pages", "referrers", "devices", "browsers", "languages", "os", "timeseries"):
        out[f"web.{name}"] = await _get(client, auth, f"/api/{name}", **web)
    for who in ("u0", "v3", "u1", "v2"):
        out[f"person.{who}"] = await _get(client, auth, f"/users/{who}")
    return out


def sibling(settings: Settings, name: str, redis_db: int) -> Settings:
    """Settings of a second, empty instance: database ``name`` on the same server and Redis db ``redis_db`` (one
    no other test file uses: 1 is the live service's, 2-4 test_openapi_live's and test_hostile_startup's)."""
    conn = psycopg2.connect(settings.database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    assert settings.database_url and settings.redis_url
    database_url = urlunsplit(urlsplit(settings.database_url)._replace(path=f"/{name}"))
    redis_url = urlunsplit(urlsplit(settings.redis_url)._replace(path=f"/{redis_db}"))
    redis.Redis.from_url(redis_url).flushdb()
    return settings.with_(database_url=database_url, redis_url=redis_url)


def migrate(settings: Settings) -> None:
    assert settings.database_url
    apply_migrations(settings.database_url)
    forget_partitions()


async def drain_app(client: Any, settings: Settings) -> int:
    """Drain the queue of the instance ``client`` serves into its database."""
    forget_partitions()  # the partition cache is the process's: another instance's database made it
    subapp = client.app[ANALYTICS_APP]
    return await Drainer(subapp[PG_POOL], subapp[REDIS], settings, name="test-drainer").drain_until_empty()


def stored_ids(database_url: str) -> list[str]:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT message_id::text FROM np_analytics_events ORDER BY 1")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()
