"""Guards of the public beacon (``POST /hit``): which sites it accepts (ANALYTICS_SITES) and how fast (rate limit).

ANALYTICS_SITES is a comma-separated list of ``host`` or ``account=host`` entries; ``*.example.com`` matches every
subdomain of example.com (not example.com itself: list it too). Unset, every site is accepted, into ``primary``.
A hit for a site bound to an account is stored in that account: a web site belongs to the account that ingests it.

The rate limit is a token bucket in Redis, one per client IP and one per site, both checked in one script: a hit
takes a token from each; when either is empty the hit is refused (429) with the seconds until a token is back.
"""

from __future__ import annotations

import hashlib
import math

import redis.asyncio as aioredis

from ..model.settings_values import (
    DEFAULT_ACCOUNT,
    DEFAULT_RATE_PER_IP,
    DEFAULT_RATE_PER_SITE,
    HIT_RATE_PER_IP,
    HIT_RATE_PER_SITE,
    Rate,
    SiteRule,
    parse_rate,
    parse_sites,
)
from .redis_keys import PREFIX

__all__ = [
    "DEFAULT_ACCOUNT", "DEFAULT_RATE_PER_IP", "DEFAULT_RATE_PER_SITE", "HIT_RATE_PER_IP", "HIT_RATE_PER_SITE",
    "Rate", "SiteRule", "ip_key", "parse_rate", "parse_sites", "site_account", "take", "umami_site",
]

# Token buckets, one hash per IP / site: {tokens, ms}. TTL: the time to refill the bucket (then it is full anyway).
RATE_IP_PREFIX = PREFIX + "rl:ip:"
RATE_SITE_PREFIX = PREFIX + "rl:site:"


def site_account(rules: tuple[SiteRule, ...], site: str) -> str | None:
    """The account that owns ``site``; None when ANALYTICS_SITES is set and does not list it (refuse the hit)."""
    if not rules:
        return DEFAULT_ACCOUNT
    exact = [r for r in rules if r.host == site]
    for rule in exact or rules:
        if rule.matches(site):
            return rule.account
    return None


def umami_site(rules: tuple[SiteRule, ...], website: str) -> str | None:
    """The site an Umami website id names in ANALYTICS_SITES (``host@uuid``), else None."""
    website = website.strip().lower()
    return next((rule.host for rule in rules if rule.umami_website == website), None)


def ip_key(ip: str | None, secret: str) -> str:
    """The bucket name of a client IP: a hash keyed by the instance's secret (the same on every instance)."""
    return hashlib.blake2b((ip or "-").encode(), key=secret.encode()[:64], digest_size=12).hexdigest()


# KEYS: buckets; ARGV: now_ms, then burst and tokens-per-ms of each bucket. Returns 0 (taken) or the ms to wait.
_TAKE = """
local now = tonumber(ARGV[1])
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'ms')
  local tokens = tonumber(state[1]) or burst
  local last = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, math.ceil((1 - tokens) / rate)) end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  redis.call('HSET', key, 'tokens', levels[i] - 1, 'ms', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate) + 1000)
end
return 0
"""


async def take(client: aioredis.Redis, now_ms: int, buckets: list[tuple[str, Rate]]) -> float:
    """Take one token from every bucket, or none; return 0 when taken, else the seconds to wait."""
    if not buckets:
        return 0.0
    argv: list[float] = [now_ms]
    for _key, rate in buckets:
        argv += [rate.burst, rate.per_ms]
    wait_ms = await client.register_script(_TAKE)(keys=[key for key, _ in buckets], args=argv)
    return math.ceil(int(wait_ms) / 1000) if wait_ms else 0.0
