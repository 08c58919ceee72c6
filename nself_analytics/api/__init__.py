"""HTTP resources, one module each. ``ROUTES`` is THE route table: every module's ``ROUTES`` (web/routing.py
``Route``: path, handler, credential, parameters, answer, summary), from which the app factory builds the router
and the access rules, /openapi.json its document, and host/manifest.py the route list of plugin.yaml.

Handlers only translate HTTP to service calls and back. May import web, store, ingest, pipeline, model and
config; never a sibling handler (scripts.py, a helper for serving files, aside)."""

from __future__ import annotations

from ..web.routing import Route
from . import (
    alerts,
    beacon,
    campaigns,
    counters,
    dashboard,
    docs,
    event_names,
    explorer,
    export,
    funnels,
    health,
    ingest,
    mcp,
    metrics,
    peaks,
    people,
    posthog,
    privacy,
    quotas,
    retention,
    scheduled_reports,
    sdk,
    stats,
    trends,
    webhooks,
    webtrackers,
)

__all__ = ["ROUTES"]

# a new resource module: add it here (its ROUTES list is the only other place its routes are declared)
_MODULES = [
    health,
    ingest,
    beacon,
    posthog,
    webtrackers,
    sdk,
    stats,
    peaks,
    dashboard,
    docs,
    mcp,
    funnels,
    retention,
    metrics,
    counters,
    quotas,
    explorer,
    trends,
    people,
    export,
    privacy,
    campaigns,
    webhooks,
    event_names,
    alerts,
    scheduled_reports,
]

ROUTES: tuple[Route, ...] = tuple(route for module in _MODULES for route in module.ROUTES)
