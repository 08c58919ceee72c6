"""THE table of route credentials: every (method, path) the analytics app routes, and what it needs.

The app factory refuses to start when a route is missing here, and tests/test_access.py walks every route of
the router against this table (a missing, a wrong and an insufficient credential must each be refused).
Add a new route here in the same change that adds it. HEAD routes follow their GET.
"""

from __future__ import annotations

from ..web.access import Access
from .campaigns import UTM_ROUTES
from .ingest import BATCH, SINGLE
from .posthog import CAPTURE_PATHS, CONFIG_PATHS, FLAGS_PATHS
from .stats import READERS

__all__ = ["ROUTE_ACCESS"]

PUBLIC, WRITE, TOKEN, SITE = Access.PUBLIC, Access.WRITE, Access.TOKEN, Access.SITE

ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    # ingest and the Segment tracking API: a write key (or a token)
    **{("POST", path): WRITE for path in (*SINGLE, *BATCH)},
    **{("OPTIONS", path): PUBLIC for path in (*SINGLE, *BATCH)},  # CORS preflights carry no credential
    # the beacon and its public hit endpoint (guarded by ANALYTICS_SITES and the rate limit instead)
    ("GET", "/a.js"): PUBLIC,
    # the browser SDK's script-tag bundle: a web page loads it
    ("GET", "/sdk/analytics.js"): PUBLIC,
    ("POST", "/hit"): PUBLIC,
    ("OPTIONS", "/hit"): PUBLIC,
    # PostHog's capture API: a write key as the project key (in the body, as the SDKs send it, or a header); its
    # remote config says only that there is nothing to configure
    **{("POST", path): WRITE for path in (*CAPTURE_PATHS, *FLAGS_PATHS)},
    **{("OPTIONS", path): PUBLIC for path in (*CAPTURE_PATHS, *FLAGS_PATHS)},
    **{("GET", path): PUBLIC for path in CONFIG_PATHS},
    # Plausible's and Umami's tracker endpoints: guarded like /hit (ANALYTICS_SITES, rate limits, bot rules)
    ("POST", "/api/event"): PUBLIC,
    ("OPTIONS", "/api/event"): PUBLIC,
    ("POST", "/api/send"): PUBLIC,
    ("OPTIONS", "/api/send"): PUBLIC,
    # web stats: a token, or a site-scoped token of the requested site
    **{("GET", f"/api/{name}"): SITE for name in READERS},
    **{("GET", f"/api/{name}"): SITE for name in (*UTM_ROUTES, "goals", "realtime")},
    # product analytics and admin: a token
    ("GET", "/funnel"): TOKEN,
    ("GET", "/funnels"): TOKEN,
    ("POST", "/funnels"): TOKEN,
    ("GET", "/funnels/{id}"): TOKEN,
    ("DELETE", "/funnels/{id}"): TOKEN,
    ("GET", "/retention"): TOKEN,
    ("GET", "/metrics"): TOKEN,
    ("GET", "/sessions"): TOKEN,
    ("GET", "/counters/{event}"): TOKEN,
    ("GET", "/quotas"): TOKEN,
    ("POST", "/quotas"): TOKEN,
    ("GET", "/quotas/violations"): TOKEN,
    ("GET", "/quotas/{id}"): TOKEN,
    ("PUT", "/quotas/{id}"): TOKEN,
    ("DELETE", "/quotas/{id}"): TOKEN,
    ("POST", "/quota/check"): TOKEN,
    ("GET", "/events"): TOKEN,
    ("GET", "/events/{name}/properties"): TOKEN,
    ("GET", "/sites"): TOKEN,
    ("GET", "/trends"): TOKEN,
    ("GET", "/users"): TOKEN,
    ("GET", "/users/{id}"): TOKEN,
    ("POST", "/persons/merge"): TOKEN,
    ("POST", "/persons/split"): TOKEN,
    ("GET", "/event-names"): TOKEN,
    ("POST", "/event-names/{name}/block"): TOKEN,
    ("DELETE", "/event-names/{name}/block"): TOKEN,
    ("DELETE", "/event-names/{name}"): TOKEN,
    ("GET", "/webhooks"): TOKEN,
    ("POST", "/webhooks"): TOKEN,
    ("GET", "/webhooks/{id}"): TOKEN,
    ("PATCH", "/webhooks/{id}"): TOKEN,
    ("DELETE", "/webhooks/{id}"): TOKEN,
    ("GET", "/webhooks/{id}/deliveries"): TOKEN,
    # service and documentation pages (/health shows details only with a token)
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/dashboard"): PUBLIC,
    ("GET", "/mcp"): PUBLIC,
    ("GET", "/static/{path}"): PUBLIC,
}
