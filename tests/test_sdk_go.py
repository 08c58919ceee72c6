"""The Go SDK (sdk/go): `go vet`, its unit tests, and its live tests against the real service through
the fault-injecting proxy, checked in Postgres (every message stored exactly once)."""

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

GO_DIR = Path(__file__).resolve().parent.parent / "sdk" / "go"


@pytest.fixture(scope="module")
def go_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    go = shutil.which("go")
    assert go, "the go toolchain is not installed (CI installs Debian's golang-go)"
    root = tmp_path_factory.mktemp("go")
    return {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "-buildvcs=false",
        "GOCACHE": str(root / "cache"),
        "GOPATH": str(root / "path"),
        "CGO_ENABLED": "0",
    }


@pytest.fixture(scope="module")
def proxy(live_service: LiveService) -> Iterator[SdkProxy]:
    proxy = SdkProxy(live_service.base_url).start()
    yield proxy
    proxy.stop()


def go(args: list[str], env: dict[str, str], timeout: float = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["go", *args], cwd=GO_DIR, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(300)  # a cold build cache: over a minute on a machine shared by parallel suites
def test_go_vet_gofmt_and_unit_tests(go_env: dict[str, str]) -> None:
    vet = go(["vet", "./..."], go_env)
    assert vet.returncode == 0, vet.stdout + vet.stderr
    vet_live = go(["vet", "-tags", "live", "./..."], go_env)
    assert vet_live.returncode == 0, vet_live.stdout + vet_live.stderr
    fmt = subprocess.run(["gofmt", "-l", "."], cwd=GO_DIR, capture_output=True, text=True, timeout=30)
    assert fmt.returncode == 0 and fmt.stdout == "", f"gofmt: {fmt.stdout}{fmt.stderr}"
    unit = go(["test", "-count=1", "./..."], go_env)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert "ok" in unit.stdout


def test_go_sdk_against_live_service(live_service: LiveService, proxy: SdkProxy, go_env: dict[str, str],
                                     tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:12]
    env = {**go_env, "NSELF_ANALYTICS_PROXY": proxy.base_url, "NSELF_ANALYTICS_WRITE_KEY": live_service.write_key,
           "NSELF_ANALYTICS_RUN": run, "NSELF_ANALYTICS_OUT": str(tmp_path)}
    result = go(["test", "-tags", "live", "-run", "^TestLive", "-count=1", "-v", "./..."], env)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("Delivery", "RetryAfter503", "DroppedConnection", "AnswerLost", "DedupeWindowMatchesTheService"):
        assert f"--- PASS: TestLive{name}" in result.stdout, result.stdout
    for case in ("ok", "503", "drop", "drop-after"):
        manifest = json.loads((tmp_path / f"{case}.json").read_text())
        assert_case_delivered(live_service.database_url, proxy, manifest, 7 if case == "ok" else 4)
    ids = json.loads((tmp_path / "ok.json").read_text())["ids"]
    extra = [ids[kind][0] for kind in ("screen", "group", "alias")]
    assert_screen_group_alias_stored(live_service.database_url, extra)
