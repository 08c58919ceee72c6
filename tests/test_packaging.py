"""Packaging: the sdist and the wheel built from it hold the migrations and the static files; the wheel,
installed in a fresh virtualenv that cannot see this checkout, runs `build` (every table) and `start`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from nself_analytics import __version__

from .conftest import SECRET, WRITE_KEY, Stores, _sibling_database, free_port, pg_execute, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "dist", "*.egg-info", ".nself-analytics",
                                    "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "test-output",
                                    ".data", "results")


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=240, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def test_wheel_installs_builds_and_starts_without_the_checkout(stores: Stores, tmp_path: Path) -> None:
    migrations = sorted(p.name for p in (ROOT / "migrations").iterdir() if p.suffix in (".sql", ".py"))
    package = ROOT / "nself_analytics"
    static = sorted(str(p.relative_to(package)) for p in (package / "static").rglob("*") if p.is_file())
    assert migrations and "static/a.js" in static

    # sdist, then the wheel from the sdist (python -m build's default): the sdist is complete if the wheel is
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(source)])
    [sdist] = (tmp_path / "dist").glob("*.tar.gz")
    [wheel] = (tmp_path / "dist").glob("*.whl")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"migrations/{m}" for m in migrations} <= names
    assert {f"nself_analytics/{s}" for s in static} <= names
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    data = f"nself_analytics-{__version__}.data/data/share/nself-analytics/migrations"
    assert {f"{data}/{m}" for m in migrations} <= names
    assert {f"nself_analytics/{s}" for s in static} <= names

    # a fresh virtualenv: the wheel, and this environment's dependencies (not its editable install of the checkout:
    # a directory named in a .pth file is put on sys.path, but .pth files inside it are not run)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
         str(wheel)])
    where = tmp_path / "elsewhere"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    probe = run([str(python), "-c", "import json, sys, nself_analytics, nself_analytics.host.migrate as m; "
                 "print(json.dumps([nself_analytics.__file__, str(m.migrations_dir()), sys.path]))"],
                cwd=where, env=env)
    module, folder, path = json.loads(probe.stdout)
    assert module.startswith(str(site)) and folder.startswith(str(venv))
    assert not any(entry == str(ROOT) or entry.startswith(str(ROOT / "nself_analytics")) for entry in path)

    database_url = _sibling_database(stores.database_url, "analytics_wheel")
    port = free_port()
    env.update({"DATABASE_URL": database_url, "REDIS_URL": stores.redis_url.rsplit("/", 1)[0] + "/3",
                "ANALYTICS_DATA_DIR": str(tmp_path / "data"), "ANALYTICS_PORT": str(port),
                "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY})
    cli = str(venv / "bin" / "nself-analytics")
    built = run([cli, "build"], cwd=where, env=env)
    # the last line: the hook results, one per plugin, as the CLI prints them (log lines come before)
    assert json.loads(built.stdout.splitlines()[-1]) == [{"analytics": {"applied": [Path(m).stem for m in migrations]}}]
    tables = {row[0] for row in pg_execute(database_url, "SELECT tablename FROM pg_tables WHERE tablename LIKE "
                                                         "'np_analytics_%%' AND tablename NOT LIKE '%%\\_p2%%'")}
    assert {"np_analytics_events", "np_analytics_users", "np_analytics_person_map", "np_analytics_funnels"} <= tables

    with (tmp_path / "service.log").open("wb") as log:
        service = subprocess.Popen([cli, "start"], cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        with urllib.request.urlopen(f"{base}/analytics/a.js", timeout=5) as response:
            assert response.status == 200 and b"nsa_anonymous_id" in response.read()
        request = urllib.request.Request(f"{base}/analytics/track", method="POST",
                                         data=json.dumps({"event": "from_wheel", "user_id": "u"}).encode(),
                                         headers={"Authorization": f"Bearer {WRITE_KEY}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0, (tmp_path / "service.log").read_text()[-3000:]
    assert pg_execute(database_url, "SELECT count(*) FROM np_analytics_events WHERE event = 'from_wheel'") == [(1,)]
