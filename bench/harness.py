"""The benchmark's own stores and service: embedded PostgreSQL and Redis under ``bench/.data`` and the real
service started as its own process (``python -m nself_analytics.host.cli start``). Everything started here is
stopped by :meth:`Harness.close`, also after an error or Ctrl-C."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import redis

from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.embedded_redis import EmbeddedRedis
from nself_analytics.host.migrate import apply_migrations

__all__ = ["DATA_DIR", "SECRET", "WRITE_KEY", "CpuMeter", "Harness", "RssSampler", "progress"]

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / ".data"
SECRET = "sk_bench_secret_token_0123456789"
WRITE_KEY = "wk_bench_write_key"
TABLES = ("np_analytics_events, np_analytics_users, np_analytics_aggregates, np_analytics_aggregate_dirty, "
          "np_analytics_message_ids, np_analytics_activity, np_analytics_event_times, np_analytics_web_sessions, "
          "np_analytics_web_daily, "
          "np_analytics_web_day_stats, "
          "np_analytics_quota_violations")


def progress(message: str) -> None:
    """One progress line on stderr (stdout is kept for the result table)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RssSampler:
    """Samples a process's resident memory (with its worker processes') every 100 ms on a thread; keeps the
    peak per phase."""

    def __init__(self, *pids: int) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peaks: dict[str, int] = {}
        self._phase: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            phase = self._phase
            if phase is None:
                continue
            with contextlib.suppress(psutil.Error):
                rss = sum(p.memory_info().rss for top in self.processes
                          for p in [top, *top.children(recursive=True)])
                self.peaks[phase] = max(self.peaks.get(phase, 0), rss)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._phase = name
        try:
            yield
        finally:
            self._phase = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


