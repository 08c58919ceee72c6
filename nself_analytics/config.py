"""Settings: parsed once from the environment into one frozen, typed object.

Every ``ANALYTICS_*`` variable of the spec is read here and nowhere else. A bad value raises
:class:`ConfigError` naming the variable and the value, which stops start-up.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from .model.notify_settings import BadSetting, NotifySettings, notify_env
from .model.settings_values import (
    DEFAULT_RATE_PER_IP,
    DEFAULT_RATE_PER_SITE,
    DEFAULT_TRUSTED_PROXIES,
    HIT_RATE_PER_IP,
    HIT_RATE_PER_SITE,
    KEY_KINDS,
    TRUSTED_PROXIES,
    Credential,
    Network,
    Rate,
    SiteRule,
    parse_entries,
    parse_networks,
    parse_origins,
    parse_rate,
    parse_sites,
)

__all__ = ["ConfigError", "Settings", "parse_duration", "write_private"]

T = TypeVar("T")
DEFAULT_PORT = 3206
MIN_TOKEN_LENGTH = 16
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A configuration variable holds a value the service cannot run with."""

    def __init__(self, variable: str, value: object, reason: str) -> None:
        self.variable = variable
        self.value = value
        super().__init__(f"invalid {variable}={value!r}: {reason}")


