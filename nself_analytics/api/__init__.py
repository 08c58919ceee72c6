"""HTTP resources, one module each; ROUTE_TABLES lists every module's routes for the app factory,
ROUTE_ACCESS (api/routes.py) the credential each route needs.

Handlers only translate HTTP to service calls and back. May import web, store, ingest, pipeline, model and
config; never a sibling handler (scripts.py, a helper for serving files, aside)."""

from __future__ import annotations

from aiohttp import web

from . import (
    beacon,
    campaigns,
    counters,
    dashboard,
    docs,
    event_names,
    explorer,
    funnels,
    health,
    ingest,
    metrics,
    people,
    posthog,
    quotas,
    retention,
    sdk,
    stats,
    trends,
    webhooks,
    webtrackers,
)
from .routes import ROUTE_ACCESS

__all__ = ["ROUTE_ACCESS", "ROUTE_TABLES"]

ROUTE_TABLES: list[web.RouteTableDef] = [
    health.routes,
    ingest.routes,
    beacon.routes,
    posthog.routes,
    webtrackers.routes,
    sdk.routes,
    stats.routes,
    dashboard.routes,
    docs.routes,
    funnels.routes,
    retention.routes,
    metrics.routes,
    counters.routes,
    quotas.routes,
    explorer.routes,
    trends.routes,
    people.routes,
    campaigns.routes,
    webhooks.routes,
    event_names.routes,
]
