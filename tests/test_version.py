"""One version, written once (nself_analytics/__init__.py), shown everywhere (issue 23 item 5): setup.cfg reads it,
`nself-analytics --version`, /health, the OpenAPI info, the MCP server's serverInfo and plugin.yaml show it."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from nself_analytics import __version__
from nself_analytics.integrations.client import ClientConfig
from nself_analytics.integrations.mcp_server import build_server

from .conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_is_written_once() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["version"] == "attr: nself_analytics.__version__"
    literal = re.compile(rf"['\"]{re.escape(__version__)}['\"]")
    spelled = [str(p.relative_to(ROOT)) for p in (ROOT / "nself_analytics").rglob("*.py")
               if p.name != "__init__.py" and literal.search(p.read_text())]
    assert spelled == []


def test_plugin_yaml_shows_it() -> None:
    assert yaml.safe_load((ROOT / "plugin.yaml").read_text())["version"] == __version__


def test_changelog_has_it_as_the_latest_release() -> None:
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert releases[0] == __version__ and "1.1.1" in releases


def test_the_cli_shows_it() -> None:
    result = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "--version"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"nself-analytics {__version__}"


async def test_health_and_openapi_show_it(client: Any) -> None:
    health = await client.get("/analytics/health", headers={"Authorization": f"Bearer {SECRET}"})
    assert (await health.json())["version"] == __version__
    document = await client.get("/analytics/openapi.json")
    assert (await document.json())["info"]["version"] == __version__


def test_the_mcp_server_shows_it() -> None:
    server = build_server(ClientConfig(url="http://127.0.0.1:1/analytics", token="t"))
    assert server.version == __version__ and server.name == "nself-analytics"
