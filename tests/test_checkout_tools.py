"""The small things of a checkout: hooks/status and hooks/stop work without activating the virtualenv,
plugin.yaml lists every route of the router, /analytics leads to the dashboard, Segment's /v1/... works at
the root too."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from nself_analytics.config import Settings
from nself_analytics.host.app import create_root_app
from nself_analytics.host.manifest import render_routes

from .conftest import SECRET, WRITE_KEY, Stores, _sibling_database, free_port, pg_execute, wait_healthy

ROOT = Path(__file__).resolve().parent.parent


def test_plugin_yaml_lists_every_route(settings: Settings) -> None:
    text = (ROOT / "plugin.yaml").read_text()
    assert render_routes() in text, "plugin.yaml differs from the route table: python -m nself_analytics.host.manifest"
    manifest = yaml.safe_load(text)
    listed = {(method, route["path"]) for route in manifest["routes"] for method in route["methods"]}
    routed = set()
    for route in create_root_app(settings, worker=False).router.routes():
        info = route.resource.get_info()
        if route.method != "HEAD":
            routed.add((route.method, info.get("path") or info.get("formatter")))
    assert listed == routed
    for hook in ("install", "build", "start", "status", "stop"):
        path = ROOT / manifest["hooks"][hook]
        assert path.is_file() and os.access(path, os.X_OK), hook


async def test_analytics_leads_to_the_dashboard(client: Any) -> None:
    for path in ("/analytics", "/analytics/"):
        response = await client.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (302, "/analytics/dashboard"), path
    response = await client.get("/analytics/")  # followed: the dashboard's page
    assert response.status == 200 and "text/html" in response.headers["Content-Type"]


async def test_segment_routes_at_the_root(client: Any, settings: Settings, drain: Any) -> None:
    """Libraries given only a host post to <host>/v1/...: served as /analytics/v1/..., credentials and shapes alike."""
    basic = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    response = await client.post("/v1/track", headers=basic, json={"event": "at_root", "userId": "u"})
    assert (response.status, await response.json()) == (200, {"success": True})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    response = await client.post("/v1/batch", json={"batch": [{"type": "track", "event": "at_root", "userId": "u"}]},
                                 headers={"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()})
    assert response.status == 401 and (await response.json())["code"] == "unauthorized"
    response = await client.post("/v1/nothing", headers=basic, json={})
    assert response.status == 404
    response = await client.request("OPTIONS", "/v1/t", headers={"Origin": "https://site.example",
                                                                   "Access-Control-Request-Method": "POST"})
    assert response.status == 204
    await drain()
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_events WHERE event = 'at_root'") == [
        (1,)]


def _hook(name: str, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(["bash", str(ROOT / "hooks" / name)], env=env, capture_output=True, text=True,
                            timeout=120, cwd="/")
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def test_start_status_and_stop_hooks_from_the_checkout(stores: Stores, tmp_path: Path) -> None:
    """None needs an activated virtualenv: with PATH free of it, from another directory. hooks/start serves an empty
    database (README's quick start on a fresh checkout: it runs `start --migrate`)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    port = free_port()
    env.update({"DATABASE_URL": _sibling_database(stores.database_url, "analytics_hooks"),
                "REDIS_URL": stores.redis_url.rsplit("/", 1)[0] + "/4", "ANALYTICS_PORT": str(port),
                "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_DATA_DIR": str(tmp_path / "data"),
                "ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY,
                "NSELF_ANALYTICS_EXTRAS": "[test]"})  # the virtualenv .ci/run made: nothing to install
    assert _hook("stop", env) == (0, {"stopped": False, "running": False,
                                      "pid_file": str(tmp_path / "data" / "service.pid")})
    with (tmp_path / "service.log").open("ab") as log:  # hooks/start execs the service: its pid is the service's
        service = subprocess.Popen(["bash", str(ROOT / "hooks" / "start")], env=env, cwd="/", stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        code, status = _hook("status", env)
        assert code == 0 and status["running"] is True and status["health"]["healthy"] is True
        assert _hook("stop", env) == (0, {"stopped": True, "pid": service.pid})
        assert service.wait(timeout=10) == 0  # a graceful stop
    finally:
        if service.poll() is None:
            service.kill()
    code, status = _hook("status", env)
    assert code == 1 and status["running"] is False
    assert not (tmp_path / "data" / "service.pid").exists()
