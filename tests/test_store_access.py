"""The embedded stores are private: another OS user of the machine cannot log in to PostgreSQL or Redis nor read
their files or passwords; the servers do not run as root; the service's own Redis user cannot reconfigure the
server; a cluster an older version created with trust logins is closed on start; credentials print once."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis

from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.embedded_redis import EmbeddedRedis

from .conftest import Stores

ROOT_ONLY = "creating a second OS user (useradd) and dropping to it needs root; this run is not root"


def _embedded(stores: Stores) -> tuple[EmbeddedPostgres, EmbeddedRedis]:
    if stores.postgres is None or stores.redis is None:
        pytest.skip("TEST_DATABASE_URL / TEST_REDIS_URL point at external stores: nothing embedded to check")
    return stores.postgres, stores.redis


@pytest.fixture
def other_user() -> Iterator[pwd.struct_passwd]:
    """A fresh unprivileged OS user (removed afterwards): 'another user of the same machine'."""
    if os.geteuid() != 0:
        pytest.skip(ROOT_ONLY)
    name = "nsa_probe_" + secrets.token_hex(3)
    subprocess.run(["useradd", "--no-create-home", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def run_as(user: pwd.struct_passwd, *cmd: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30, user=user.pw_uid,
                          group=user.pw_gid, extra_groups=[], env=env, cwd="/tmp")


def test_another_os_user_cannot_log_in_or_read_secrets(stores: Stores, other_user: pwd.struct_passwd) -> None:
    pg, rd = _embedded(stores)
    psql = str(EmbeddedPostgres.bin_dir() / "psql")
    cli = str(EmbeddedRedis.server_binary().with_name("redis-cli"))
    for user in ("postgres", "nself_analytics", other_user.pw_name):
        login = run_as(other_user, psql, "-h", "127.0.0.1", "-p", str(pg.port), "-U", user, "-w", "-d", "analytics",
                       "-c", "SELECT 1")
        assert login.returncode != 0 and "password" in login.stderr, login.stderr
    guess = run_as(other_user, cli, "-p", str(rd.port), "--no-auth-warning", "-a", "guess", "SET", "k", "v")
    assert "WRONGPASS" in guess.stdout + guess.stderr or "invalid" in (guess.stdout + guess.stderr).lower()
    bare = run_as(other_user, cli, "-p", str(rd.port), "CONFIG", "SET", "dir", "/root")
    assert "NOAUTH" in bare.stdout + bare.stderr
    for private in (pg.secret_file, rd.secret_file, rd.dir / "appendonly.aof", rd.conf_file, pg.pgdata / "pg_hba.conf",
                    stores.data_dir / "redis.log", stores.data_dir / "postgres.log"):
        read = run_as(other_user, "/bin/cat", str(private))
        assert read.returncode != 0 and "Permission denied" in read.stderr, private
    listing = run_as(other_user, "/bin/ls", str(stores.data_dir))
    assert listing.returncode != 0  # the data folder may be traversed (the servers' user must), never listed


def test_store_files_are_private_and_servers_not_root(stores: Stores) -> None:
    pg, rd = _embedded(stores)
    assert redis.Redis.from_url(rd.url()).set("np_analytics:probe", "1")  # the AOF has content
    for folder in (pg.pgdata, rd.dir):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    for path in (pg.secret_file, rd.secret_file, rd.conf_file, rd.dir / "appendonly.aof", pg.pgdata / "pg_hba.conf",
                 pg.log_file, rd.log_file):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert "trust" not in [line.split()[-1] for line in (pg.pgdata / "pg_hba.conf").read_text().splitlines()
                           if line.strip() and not line.startswith("#")]
    if os.geteuid() == 0:
        pg_pid = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
        for pid in (pg_pid, rd.pid()):
            status = Path(f"/proc/{pid}/status").read_text()
            uids = status.split("Uid:")[1].split("\n")[0].split()
            gids = status.split("Gid:")[1].split("\n")[0].split()
            assert "0" not in uids and "0" not in gids, status[:300]
        assert pg.pgdata.stat().st_uid != 0 and rd.dir.stat().st_uid != 0
    cmdline = Path(f"/proc/{rd.pid()}/cmdline").read_text()
    assert rd.password not in cmdline  # argv is world-readable: the password lives in the 0600 config file


def test_the_services_redis_user_cannot_reconfigure_the_server(stores: Stores) -> None:
    _pg, rd = _embedded(stores)
    client = redis.Redis.from_url(rd.url())
    assert client.ping() and client.xlen("np_analytics:none") == 0
    for command in (("CONFIG", "SET", "dir", "/tmp"), ("CONFIG", "GET", "requirepass"), ("DEBUG", "SLEEP", "0"),
                    ("MODULE", "LOAD", "/tmp/x.so"), ("ACL", "SETUSER", "default", "+@all"), ("SAVE",),
                    ("REPLICAOF", "127.0.0.1", "1"), ("SHUTDOWN",)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*command)
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=rd.port, password="wrong").ping()


def test_a_trust_cluster_of_an_older_version_is_closed_on_start(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    url = server.start()
    try:
        hba = server.pgdata / "pg_hba.conf"
        hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))  # what initdb --auth=trust made
        server._run("pg_ctl", "-D", str(server.pgdata), "reload")
        bare = f"postgresql://postgres@127.0.0.1:{server.port}/analytics"
        psycopg2.connect(bare).close()  # open: the state the issue found
        server.stop()
        assert server.start() == url
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(bare)
        psycopg2.connect(url).close()
        assert "trust" not in hba.read_text().split("# TYPE")[-1]
    finally:
        server.stop()


def test_generated_credentials_print_once_and_files_are_0600(stores: Stores, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update(ANALYTICS_DATA_DIR=str(tmp_path / "data"), DATABASE_URL=stores.database_url,
               REDIS_URL=stores.redis_url, ANALYTICS_LOG_FORMAT="json")
    outputs, results = [], []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "install"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
        results.append(json.loads(done.stdout)[0]["analytics"])
    stored = dict(line.split("=", 1) for line in (tmp_path / "data" / "secrets.env").read_text().splitlines())
    assert (tmp_path / "data" / "secrets.env").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0
    token = stored["ANALYTICS_SECRET_TOKEN"]
    assert token in outputs[0] and stored["ANALYTICS_WRITE_KEYS"] in outputs[0]
    assert token not in outputs[1] and stored["ANALYTICS_WRITE_KEYS"] not in outputs[1]
    assert str(tmp_path / "data" / "secrets.env") in outputs[1]
    assert results[1]["system_changes"] == [] and results[1]["secrets"].endswith("secrets.env")


def test_install_as_root_reports_what_it_changes_on_the_system(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip(ROOT_ONLY)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ANALYTICS_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(ANALYTICS_DATA_DIR=str(closed / "data"), ANALYTICS_LOG_FORMAT="json")
    done = subprocess.run([sys.executable, "-m", "nself_analytics.host.cli", "install"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    changes = json.loads(done.stdout)[0]["analytics"]["system_changes"]
    assert any(str(closed) in change and "o+x" in change for change in changes), changes
    assert "system_changed" in done.stderr and str(closed) in done.stderr  # printed, not only returned
    assert closed.stat().st_mode & 0o777 == 0o711  # traversal added, listing not