class CpuMeter:
    """CPU time by role between two snapshots: the service (every instance with its workers), PostgreSQL (the
    postmaster and its backends), Redis, the load generator (a finished child of this process: its rusage), this
    benchmark process, and the rest of the machine (other users of the same cores)."""

    ROLES = ("service", "postgres", "redis", "loadgen", "bench", "other")

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def _groups(self) -> dict[str, list[psutil.Process]]:
        h = self.harness
        groups: dict[str, list[psutil.Process]] = {"service": [], "postgres": [], "redis": [],
                                                   "bench": [psutil.Process()]}
        tops = {"service": [s.pid for s in h.services], "redis": [h.redis.pid() or 0]}
        with contextlib.suppress(OSError, ValueError):
            tops["postgres"] = [int((h.postgres.pgdata / "postmaster.pid").read_text().split()[0])]
        for role, pids in tops.items():
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    top = psutil.Process(pid)
                    groups[role] += [top, *top.children(recursive=True)]
        return groups

    def snapshot(self) -> dict[str, Any]:
        times: dict[tuple[int, float], tuple[str, float]] = {}
        for role, processes in self._groups().items():
            for p in processes:
                with contextlib.suppress(psutil.Error):
                    cpu = p.cpu_times()
                    times[(p.pid, p.create_time())] = (role, cpu.user + cpu.system)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return {"at": time.monotonic(), "times": times, "children": children.ru_utime + children.ru_stime,
                "busy": busy}

    @staticmethod
    def usage(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
        """Cores used by each role between ``start`` and ``end`` (1.0 = one core busy all the time)."""
        seconds = max(1e-6, end["at"] - start["at"])
        used = dict.fromkeys(CpuMeter.ROLES, 0.0)
        for key, (role, cpu) in end["times"].items():
            used[role] += cpu - start["times"].get(key, (role, 0.0))[1]  # a process born meanwhile: all of it
        used["loadgen"] = end["children"] - start["children"]
        machine = end["busy"] - start["busy"]
        used["other"] = max(0.0, machine - sum(used.values()))
        out: dict[str, Any] = {role: round(value / seconds, 2) for role, value in used.items()}
        out["machine"] = round(machine / seconds, 2)
        out["cores"] = psutil.cpu_count()
        return out


class Harness:
    """Stores, service and a psycopg2 connection of one benchmark run."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        self.data_dir = data_dir
        self.postgres = EmbeddedPostgres(data_dir)
        self.redis = EmbeddedRedis(data_dir)
        self.database_url = ""
        self.redis_url = ""
        self.port = 0
        self.ports: list[int] = []
        self.service: subprocess.Popen[bytes] | None = None
        self.services: list[subprocess.Popen[bytes]] = []  # the first is ``service``
        self.sampler: RssSampler | None = None
        self._conn: Any = None
        self._lock: Any = None
        self.cpu = CpuMeter(self)

    # stores ---------------------------------------------------------------------------------------
    def start_stores(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # one run at a time: a second one would empty the tables under the first
        self._lock = (self.data_dir / "run.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise RuntimeError(f"another bench/run is using {self.data_dir}") from None
        progress(f"starting embedded PostgreSQL and Redis in {self.data_dir}")
        self.database_url = self.postgres.start()
        self.redis_url = self.redis.start()
        self._wait_redis_loaded()
        apply_migrations(self.database_url)

    def _wait_redis_loaded(self, timeout: float = 120) -> None:
        """A restarted Redis replays its append-only file before it answers commands."""
        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
            finally:
                client.close()

    @property
    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(self.database_url)
            self._conn.autocommit = True
        return self._conn

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def reset(self) -> None:
        """Empty the event tables and Redis (the schema and the partitions stay)."""
        self.sql(f"TRUNCATE {TABLES}")
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        with contextlib.suppress(redis.exceptions.ResponseError):  # a rewrite may be running already
            client.bgrewriteaof()  # keep the append-only file (replayed at the next start) small
        client.close()

    def count_events(self) -> int:
        return int(self.sql("SELECT count(*) FROM np_analytics_events")[0][0])

    # service --------------------------------------------------------------------------------------
    def start_service(self, profile: Path | None = None, instances: int = 1, **extra_env: str) -> int:
        """Start the service (``instances`` of them on as many ports, sharing the stores); the first one's pid."""
        self.ports = [_free_port() for _ in range(instances)]
        self.port = self.ports[0]
        for index, port in enumerate(self.ports):
            service_dir = self.data_dir / ("service" if index == 0 else f"service-{index}")  # one lock per instance
            service_dir.mkdir(parents=True, exist_ok=True)
            env = {
                **os.environ,
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "ANALYTICS_PORT": str(port),
                "ANALYTICS_HOST": "127.0.0.1",
                "ANALYTICS_DATA_DIR": str(service_dir),
                "ANALYTICS_SECRET_TOKEN": SECRET,
                "ANALYTICS_WRITE_KEYS": WRITE_KEY,
                **extra_env,
            }
            log = (self.data_dir / "service.log").open("ab")
            # its own session: a Ctrl-C reaches only the benchmark, which then stops the service in order
            command = [sys.executable, "-m", "nself_analytics.host.cli", "start"]
            if profile is not None:  # pyinstrument (pip install pyinstrument) writes its report when the service stops
                command = [sys.executable, "-m", "pyinstrument", "-r", "text", "--show-all", "-o", str(profile), "-m",
                           "nself_analytics.host.cli", "start"]
            self.services.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
            log.close()
        self.service = self.services[0]
        for service, port in zip(self.services, self.ports, strict=True):
            self._wait_healthy(service, port)
        self.sampler = RssSampler(*(service.pid for service in self.services))
        progress(f"service pids {[s.pid for s in self.services]} on ports {self.ports}")
        return self.service.pid

    def _wait_healthy(self, service: subprocess.Popen[bytes], port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.poll() is not None:
                raise RuntimeError(f"service exited with {service.returncode}; see {self.data_dir}/service.log")
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/analytics/health", timeout=2) as response:
                    if json.load(response).get("healthy"):
                        return
            time.sleep(0.2)
        raise RuntimeError(f"service not healthy within {timeout}s; see {self.data_dir}/service.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop_service(self) -> None:
        if self.sampler is not None:
            self.sampler.close()
            self.sampler = None
        for service in self.services:
            if service.poll() is None:
                service.send_signal(signal.SIGTERM)
        for service in self.services:
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
        self.service = None
        self.services = []

    def close(self) -> None:
        """Stop the service, then the stores (a second Ctrl-C during this is ignored)."""
        if self._lock is None:
            return  # the stores belong to another run (or were never started)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop_service()
            if self._conn is not None:
                self._conn.close()
            with contextlib.suppress(Exception):
                self.redis.stop()
            with contextlib.suppress(Exception):
                self.postgres.stop()
            if self._lock is not None:
                self._lock.close()  # releases the lock
            progress("service and stores stopped")
        finally:
            signal.signal(signal.SIGINT, previous)
