"""The live stack of the bench, on loopback: PostgreSQL, Redis, gunicorn, a Celery worker.

The servers are those of the integration tests (:mod:`tests.support.servers`):
each a child process in its own process group, bound to 127.0.0.1 on a free
port, with its data under one temporary directory, stopped by its own process
id when the bench ends (also on Ctrl-C or an error). Nothing already running
on the machine is reused or touched. What is the bench's own: the servers'
sizing, how it knows gunicorn and the worker are up without loading more than
the measured requests do, and CPU and memory accounting from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.support.servers import (
    PYTHON,
    REPO,
    CeleryWorker,
    PostgresServer,
    RedisServer,
    ServerError,
    WebServer,
    children,
    manage,
)

__all__ = ["PYTHON", "REPO", "Stack", "StackError", "bench_env", "rss_mb", "running_stack"]

#: The bench's name for a server that could not be found, started or used.
StackError = ServerError

#: PostgreSQL's defaults except what a 2-core bench box needs; durable unless ``--no-fsync``
#: (see BENCHMARKS.md: the default run is durable, as production is).
PG_SETTINGS: Mapping[str, str] = {
    "max_connections": "100",
    "shared_buffers": "512MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
}


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of ``pid`` and of its children it reaped, in clock ticks.

    0 when it is gone. The reaped children's time (``cutime``, ``cstime``)
    keeps the CPU of a process that exits between two snapshots: a
    PostgreSQL backend whose connection Django closed after ``CONN_MAX_AGE``
    in the middle of a load run, a recycled worker.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class BenchWeb(WebServer):
    """gunicorn without an access log, up once every worker process answers."""

    START_TIMEOUT = 60.0

    def start(self) -> Self:
        super().start()
        # Wait for every worker, not only the first, to have imported Django.
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return self

    def answers(self) -> bool:
        """An unauthenticated call answers 401 once Django is up.

        It loads nothing the measured requests would not load anyway, unlike
        ``/otp/schema`` (the tests' probe).
        """
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            self.url + "/bench/baseline", data=b"{}", method="POST"
        )
        try:
            urllib.request.urlopen(request, timeout=5)  # noqa: S310 - http://127.0.0.1 only
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except Exception:  # noqa: BLE001 - not up yet
            return False
        return False


class PeerWeb(BenchWeb):
    """gunicorn serving a peer (``bench/peers``): the same options, the peer's WSGI entry.

    Up once a GET of the peer's ``probe_path`` answers ``probe_status``.
    """

    def __init__(self, *args: object, probe_path: str, probe_status: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.probe_path = probe_path
        self.probe_status = probe_status

    def argv(self) -> list[str]:
        return [
            "bench.peers.wsgi:application" if arg == "example_project.wsgi:application" else arg
            for arg in super().argv()
        ]

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.probe_path, timeout=5) as response:  # noqa: S310 - loopback
                return bool(response.status == self.probe_status)
        except urllib.error.HTTPError as exc:
            return exc.code == self.probe_status
        except Exception:  # noqa: BLE001 - not up yet
            return False


class BenchWorker(CeleryWorker):
    """A worker logging warnings only, addressed by a fixed name (the bench pauses its queue)."""

    START_TIMEOUT = 60.0

    def consuming(self) -> bool:
        # -l WARNING hides "ready."; the worker answers a ping once it consumes.
        from .celery_control import ping

        return ping(self.env["CELERY_BROKER_URL"], self.hostname)


@dataclass
class Stack:
    """PostgreSQL, a cache Redis, a broker Redis, gunicorn (2 workers) and a Celery worker."""

    root: Path
    pg: PostgresServer
    cache: RedisServer
    broker: RedisServer
    env: dict[str, str]
    web: BenchWeb | None = None
    worker: BenchWorker | None = None
    #: gunicorn of each peer (bench/peers), by peer name, while the peers are measured
    peers: dict[str, PeerWeb] = field(default_factory=dict)

    @property
    def web_port(self) -> int:
        assert self.web is not None
        return self.web.port

    @property
    def url(self) -> str:
        assert self.web is not None
        return self.web.url

    @property
    def worker_name(self) -> str:
        """The worker's Celery node name, to ping it and pause its queue."""
        assert self.worker is not None
        return self.worker.hostname

    def manage(self, *args: str, timeout: float = 180) -> str:
        return manage(self.env, *args, timeout=timeout)

    def start_web(
        self,
        *,
        workers: int = 2,
        worker_class: str = "gthread",
        threads: int = 4,
        keep_alive: int = 5,
    ) -> None:
        self.web = BenchWeb(
            self.env,
            self.root,
            workers=workers,
            threads=threads,
            name="gunicorn",
            worker_class=worker_class,
            backlog=1024,
            graceful_timeout=5,
            keep_alive=keep_alive,
            access_log=False,
        ).start()

    def start_peer(
        self,
        name: str,
        env: dict[str, str],
        *,
        probe_path: str,
        probe_status: int,
        workers: int = 2,
        worker_class: str = "gthread",
        threads: int = 4,
        keep_alive: int = 5,
    ) -> PeerWeb:
        """A gunicorn for a peer, with the options of :meth:`start_web`."""
        web = PeerWeb(
            env,
            self.root,
            workers=workers,
            threads=threads,
            name="gunicorn-" + "".join(c if c.isalnum() else "-" for c in name),
            worker_class=worker_class,
            backlog=1024,
            graceful_timeout=5,
            keep_alive=keep_alive,
            access_log=False,
            probe_path=probe_path,
            probe_status=probe_status,
        )
        self.peers[name] = web
        web.start()
        return web

    def stop_peers(self) -> None:
        for web in self.peers.values():
            web.stop()
        self.peers.clear()

    def web_workers(self) -> list[int]:
        assert self.web is not None
        return self.web.worker_pids()

    def start_worker(self, *, concurrency: int = 2) -> None:
        self.worker = BenchWorker(
            {**self.env, "BENCH_WORKER": "1"},
            self.root,
            concurrency=concurrency,
            name="bench",
            loglevel="WARNING",
            hostname=f"bench-{os.getpid()}@localhost",
        ).start()

    def process_groups(self) -> dict[str, list[int]]:
        """Process ids of each server (parents and their children), for CPU accounting."""
        groups: dict[str, list[int]] = {}
        for name, proc in (
            ("gunicorn", self.web.process if self.web else None),
            ("celery", self.worker.process if self.worker else None),
            ("postgres", self.pg.process),
            ("redis", self.cache.process),
            ("redis", self.broker.process),
            *((f"gunicorn:{peer}", web.process) for peer, web in self.peers.items()),
        ):
            if proc is not None and proc.alive():
                groups.setdefault(name, []).extend([proc.pid, *children(proc.pid)])
        return groups

    def cpu_snapshot(self) -> dict[int, tuple[str, int]]:
        """``{pid: (server, CPU ticks)}`` for every process of the stack."""
        return {
            pid: (name, cpu_ticks(pid))
            for name, pids in self.process_groups().items()
            for pid in pids
        }

    @staticmethod
    def cpu_used(
        before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]
    ) -> dict[str, float]:
        """Milliseconds of CPU per server between two snapshots.

        Each server's total after less its total before. A process that exited
        in between is in neither its own figure after nor left out: its parent
        (the postmaster, gunicorn's or Celery's master, in the same group)
        reaped it, and its whole time is now in the parent's (:func:`cpu_ticks`),
        so the difference is what it used in between. One that started counts
        from zero. (Until 2026-12-02 a process that exited in between was left
        out: a load run where Django closed its PostgreSQL connections at
        ``CONN_MAX_AGE`` lost those backends' CPU.)
        """
        totals: dict[str, int] = {}
        for name, ticks in after.values():
            totals[name] = totals.get(name, 0) + ticks
        for name, ticks in before.values():
            totals[name] = totals.get(name, 0) - ticks
        return {name: max(0, t) * 1000 / TICKS_PER_SECOND for name, t in totals.items()}

    def stop(self) -> None:
        self.stop_peers()
        for server in (self.web, self.worker):
            if server is not None:
                server.stop()
        self.cache.stop()
        self.broker.stop()
        self.pg.stop()


