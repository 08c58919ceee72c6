"""ANALYTICS_SMTP_URL as a typed value: ``smtp://user:pass@host:port?starttls=1`` (plain SMTP, upgraded with
STARTTLS when ``starttls=1``: a server that does not offer it fails the send, never a plain-text one), or
``smtps://user:pass@host:port`` (TLS from the first byte). The server's certificate must verify against the system's
CAs (or ANALYTICS_SMTP_CA_FILE) for its host name unless the URL says ``verify=0``. User and password are
percent-decoded; the default ports are 587 (smtp with starttls), 25 (smtp) and 465 (smtps)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["TELEGRAM_API", "SmtpUrl", "parse_http_url", "parse_sender", "parse_smtp_url"]

TELEGRAM_API = "https://api.telegram.org/bot"
_SENDER = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}$")
_HTTP = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class SmtpUrl:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False
    verify: bool = True  # the certificate of a TLS connection must verify (verify=0: accept any, still encrypted)

    def __repr__(self) -> str:  # never print the password
        return (f"SmtpUrl(host={self.host!r}, port={self.port}, tls={self.tls}, starttls={self.starttls}, "
                f"verify={self.verify})")


def parse_smtp_url(text: str) -> SmtpUrl:
    """The parsed URL; ValueError saying what is wrong (never quoting the password)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ValueError("not a URL: use smtp://user:pass@host:587?starttls=1 or smtps://user:pass@host:465") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("the scheme must be smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("the URL takes no path")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"starttls", "verify"}
    if unknown:
        raise ValueError(f"unknown parameter {sorted(unknown)[0][:32]!r}: only starttls and verify")
    starttls, verify = _flag(query, "starttls", "0"), _flag(query, "verify", "1")
    tls = parts.scheme == "smtps"
    if tls and starttls:
        raise ValueError("smtps:// is TLS already: starttls=1 is for smtp://")
    default = 465 if tls else 587 if starttls else 25
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise ValueError("a password needs a user name")
    if not verify and not (tls or starttls):
        raise ValueError("verify=0 is for a TLS connection: smtps:// or starttls=1")
    return SmtpUrl(host=parts.hostname, port=port or default, username=username, password=password,
                   starttls=starttls, tls=tls, verify=verify)


def _flag(query: dict[str, list[str]], name: str, default: str) -> bool:
    flag = query.get(name, [default])[-1].lower()
    if flag not in _TRUE + _FALSE:
        raise ValueError(f"{name} must be 1 or 0")
    return flag in _TRUE


def parse_sender(text: str) -> str:
    """ANALYTICS_SMTP_FROM: one plain address."""
    if not _SENDER.match(text.strip()):
        raise ValueError("use an address such as analytics@example.com")
    return text.strip()


def parse_http_url(text: str) -> str:
    """An http(s) base URL without a trailing slash ('' stays '')."""
    text = text.strip().rstrip("/")
    if text and not _HTTP.match(text):
        raise ValueError("use an http:// or https:// URL")
    return text
