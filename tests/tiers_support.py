"""The test tiers: which of `unit`, `db` and `live` a test belongs to (markers registered in setup.cfg, set by
tests/conftest.py at collection)."""

from __future__ import annotations

import pytest

# `pytest -m unit` is the fast layer. A tier is decided from what a test uses,
# so test files carry no marker: a test is `live` when it uses a browser, a service process, a client library or
# SDK, a server of its own or a chaos run (by fixture, or by file or name below where it starts one itself); `db`
# when it needs the shared PostgreSQL/Redis (the `stores` fixture, directly or through client, clean, ...);
# `unit` otherwise. A tier marker written on a test wins.
TIERS = ("unit", "db", "live")
LIVE_FIXTURES = frozenset({"live_service", "report_site", "own_redis", "own_postgres", "browser", "chromium", "pair"})
LIVE_FILES = frozenset({
    "test_bots.py", "test_browser_alerts.py", "test_browser_dashboard.py", "test_browser_dashboard_views.py",
    "test_browser_web.py",
    "test_clients.py", "test_hostile_startup.py", "test_mcp.py", "test_mcp_http.py", "test_openapi_live.py",
    "test_packaging.py", "test_replica.py", "test_resilience.py", "test_scale.py", "test_sdk_go.py", "test_sdk_js.py",
    "test_sdk_typescript.py", "test_soak.py",
    "test_store_access.py",
})
LIVE_TESTS = {
    "test_foundation.py": frozenset({
        "test_bad_variable_stops_start", "test_console_script_build_twice_on_embedded_postgres",
        "test_embedded_redis_restart_keeps_data", "test_embedded_postgres_restart_keeps_data",
        "test_start_embedded_then_sigterm_stops_everything"}),
    "test_checkout_tools.py": frozenset({"test_status_and_stop_hooks_from_the_checkout"}),
    # the npm packages of the drop-in tests (installed with the clients, by .ci/run's npm ci)
    "test_dropin_posthog.py": frozenset({"test_posthog_js_is_installed"}),
    "test_dropin_web.py": frozenset({"test_trackers_are_installed"}),
}


def tier_of(item: pytest.Item) -> str:
    marked = [tier for tier in TIERS if item.get_closest_marker(tier)]
    if marked:
        return marked[0]
    fixtures = set(getattr(item, "fixturenames", ()))
    file = item.path.name
    name = getattr(item, "originalname", item.name)
    if fixtures & LIVE_FIXTURES or file in LIVE_FILES or name in LIVE_TESTS.get(file, ()):
        return "live"
    return "db" if "stores" in fixtures else "unit"


# The order of the files for pytest-xdist (.ci/run: -n 2 --dist loadfile): longest first, so the last file a worker
# takes is a short one and both finish together (the soak's 60 s and the API fuzzing no longer start last). The
# figures are a file's seconds on a quiet 2-core box (`pytest --durations=0`, summed per file), only their order
# matters; a file not listed counts 1 s and keeps its place among those. xdist's own order (by number of tests)
# is switched off in conftest.py.
FILE_SECONDS = {
    "test_openapi_live.py": 80, "test_soak.py": 70, "test_browser_dashboard_views.py": 60,
    "test_browser_dashboard.py": 55, "test_sdk_js.py": 45, "test_sdk_typescript.py": 40,
    "test_person_ops.py": 30, "test_checkout_tools.py": 30, "test_sdk_go.py": 28, "test_web_filters.py": 25,
    "test_upgrade_backfill.py": 22, "test_queries_retention.py": 20, "test_schema_gate.py": 20, "test_scale.py": 20,
    "test_queries_event_times.py": 18, "test_mcp.py": 18, "test_resilience.py": 15, "test_hostile_startup.py": 14,
    "test_identity.py": 12, "test_dropin_web.py": 12, "test_browser_web.py": 12, "test_erasure.py": 11,
    "test_backup.py": 11, "test_upgrade_schema.py": 11, "test_embedded_supervision.py": 9,
    "test_store_access.py": 8, "test_hostile_reads.py": 8, "test_supervisor.py": 8, "test_foundation.py": 8,
    "test_hostile_drain.py": 7, "test_accounts.py": 6, "test_hostile_identity.py": 6, "test_web_stats.py": 6,
    "test_replica.py": 5, "test_queries_metrics.py": 5, "test_hostile_webhooks.py": 4, "test_persons_cli.py": 4,
    "test_webhooks.py": 4, "test_clients.py": 4,
}


def by_cost(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with the files in FILE_SECONDS order (longest first), each file's tests in their own order."""
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(item.path.name, index)
    return sorted(items, key=lambda item: (-FILE_SECONDS.get(item.path.name, 1), first[item.path.name]))
