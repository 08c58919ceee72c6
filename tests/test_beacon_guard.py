"""The public beacon's guards: ANALYTICS_SITES (403, and a site's account), the per-IP and per-site rate limit
(429 + Retry-After), and forwarding headers believed only from ANALYTICS_TRUSTED_PROXIES, on every route."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from nself_analytics.config import ConfigError, Settings
from nself_analytics.ingest.redis_keys import STREAM_KEY
from nself_analytics.ingest.site_guard import Rate, parse_rate, parse_sites, site_account
from nself_analytics.web.forwarded import client_address, parse_networks

from .conftest import SECRET, WRITE_KEY, pg_execute

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")


async def hit(client: Any, site: str, session: str | None = None, **headers: str) -> Any:
    body: dict[str, Any] = {"site": site, "path": "/"}
    if session:
        body["session_id"] = session
    return await client.post("/analytics/hit", data=json.dumps(body),
                             headers={"User-Agent": CHROME, "Content-Type": "text/plain", **headers})


def queued(settings: Settings) -> int:
    return int(redis.Redis.from_url(settings.redis_url).xlen(STREAM_KEY))


def test_sites_and_rates_parse_and_refuse_bad_values() -> None:
    rules = parse_sites("example.com, tenant_b=*.tenantb.io,Shop.Example.org.")
    assert site_account(rules, "example.com") == "primary"
    assert site_account(rules, "blog.tenantb.io") == "tenant_b"
    assert site_account(rules, "tenantb.io") is None  # a wildcard covers subdomains only
    assert site_account(rules, "shop.example.org") == "primary"
    assert site_account(rules, "evil.example") is None and site_account((), "anything.example") == "primary"
    assert parse_rate("300/m") == Rate(300, 60) and parse_rate("off") is None
    env = {"ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY}
    for variable, value in [("ANALYTICS_SITES", "exa mple.com"), ("ANALYTICS_SITES", "bad account=x.com"),
                            ("ANALYTICS_TRUSTED_PROXIES", "10.0.0.0/33"), ("ANALYTICS_TRUSTED_PROXIES", "proxy"),
                            ("ANALYTICS_HIT_RATE_PER_IP", "fast"), ("ANALYTICS_HIT_RATE_PER_SITE", "0/m")]:
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({**env, variable: value}, persist_secrets=False)
        assert caught.value.variable == variable


async def test_sites_refuse_other_hosts_and_bind_accounts(make_client: Any, settings: Settings, drain: Any) -> None:
    client = await make_client(settings.with_(sites=parse_sites("example.com,tenant_b=*.tenantb.io")))
    refused = await hit(client, "evil.example")
    assert refused.status == 403 and refused.headers["Access-Control-Allow-Origin"] == "*"
    assert (await refused.json())["status"] == "error" and queued(settings) == 0
    assert (await hit(client, "example.com")).status == 202
    assert (await hit(client, "blog.tenantb.io")).status == 202
    await drain()
    stored = pg_execute(settings.database_url, "SELECT site, source_account_id FROM np_analytics_events ORDER BY site")
    assert stored == [("blog.tenantb.io", "tenant_b"), ("example.com", "primary")]


async def test_rate_limit_per_ip_answers_429_with_retry_after(make_client: Any, settings: Settings) -> None:
    client = await make_client(settings.with_(hit_rate_ip=Rate(3, 60), hit_rate_site=None))
    statuses = [(await hit(client, "example.com", f"s{i}", **{"X-Forwarded-For": "203.0.113.5"})).status
                for i in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    limited = await hit(client, "example.com", "s9", **{"X-Forwarded-For": "203.0.113.5"})
    assert limited.status == 429 and 1 <= int(limited.headers["Retry-After"]) <= 20
    assert limited.headers["Access-Control-Allow-Origin"] == "*"
    assert (await hit(client, "example.com", "t", **{"X-Forwarded-For": "203.0.113.6"})).status == 202
    assert queued(settings) == 4  # refused hits are not queued
    keys = redis.Redis.from_url(settings.redis_url, decode_responses=True).keys("np_analytics:rl:*")
    assert len(keys) == 2 and not any("203.0.113" in key for key in keys)  # buckets never name the raw IP


async def test_rate_limit_per_site(make_client: Any, settings: Settings) -> None:
    client = await make_client(settings.with_(hit_rate_ip=None, hit_rate_site=Rate(2, 3600)))
    statuses = [(await hit(client, "example.com", **{"X-Forwarded-For": f"198.51.100.{i}"})).status for i in range(4)]
    assert statuses == [202, 202, 429, 429]
    assert (await hit(client, "other.example", **{"X-Forwarded-For": "198.51.100.9"})).status == 202
    retry = await hit(client, "example.com", **{"X-Forwarded-For": "198.51.100.10"})
    assert 1700 <= int(retry.headers["Retry-After"]) <= 1800  # one token of 2 per hour: half an hour


async def test_forged_forwarding_headers_change_nothing(make_client: Any, settings: Settings, drain: Any) -> None:
    """From an untrusted peer, 40 hits with rotating X-Forwarded-For count as one visitor with no country; the
    same hits through a trusted proxy are believed (the control)."""
    untrusted = settings.with_(trusted_proxies=parse_networks("10.0.0.0/8"))  # the test client's 127.0.0.1 is not
    client = await make_client(untrusted)
    countries = ["8.8.8.8", "81.2.69.160", "1.0.16.1", "200.160.2.3"]  # US, GB, JP, BR
    for i in range(40):
        response = await hit(client, "example.com", **{"X-Forwarded-For": countries[i % 4], "X-Real-IP": "9.9.9.9"})
        assert response.status == 202
    await drain()
    stored = pg_execute(settings.database_url,
                        "SELECT count(DISTINCT ip_hash), count(DISTINCT session_id), count(country) "
                        "FROM np_analytics_events")
    assert stored == [(1, 1, 0)]
    for path in ("/analytics/openapi.json", "/analytics/mcp"):
        response = await client.get(path, headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
                                                   "Accept": "application/json"})
        text = await response.text()
        assert response.status == 200 and "evil.example" not in text, path
    body = await (await client.get("/analytics/openapi.json", headers={"X-Forwarded-Host": "evil.example"})).json()
    assert body["servers"][0]["url"].startswith("http://127.0.0.1:")

    trusted = await make_client(settings.with_(trusted_proxies=parse_networks("127.0.0.0/8")))
    body = await (await trusted.get("/analytics/openapi.json", headers={"X-Forwarded-Host": "stats.example.com",
                                                                        "X-Forwarded-Proto": "https"})).json()
    assert body["servers"][0]["url"] == "https://stats.example.com/analytics"
    for ip in countries:
        assert (await hit(trusted, "control.example", **{"X-Forwarded-For": ip})).status == 202
    await drain()
    believed = pg_execute(settings.database_url, "SELECT count(DISTINCT ip_hash), count(DISTINCT country) "
                                                 "FROM np_analytics_events WHERE site = 'control.example'")
    assert believed == [(4, 4)]


def test_client_address_walks_the_chain_from_the_right() -> None:
    proxies = parse_networks("127.0.0.0/8,10.0.0.0/8")
    assert client_address("127.0.0.1", "203.0.113.1, 10.1.2.3", proxies) == "203.0.113.1"
    assert client_address("127.0.0.1", "6.6.6.6, 203.0.113.1", proxies) == "203.0.113.1"  # the client's own forgery
    assert client_address("192.0.2.7", "203.0.113.1", proxies) == "192.0.2.7"  # untrusted peer: header ignored
    assert client_address("127.0.0.1", "not-an-ip", proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", "10.0.0.1, 10.0.0.2", proxies) == "10.0.0.1"