def bench_env(
    pg: PostgresServer,
    cache: RedisServer,
    broker: RedisServer,
    *,
    load_test: bool = True,
    **extra: str,
) -> dict[str, str]:
    """The example project's environment for the bench (see BENCHMARKS.md, "Settings").

    ``load_test``: lift the per-client and per-IP limits (the load comes from one
    client and one address). The attack simulation keeps every default.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTP_", "DJANGO_", "CELERY_"))
        and key not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        PYTHONPATH=str(REPO),
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG="false",
        DATABASE_URL=pg.url,
        REDIS_URL=cache.url + "/0",
        CELERY_BROKER_URL=broker.url + "/0",
        OTP_HASH_KEY="bench-hash-key-not-a-secret",
        OTP_SMS_BACKEND="django_ciam_otp.backends.sms.locmem.SMSBackend",
    )
    if load_test:
        # The load comes from one client and one IP: those two limits would
        # refuse it after 600 and 60 requests a minute. Every other limit
        # (per number, per prefix, the conversion monitor) keeps its default.
        env.update(OTP_CLIENT_RATE_LIMITS="", OTP_IP_RATE_LIMITS="")
        # One send to each fresh block, never verified, is to the site-wide view
        # (sitewide.py) a pumping bot spread thin: it tightens the site within
        # seconds, as it should. The ceiling is lifted so every send still runs
        # the whole view, budget check included, and none is refused.
        env.setdefault(
            "BENCH_CIAM_OTP",
            json.dumps({"CONVERSION_MONITOR": {"UNPROVEN_CODES_PER_HOUR": 10**9}}),
        )
    env.update(extra)
    return env


@contextlib.contextmanager
def running_stack(
    *,
    workers: int = 2,
    worker_class: str = "gthread",
    threads: int = 4,
    keep_alive: int = 0,
    worker_concurrency: int = 4,
    durable: bool = True,
    keep: bool = False,
    load_test: bool = True,
    log: Callable[[str], None] = print,
    **extra_env: str,
) -> Iterator[Stack]:
    """Start everything, yield the stack, stop everything (by pid) however the block ends.

    ``keep_alive=0``: gunicorn closes each connection after its answer, as behind
    a proxy that does not keep upstream connections alive (nginx's default).
    With keep-alive, the 2 workers race to accept wrk's connections once, at
    the start, and a run where one worker won most of them measures one
    process: the baseline came out at either ~1,200 or ~550 requests/s.
    """
    root = Path(tempfile.mkdtemp(prefix="ciam-otp-bench-"))
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user must reach its data directory
    pg = PostgresServer(root, durable=durable, settings=PG_SETTINGS)
    cache = RedisServer(root, "redis-cache", socket_timeout=5)
    broker = RedisServer(root, "redis-broker", socket_timeout=5)
    stack = Stack(root, pg, cache, broker, env={})
    try:
        t0 = time.monotonic()
        pg.start()
        cache.start()
        broker.start()
        # "{root}" in a value is the bench's temporary directory (e.g. OTP_SMS_FILE_PATH).
        extra = {k: v.replace("{root}", str(root)) for k, v in extra_env.items()}
        stack.env = bench_env(pg, cache, broker, load_test=load_test, **extra)
        stack.manage("migrate", "--noinput")
        stack.manage("load_demo_data")
        stack.start_web(
            workers=workers, worker_class=worker_class, threads=threads, keep_alive=keep_alive
        )
        stack.start_worker(concurrency=worker_concurrency)
        log(f"stack up in {time.monotonic() - t0:.1f} s (logs in {root})")
        yield stack
    finally:
        stack.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
