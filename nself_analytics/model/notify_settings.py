"""The settings of the notification channels of alerts and reports (README "Alerts and reports"): the SMTP
server and sender, the chat bots' tokens, the dashboard's public URL for links. ``Settings`` (config.py) inherits
these fields, so they read as ``settings.smtp``; :func:`notify_env` parses them from the environment."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .mail_url import TELEGRAM_API, SmtpUrl, parse_http_url, parse_sender, parse_smtp_url

__all__ = ["BadSetting", "NotifySettings", "notify_env"]


class BadSetting(ValueError):
    """A notification variable's value is unusable (config.py turns it into its ConfigError)."""

    def __init__(self, variable: str, value: str, reason: str) -> None:
        self.variable, self.value, self.reason = variable, value, reason
        super().__init__(reason)


@dataclass(frozen=True, kw_only=True)
class NotifySettings:
    # the leader's check interval of alerts and due reports
    alert_check_interval: float = 60.0
    smtp: SmtpUrl | None = None
    smtp_from: str = "nself-analytics@localhost"
    smtp_ca_file: str | None = None  # PEM CAs the SMTP server's certificate must verify against (else the system's)
    telegram_token: str | None = None
    telegram_api_url: str = TELEGRAM_API
    discord_token: str | None = None
    public_url: str | None = None

    def unconfigured(self, telegram_chat: str | None, discord_channel: str | None, emails: list[str]) -> str | None:
        """The 400 message of the first recipient whose channel is not configured on the service, or None."""
        wanted = [(telegram_chat, "telegram_chat", "TELEGRAM_BOT_TOKEN", self.telegram_token),
                  (discord_channel, "discord_channel", "DISCORD_BOT_TOKEN", self.discord_token),
                  (emails, "emails", "ANALYTICS_SMTP_URL", self.smtp)]
        for recipient, field, variable, configured in wanted:
            if recipient and not configured:
                return f"channels.{field} needs {variable} set on the service"
        return None


def _parsed(parse: Callable[[str], Any], env: Mapping[str, str], name: str, default: str, shown: bool = True) -> Any:
    text = env.get(name, default)
    try:
        return parse(text)
    except ValueError as exc:  # a hidden value may hold a password
        raise BadSetting(name, text if shown else "(hidden)", str(exc)) from None


def _ca_file(text: str) -> str | None:
    """A readable PEM file of CA certificates ('' is none: the system's CAs)."""
    path = text.strip()
    if not path:
        return None
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"not a readable PEM file of CA certificates ({type(exc).__name__})") from None
    return path


def notify_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The fields of :class:`NotifySettings` but the interval, from the environment; BadSetting for a bad one."""
    return {
        "smtp": _parsed(lambda t: parse_smtp_url(t) if t.strip() else None, env, "ANALYTICS_SMTP_URL", "", False),
        "smtp_from": _parsed(parse_sender, env, "ANALYTICS_SMTP_FROM", "nself-analytics@localhost"),
        "smtp_ca_file": _parsed(_ca_file, env, "ANALYTICS_SMTP_CA_FILE", ""),
        "telegram_token": env.get("TELEGRAM_BOT_TOKEN", "").strip() or None,
        "telegram_api_url": _parsed(parse_http_url, env, "ANALYTICS_TELEGRAM_API_URL", TELEGRAM_API),
        "discord_token": env.get("DISCORD_BOT_TOKEN", "").strip() or None,
        "public_url": _parsed(parse_http_url, env, "ANALYTICS_PUBLIC_URL", "") or None,
    }
