"""Request-derived fields of an event: device, browser and OS from the user agent, bot detection,
country from the IP (looked up before the IP is hashed), and the salted IP hash itself."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from datetime import UTC, date, datetime

import redis.asyncio as aioredis

from .redis_keys import PREFIX

__all__ = ["browser_hit_is_bot", "classify_user_agent", "country_for_ip", "daily_salt", "hash_ip", "is_browser_agent"]

# The IP salt of one UTC day: random, shared by all processes through Redis, gone after two days so
# hashes of different days cannot be linked and no raw IP can be recovered. TTL: 2 days.
SALT_PREFIX = PREFIX + "salt:"
SALT_TTL_SECONDS = 2 * 86_400

# Crawlers, link previewers, monitors, headless and automated browsers, and HTTP libraries. Matched
# anywhere in the user agent, case-insensitively; the generic words (bot, crawl, spider) catch most.
_BOT = re.compile(
    r"(?<!cu)bot\b|bot[/;_-]|crawl|spider|slurp|scrape|fetcher|archiver|indexer|"
    r"headless|phantomjs|puppeteer|playwright|selenium|webdriver|cypress|nightmare|"
    r"lighthouse|pagespeed|gtmetrix|ptst/|pingdom|uptime|monitor|statuscake|site24x7|newrelicpinger|"
    r"mediapartners-google|adsbot|apis-google|google-inspectiontool|google-extended|googleother|"
    r"google-read-aloud|feedfetcher|bingpreview|yahoo! slurp|ia_archiver|bytespider|petalbot|"
    r"gptbot|chatgpt-user|oai-searchbot|claudebot|claude-web|anthropic-ai|perplexity|ccbot|cohere-ai|"
    r"facebookexternalhit|facebookcatalog|meta-externalagent|whatsapp|telegrambot|discordbot|slackbot|"
    r"twitterbot|linkedinbot|embedly|quora link preview|vkshare|skypeuripreview|preview|"
    r"w3c_validator|validator\.nu|prerender|rendertron|"
    r"curl/|wget/|httpie|python-requests|python-urllib|python/|aiohttp|httpx|go-http-client|java/|okhttp|"
    r"apache-httpclient|libwww-perl|lwp::|ruby|php/|guzzlehttp|node-fetch|undici|axios/|got \(|"
    r"postmanruntime|insomnia|scrapy|httrack|nutch|dataprovider|zgrab|masscan|nmap",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|(android(?!.*mobile))", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry|opera mini", re.IGNORECASE)
_BROWSERS = (
    ("Edge", re.compile(r"edg(e|a|ios)?/", re.I)),
    ("Opera", re.compile(r"opr/|opera", re.I)),
    ("Samsung Internet", re.compile(r"samsungbrowser", re.I)),
    ("Firefox", re.compile(r"firefox|fxios", re.I)),
    ("Chrome", re.compile(r"chrome|crios|chromium", re.I)),
    ("Safari", re.compile(r"safari", re.I)),
    ("Internet Explorer", re.compile(r"msie|trident", re.I)),
)
_OSES = (
    ("iOS", re.compile(r"iphone|ipad|ipod", re.I)),
    ("Android", re.compile(r"android", re.I)),
    ("Windows", re.compile(r"windows", re.I)),
    ("macOS", re.compile(r"mac os x|macintosh", re.I)),
    ("ChromeOS", re.compile(r"cros", re.I)),
    ("Linux", re.compile(r"linux|x11", re.I)),
)


@functools.lru_cache(maxsize=2048)  # a request's events share one UA, and a site sees few distinct ones
def classify_user_agent(user_agent: str | None) -> tuple[str | None, str | None, str | None, bool]:
    """(device, browser, os, is_bot) of a user-agent string; device is mobile, tablet or desktop."""
    if not user_agent:
        return None, None, None, False
    is_bot = bool(_BOT.search(user_agent))
    device = "tablet" if _TABLET.search(user_agent) else "mobile" if _MOBILE.search(user_agent) else "desktop"
    browser = next((name for name, rx in _BROWSERS if rx.search(user_agent)), None)
    os_name = next((name for name, rx in _OSES if rx.search(user_agent)), None)
    return device, browser, os_name, is_bot


def is_browser_agent(user_agent: str | None) -> bool:
    """Whether a user agent is a web browser's (or claims to be, as crawlers and headless browsers do): every
    browser's starts with ``Mozilla/``; HTTP libraries and server SDKs name themselves instead."""
    return bool(user_agent) and user_agent.startswith("Mozilla/")  # type: ignore[union-attr]


def browser_hit_is_bot(user_agent: str | None) -> bool:
    """Whether a hit that claims to come from the beacon in a web page was sent by a bot.

    Stricter than :func:`classify_user_agent`, which also sees server SDKs: every browser sends a
    ``Mozilla/5.0 (...)`` user agent, so an empty or non-browser one cannot be a person's page view.
    """
    if not user_agent or not user_agent.strip():
        return True
    if not re.match(r"\s*(mozilla|opera)/", user_agent, re.IGNORECASE):
        return True
    return classify_user_agent(user_agent)[3]


@functools.lru_cache(maxsize=4096)  # a batch's events share the request's IP: 18% of /batch's time before (profiled)
def country_for_ip(ip: str | None) -> str | None:
    """ISO country code of an IP from an offline database, or None (private ranges, unknown)."""
    if not ip:
        return None
    from .geo import lookup_country

    return lookup_country(ip)


async def daily_salt(client: aioredis.Redis, now: datetime | None = None) -> str:
    """Today's salt (UTC), created by whichever process asks first; fetched once a day per process."""
    when = now or datetime.now(UTC)
    cached = _salt_cache.get(id(client))
    if cached is not None and cached[0] == when.date():  # no strftime per request: 3% of /track (py-spy)
        return cached[2]
    day = when.strftime("%Y%m%d")
    key = SALT_PREFIX + day
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(key, secrets.token_hex(16), nx=True, ex=SALT_TTL_SECONDS)
        pipe.get(key)
        _created, salt = await pipe.execute()
    _salt_cache[id(client)] = (when.date(), day, str(salt))
    return str(salt)


# client id -> (date, day, salt): the hot ingest path must not pay a Redis round trip for the salt.
_salt_cache: dict[int, tuple[date, str, str]] = {}


def hash_ip(ip: str, salt: str, site: str | None = None) -> str:
    """A salted, truncated SHA-256 of the IP: stable for one day, unlinkable across days."""
    return hashlib.sha256(f"{salt}|{site or ''}|{ip}".encode()).hexdigest()[:16]