def parse_duration(text: str) -> float:
    """Parse ``30s``, ``5m``, ``2h``, ``7d`` (a bare number is seconds) into seconds; ValueError if not."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h, 7d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


# ANALYTICS_DEDUPE_WINDOW: never shorter than the Redis accept-side de-duplication (keys.DEDUPE_TTL_SECONDS).
MIN_DEDUPE_WINDOW = 86_400.0

# ANALYTICS_WORKERS: more processes than this is a typo, not a machine.
MAX_WORKERS = 256


@dataclass(frozen=True)
class Settings(NotifySettings):
    """Everything the service is configured with (the notification channels' fields: NotifySettings). Tests
    build it directly; the service uses from_env()."""

    secret_token: str
    write_keys: tuple[str, ...]
    data_dir: Path = Path(".nself-analytics")
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    retention_days: int = 90
    # Seconds a stored event's message id is remembered by Postgres (np_analytics_message_ids): a client retry
    # inside it is stored once, one after it again (as Segment). At 24 h (the enqueue script's window) the drain
    # records none for its fresh batches, which stream ranges keep exactly once (store/drain_ranges.py).
    dedupe_window: float = 48 * 3600.0
    aggregate_interval: float = 300.0
    queue_buffer: int = 10_000
    batch_size: int = 500
    quota_enabled: bool = False
    sample_rate: float = 1.0
    ip_hash: bool = True
    log_format: str = "json"
    log_level: str = "info"
    # How long a delivered but unacknowledged queue entry waits before another drainer reclaims it.
    reclaim_idle_seconds: float = 15.0
    # Webhooks: one delivery attempt's total time; the first retry's delay (doubling); how long to retry.
    webhook_timeout: float = 10.0
    webhook_retry_base: float = 10.0
    webhook_retry_for: float = 86_400.0
    # Access (README "Security"): beacon sites, proxies whose forwarding headers are believed, /hit rate limits.
    sites: tuple[SiteRule, ...] = ()
    trusted_proxies: tuple[Network, ...] = TRUSTED_PROXIES
    # Browser origins besides the service's own that may call POST /analytics/mcp (others: 403)
    mcp_origins: tuple[str, ...] = ()
    hit_rate_ip: Rate | None = HIT_RATE_PER_IP
    hit_rate_site: Rate | None = HIT_RATE_PER_SITE
    # Scale-out (docs/scaling.md): processes serving the port (each with its own pools and drainers); a streaming
    # replica that every analytical read query goes to (pools.reading).
    workers: int = 1
    read_database_url: str | None = None
    # Names of the credentials generated (and stored) by this from_env(): printed once, never again.
    secrets_generated: tuple[str, ...] = ()
    # Server-side statement timeout of every read query (the API's pool); background statements: see below.
    query_timeout: float = 30.0
    # Entries kept in the dead-letter stream at most (the oldest go first); also trimmed to the retention window.
    dead_letter_max: int = 10_000
    # Distinct event names per account within the retention window; a new name past it is not stored.
    max_event_names: int = 2000
    # Bytes: of payloads waiting in the ingest stream (503 past it, like queue_buffer), of one drain batch, and
    # of what one request may store (a batch's shared context counted once).
    queue_bytes: int = 100 * 1024 * 1024
    batch_bytes: int = 8 * 1024 * 1024
    request_bytes: int = 1024 * 1024
    # New event names per account and UTC day that messages sent with a public write key may add (README "Security").
    public_new_names_per_day: int = 50
    # Identity: the most distinct ids one person may hold; a link past it is refused (README "Security").
    max_ids_per_person: int = 500
    # Background statements (drain, aggregator, maintenance, webhooks): every one runs under a server-side timeout.
    # The drain's write of a batch gets drain_statement_timeout plus drain_timeout_per_entry per entry; a batch
    # that takes longer is split like one whose data Postgres refuses, and an entry that alone takes longer
    # (once more with 4x the time) is dead-lettered. Every other background statement: background_timeout.
    drain_statement_timeout: float = 5.0
    drain_timeout_per_entry: float = 0.01
    background_timeout: float = 120.0
    # Whether ``start`` applies pending migrations (``start --migrate``, hooks/start: one box) instead of refusing
    # to serve a schema behind this version (``build`` applies them).
    migrate_on_start: bool = False

    @cached_property
    def tokens(self) -> tuple[Credential, ...]:
        """The entries of ANALYTICS_SECRET_TOKEN (full tokens, account-bound tokens, site tokens)."""
        return parse_entries(self.secret_token, "ANALYTICS_SECRET_TOKEN", "token")

    @cached_property
    def writers(self) -> tuple[Credential, ...]:
        """The entries of ANALYTICS_WRITE_KEYS, then the tokens that may also ingest (not site tokens)."""
        keys = tuple(c for k in self.write_keys for c in parse_entries(k, "ANALYTICS_WRITE_KEYS", "write"))
        return keys + tuple(c for c in self.tokens if c.role == "token")

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the embedded-services resolver use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, persist_secrets: bool = True) -> Settings:
        """Build settings from environment variables; raise ConfigError naming the first bad variable.

        With no ANALYTICS_SECRET_TOKEN / ANALYTICS_WRITE_KEYS, values are generated once and kept in
        the data folder (``secrets.env``) so they survive restarts.
        """
        env = os.environ if env is None else env
        data_dir = Path(env.get("ANALYTICS_DATA_DIR") or ".nself-analytics").expanduser().absolute()
        port_text = env.get("ANALYTICS_PORT") or env.get("PORT") or str(DEFAULT_PORT)
        port = _int(port_text, "ANALYTICS_PORT" if env.get("ANALYTICS_PORT") else "PORT", 1, 65535)
        stored, generated = _load_or_create_secrets(data_dir, env, persist_secrets)
        write_keys = tuple(k.strip() for k in stored["ANALYTICS_WRITE_KEYS"].split(",") if k.strip())
        secret = stored["ANALYTICS_SECRET_TOKEN"]
        _check_credentials(secret, write_keys)
        log_format = env.get("ANALYTICS_LOG_FORMAT", "json")
        if log_format not in ("json", "console"):
            raise ConfigError("ANALYTICS_LOG_FORMAT", log_format, "use json or console")
        try:
            notify = notify_env(env)
        except BadSetting as exc:
            raise ConfigError(exc.variable, exc.value, exc.reason) from None
        return cls(
            secrets_generated=generated,
            secret_token=secret,
            write_keys=write_keys,
            data_dir=data_dir,
            database_url=env.get("DATABASE_URL") or None,
            redis_url=_redis_url(env),
            host=env.get("ANALYTICS_HOST", "0.0.0.0"),
            port=port,
            retention_days=_int(env.get("ANALYTICS_RETENTION_DAYS", "90"), "ANALYTICS_RETENTION_DAYS", 1, 36500),
            dedupe_window=_dedupe_window(env.get("ANALYTICS_DEDUPE_WINDOW", "48h")),
            aggregate_interval=_duration(env.get("ANALYTICS_AGGREGATE_INTERVAL", "5m"), "ANALYTICS_AGGREGATE_INTERVAL"),
            queue_buffer=_int(env.get("ANALYTICS_QUEUE_BUFFER", "10000"), "ANALYTICS_QUEUE_BUFFER", 1, 100_000_000),
            batch_size=_int(env.get("ANALYTICS_BATCH_SIZE", "500"), "ANALYTICS_BATCH_SIZE", 1, 100_000),
            quota_enabled=_bool(env.get("ANALYTICS_QUOTA_ENABLED", "false"), "ANALYTICS_QUOTA_ENABLED"),
            sample_rate=_float(env.get("ANALYTICS_SAMPLE_RATE", "1.0"), "ANALYTICS_SAMPLE_RATE", 0.0, 1.0),
            ip_hash=_bool(env.get("ANALYTICS_IP_HASH", "true"), "ANALYTICS_IP_HASH"),
            log_format=log_format,
            log_level=env.get("ANALYTICS_LOG_LEVEL", "info").lower(),
            reclaim_idle_seconds=_duration(env.get("ANALYTICS_RECLAIM_IDLE", "15s"), "ANALYTICS_RECLAIM_IDLE"),
            webhook_timeout=_bounded(env.get("ANALYTICS_WEBHOOK_TIMEOUT", "10s"), "ANALYTICS_WEBHOOK_TIMEOUT", 300),
            webhook_retry_base=_duration(env.get("ANALYTICS_WEBHOOK_RETRY_BASE", "10s"),
                                         "ANALYTICS_WEBHOOK_RETRY_BASE"),
            webhook_retry_for=_duration(env.get("ANALYTICS_WEBHOOK_RETRY_FOR", "24h"), "ANALYTICS_WEBHOOK_RETRY_FOR"),
            sites=_parsed(parse_sites, env.get("ANALYTICS_SITES", ""), "ANALYTICS_SITES"),
            trusted_proxies=_parsed(parse_networks, env.get("ANALYTICS_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES),
                                    "ANALYTICS_TRUSTED_PROXIES"),
            mcp_origins=_parsed(parse_origins, env.get("ANALYTICS_MCP_ORIGINS", ""), "ANALYTICS_MCP_ORIGINS"),
            hit_rate_ip=_parsed(parse_rate, env.get("ANALYTICS_HIT_RATE_PER_IP", DEFAULT_RATE_PER_IP),
                                "ANALYTICS_HIT_RATE_PER_IP"),
            hit_rate_site=_parsed(parse_rate, env.get("ANALYTICS_HIT_RATE_PER_SITE", DEFAULT_RATE_PER_SITE),
                                  "ANALYTICS_HIT_RATE_PER_SITE"),
            read_database_url=env.get("ANALYTICS_READ_DATABASE_URL") or None,
            workers=_int(env.get("ANALYTICS_WORKERS") or str(os.cpu_count() or 1), "ANALYTICS_WORKERS", 1, MAX_WORKERS),
            query_timeout=_duration(env.get("ANALYTICS_QUERY_TIMEOUT", "30s"), "ANALYTICS_QUERY_TIMEOUT"),
            dead_letter_max=_int(env.get("ANALYTICS_DEAD_LETTER_MAX", "10000"), "ANALYTICS_DEAD_LETTER_MAX", 1,
                                 10_000_000),
            max_event_names=_int(env.get("ANALYTICS_MAX_EVENT_NAMES", "2000"), "ANALYTICS_MAX_EVENT_NAMES", 1,
                                 1_000_000),
            queue_bytes=_size(env.get("ANALYTICS_QUEUE_BYTES", "100MB"), "ANALYTICS_QUEUE_BYTES", 64 * 1024),
            batch_bytes=_size(env.get("ANALYTICS_BATCH_BYTES", "8MB"), "ANALYTICS_BATCH_BYTES", 64 * 1024),
            request_bytes=_size(env.get("ANALYTICS_REQUEST_BYTES", "1MB"), "ANALYTICS_REQUEST_BYTES", 64 * 1024),
            public_new_names_per_day=_int(env.get("ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY", "50"),
                                          "ANALYTICS_PUBLIC_NEW_NAMES_PER_DAY", 0, 1_000_000),
            max_ids_per_person=_int(env.get("ANALYTICS_MAX_IDS_PER_PERSON", "500"), "ANALYTICS_MAX_IDS_PER_PERSON",
                                    2, 100_000),
            drain_statement_timeout=_bounded(env.get("ANALYTICS_DRAIN_STATEMENT_TIMEOUT", "5s"),
                                             "ANALYTICS_DRAIN_STATEMENT_TIMEOUT", 600),
            background_timeout=_bounded(env.get("ANALYTICS_BACKGROUND_TIMEOUT", "120s"), "ANALYTICS_BACKGROUND_TIMEOUT",
                                        3600),
            migrate_on_start=_bool(env.get("ANALYTICS_MIGRATE_ON_START", "false"), "ANALYTICS_MIGRATE_ON_START"),
            alert_check_interval=_bounded(env.get("ANALYTICS_ALERT_CHECK_INTERVAL", "60s"),
                                          "ANALYTICS_ALERT_CHECK_INTERVAL", 900),
            **notify,
        )


def _parsed(parse: Callable[[str], T], text: str, name: str) -> T:
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigError(name, text, str(exc)) from None


def _int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(name, text, "not an integer") from None
    if not low <= value <= high:
        raise ConfigError(name, text, f"must be between {low} and {high}")
    return value


_SIZE = re.compile(r"^\s*(\d+)\s*(|B|KB|K|MB|M|GB|G)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


def _size(text: str, name: str, low: int) -> int:
    """Bytes of ``8MB``, ``512KB``, ``1G`` or a bare number (binary multiples)."""
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(name, text, "not a size (use e.g. 512KB, 8MB, 1GB)")
    value = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if not low <= value <= 64 * 1024**3:
        raise ConfigError(name, text, f"must be between {low} bytes and 64GB")
    return value


def _float(text: str, name: str, low: float, high: float) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(name, text, "not a number") from None
    if not low <= value <= high:
        raise ConfigError(name, text, f"must be between {low} and {high}")
    return value


def _bool(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(name, text, "use true or false")


def _duration(text: str, name: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(name, text, str(exc)) from None


def _dedupe_window(text: str) -> float:
    """At least the Redis accept-side window (24 h), so Postgres never forgets an id Redis still stops; at most
    a year (the table holds one window of ids)."""
    seconds = _duration(text, "ANALYTICS_DEDUPE_WINDOW")
    if not MIN_DEDUPE_WINDOW <= seconds <= 366 * 86_400:
        raise ConfigError("ANALYTICS_DEDUPE_WINDOW", text,
                          f"must be between {MIN_DEDUPE_WINDOW:g} seconds and 366 days")
    return seconds


def _bounded(text: str, name: str, most: float) -> float:
    seconds = _duration(text, name)
    if seconds > most:
        raise ConfigError(name, text, f"must be at most {most:g} seconds")
    return seconds


def _check_credentials(secret: str, write_keys: tuple[str, ...]) -> None:
    """Parse both credential variables once, so a bad entry stops start-up (the secret itself is never shown)."""
    try:
        tokens = parse_entries(secret, "ANALYTICS_SECRET_TOKEN", "token", MIN_TOKEN_LENGTH)
    except ValueError as exc:
        raise ConfigError("ANALYTICS_SECRET_TOKEN", "***", str(exc)) from None
    try:
        keys = [c for k in write_keys for c in parse_entries(k, "ANALYTICS_WRITE_KEYS", "write")]
    except ValueError as exc:
        raise ConfigError("ANALYTICS_WRITE_KEYS", "***", str(exc)) from None
    if not tokens:
        raise ConfigError("ANALYTICS_SECRET_TOKEN", "***", "needs at least one token")
    if not keys:
        raise ConfigError("ANALYTICS_WRITE_KEYS", "***", "needs at least one key")
    secrets_seen = [c.secret for c in (*tokens, *keys)]
    if len(set(secrets_seen)) != len(secrets_seen):
        raise ConfigError("ANALYTICS_WRITE_KEYS", "***", "every secret must differ (a write key from the token too)")


def _redis_url(env: Mapping[str, str]) -> str | None:
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    host = env.get("REDIS_HOST")
    if not host:
        return None
    port = _int(env.get("REDIS_PORT", "6379"), "REDIS_PORT", 1, 65535)
    password = env.get("REDIS_PASSWORD")
    auth = f":{password}@" if password else ""
    return f"redis://{auth}{host}:{port}/0"


def _load_or_create_secrets(data_dir: Path, env: Mapping[str, str],
                            persist: bool) -> tuple[dict[str, str], tuple[str, ...]]:
    """Secrets from the environment, else from ``<data_dir>/secrets.env``, else newly generated and stored.

    Returns the values and the names of those generated now (and in use): only those are ever printed.
    """
    path = data_dir / "secrets.env"
    stored: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                stored[key.strip()] = value.strip()
    generated = []
    if "ANALYTICS_SECRET_TOKEN" not in stored:
        stored["ANALYTICS_SECRET_TOKEN"] = "sk_" + secrets.token_urlsafe(24)
        generated.append("ANALYTICS_SECRET_TOKEN")
    if "ANALYTICS_WRITE_KEYS" not in stored:
        # the generated key is the one a fresh install's pages embed: public (README "Security")
        stored["ANALYTICS_WRITE_KEYS"] = "public:wk_" + secrets.token_urlsafe(18)
        generated.append("ANALYTICS_WRITE_KEYS")
    result = dict(stored)
    # a key kept in secrets.env was generated for the pages of an install (older releases wrote it bare): public
    result["ANALYTICS_WRITE_KEYS"] = ",".join(
        entry if entry.strip().startswith(KEY_KINDS) else "public:" + entry.strip()
        for entry in stored["ANALYTICS_WRITE_KEYS"].split(",") if entry.strip())
    for key in ("ANALYTICS_SECRET_TOKEN", "ANALYTICS_WRITE_KEYS"):
        if env.get(key):
            result[key] = env[key]
    if generated and persist and not (env.get("ANALYTICS_SECRET_TOKEN") and env.get("ANALYTICS_WRITE_KEYS")):
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, "".join(f"{k}={v}\n" for k, v in stored.items() if not k.startswith("_")))
        return result, tuple(name for name in generated if not env.get(name))
    return result, ()


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in a file that is 0600 from its first byte (no window for other users)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
