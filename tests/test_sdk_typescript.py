"""The TypeScript/Node SDK (sdk/typescript): compiled with tsc, its unit tests (node --test), and its
live tests against the real service through the fault-injecting proxy, checked in Postgres."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import LiveService
from .sdk_proxy import SdkProxy, assert_case_delivered, assert_screen_group_alias_stored

TS_DIR = Path(__file__).resolve().parent.parent / "sdk" / "typescript"


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=TS_DIR, env=env or dict(os.environ), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def installed() -> Path:
    """npm ci (unless .ci/run did it)."""
    for tool in ("node", "npm", "npx"):
        assert shutil.which(tool), f"{tool} is not installed (CI installs Node.js)"
    if not (TS_DIR / "node_modules" / "typescript").is_dir():
        ci = run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], timeout=300)
        assert ci.returncode == 0, ci.stdout + ci.stderr
    return TS_DIR


@pytest.fixture(scope="module")
def built(installed: Path) -> Path:
    """dist/ compiled from the current src/ (by `npm test` when it ran first, else here)."""
    out = TS_DIR / "dist" / "esm" / "index.js"
    source = TS_DIR / "src" / "index.ts"
    if not out.is_file() or out.stat().st_mtime < source.stat().st_mtime:
        result = run(["npm", "run", "--silent", "build"])
        assert result.returncode == 0, f"npm run build:\n{result.stdout}{result.stderr}"
    return TS_DIR


@pytest.fixture(scope="module")
def proxy(live_service: LiveService) -> Iterator[SdkProxy]:
    proxy = SdkProxy(live_service.base_url).start()
    yield proxy
    proxy.stop()


@pytest.mark.timeout(300)  # three tsc runs: ~15 s alone, far more on a machine shared by parallel suites
def test_typescript_unit_tests(installed: Path) -> None:
    """The package's own `npm test` (ESM and CommonJS builds, type checks, node --test): no browser, no service."""
    result = run(["npm", "test"], timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 28" in result.stdout, result.stdout
    for target in ("esm/index.js", "esm/index.d.ts", "cjs/index.js", "cjs/package.json"):
        assert (TS_DIR / "dist" / target).is_file(), target


def test_typescript_sdk_against_live_service(built: Path, live_service: LiveService, proxy: SdkProxy,
                                             tmp_path: Path) -> None:
    env = {**os.environ, "NSELF_ANALYTICS_PROXY": proxy.base_url, "NSELF_ANALYTICS_WRITE_KEY": live_service.write_key,
           "NSELF_ANALYTICS_RUN": uuid.uuid4().hex[:12], "NSELF_ANALYTICS_OUT": str(tmp_path)}
    result = run(["node", "--test", "test/live.test.mjs"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 5" in result.stdout and "# fail 0" in result.stdout, result.stdout
    for case in ("ok", "503", "drop", "drop-after"):
        manifest = json.loads((tmp_path / f"{case}.json").read_text())
        assert_case_delivered(live_service.database_url, proxy, manifest, 7 if case == "ok" else 4)
    extra = json.loads((tmp_path / "ok.json").read_text())["ids"]["extra"]
    assert_screen_group_alias_stored(live_service.database_url, extra)
