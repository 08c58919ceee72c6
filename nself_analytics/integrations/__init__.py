"""Clients of the service's HTTP API: the report bots (Telegram, Discord) and the MCP server.

They run as their own processes (``nself-analytics bot telegram|discord``, ``nself-analytics mcp``) and
read only what the HTTP API answers, with ``ANALYTICS_URL`` and ``ANALYTICS_API_TOKEN``. They talk HTTP
only: of the package they may import config (ConfigError) and nothing else.
"""

from __future__ import annotations

from .client import AnalyticsClient, ClientConfig, ServiceError, Unauthorized, Unreachable, parse_range

__all__ = ["AnalyticsClient", "ClientConfig", "ServiceError", "Unauthorized", "Unreachable", "parse_range"]
