"""The live stack of the bench, on loopback: PostgreSQL, Redis, gunicorn, a Celery worker.

Every server is a child process in its own process group, bound to
127.0.0.1 on a free port, with its data under one temporary directory; it is
stopped by its own process id when the bench ends (also on Ctrl-C or an
error). Nothing already running on the machine is reused or touched.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/usr/pgsql-*/bin")
INSTALL_HINT = (
    "On Debian/Ubuntu: apt-get install -y postgresql redis-server wrk; "
    "pip install gunicorn pyinstrument matplotlib (into the project's venv)."
)


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def find_binary(name: str, *patterns: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for pattern in patterns:
        for candidate in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):
            if (candidate / name).is_file():
                return str(candidate / name)
    raise StackError(f"`{name}` not found. {INSTALL_HINT}")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Process:
    """A child process in its own session, its output in a log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    user: str | None = None
    cwd: Path = REPO
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def start(self) -> Process:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(  # noqa: S603
            list(self.argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            user=self.user,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self, what: str) -> None:
        if not self.alive():
            tail = self.log_path.read_text(errors="replace").splitlines()[-30:]
            raise StackError(f"{self.name} exited while {what}:\n" + "\n".join(tail))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        if self.popen is not None:  # children that outlived their parent share its group id
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of ``pid`` in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Postgres:
    """``initdb`` into the bench directory and ``postgres`` on a free loopback port.

    Settings are PostgreSQL's defaults except those a 2-core bench box needs
    (``max_connections``, ``shared_buffers``) and, with ``durable=False``,
    ``fsync``/``synchronous_commit`` off (see BENCHMARKS.md: the default run is
    durable, as production is).
    """

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.initdb = find_binary("initdb", *PG_SEARCH)
        self.bindir = Path(self.initdb).resolve().parent
        self.root = root / "pg"
        self.root.mkdir()
        self.port = free_port()
        self.durable = durable
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self.user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if self.user is None:
                raise StackError("PostgreSQL cannot run as root and no 'postgres' user exists.")
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/otp"

    def start(self) -> Postgres:
        data = self.root / "data"
        result = subprocess.run(  # noqa: S603
            [
                self.initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=self.user,
            cwd=self.root,
            check=False,
        )
        if result.returncode:
            raise StackError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "max_connections": "100",
            "shared_buffers": "512MB",
            "maintenance_work_mem": "512MB",
            "max_wal_size": "4GB",
        }
        if not self.durable:
            options.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        argv = [str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port)]
        for key, value in options.items():
            argv += ["-c", f"{key}={value}"]
        self.process = Process(
            "postgres", argv, self.root / "postgres.log", user=self.user, cwd=self.root
        ).start()
        wait_until(self._ready, 30, "PostgreSQL")
        with self.connect("postgres") as conn:
            conn.autocommit = True
            conn.execute("CREATE DATABASE otp")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.check("starting")
        try:
            with self.connect("postgres"):
                return True
        except Exception:  # noqa: BLE001
            return False

    def connect(self, dbname: str = "otp"):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}", connect_timeout=3
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGINT, timeout=20)  # fast shutdown


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Redis:
    def __init__(self, root: Path, name: str) -> None:
        self.binary = find_binary("redis-server")
        self.root = root
        self.name = name
        self.port = free_port()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> Redis:
        argv = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
        ]
        self.process = Process(self.name, argv, self.root / f"{self.name}.log").start()
        wait_until(self.ping, 10, self.name)
        return self

    def client(self, db: int = 0):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)

    def ping(self) -> bool:
        if self.process is not None:
            self.process.check("starting")
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001
            return False

    def commands_processed(self) -> int:
        return int(self.client().info("stats")["total_commands_processed"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class Stack:
    """PostgreSQL, a cache Redis, a broker Redis, gunicorn (2 workers) and a Celery worker."""

    root: Path
    pg: Postgres
    cache: Redis
    broker: Redis
    env: dict[str, str]
    web_port: int = 0
    web: Process | None = None
    worker: Process | None = None
    worker_name: str = ""
    started: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def manage(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(  # noqa: S603
            [PYTHON, str(REPO / "manage.py"), *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode:
            raise StackError(
                f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def start_web(
        self,
        *,
        workers: int = 2,
        worker_class: str = "gthread",
        threads: int = 4,
        keep_alive: int = 5,
    ) -> None:
        self.web_port = free_port()
        argv = [
            PYTHON,
            "-m",
            "gunicorn",
            "example_project.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--backlog",
            "1024",
            "--timeout",
            "30",
            "--graceful-timeout",
            "5",
            "--keep-alive",
            str(keep_alive),
        ]
        self.web = Process("gunicorn", argv, self.root / "gunicorn.log", env=self.env).start()
        wait_until(self._web_ready, 60, "gunicorn")
        # Wait for every worker, not only the first, to have imported Django.
        deadline = time.monotonic() + 30
        while len(self.web_workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)

    def _web_ready(self) -> bool:
        assert self.web is not None
        self.web.check("starting")
        if not port_open(self.web_port):
            return False
        # An unauthenticated call answers 401 once Django is up (and loads nothing
        # the measured requests would not load anyway, unlike /otp/schema).
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

    def web_workers(self) -> list[int]:
        assert self.web is not None
        return children(self.web.pid)

    def start_worker(self, *, concurrency: int = 2) -> None:
        self.worker_name = f"bench-{os.getpid()}@localhost"
        argv = [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "example_project",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(concurrency),
            "-l",
            "WARNING",
            "-n",
            self.worker_name,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        log = self.root / "celery.log"
        self.worker = Process("celery worker", argv, log, env={**self.env, "BENCH_WORKER": "1"})
        self.worker.start()
        # -l WARNING hides "ready."; the worker answers a ping once it consumes.
        wait_until(self._worker_ready, 60, "the Celery worker")

    def _worker_ready(self) -> bool:
        assert self.worker is not None
        self.worker.check("starting")
        from .celery_control import ping

        return ping(self.env["CELERY_BROKER_URL"], self.worker_name)

    def process_groups(self) -> dict[str, list[int]]:
        """Process ids of each server (parents and their children), for CPU accounting."""
        groups: dict[str, list[int]] = {}
        for name, proc in (
            ("gunicorn", self.web),
            ("celery", self.worker),
            ("postgres", self.pg.process),
            ("redis", self.cache.process),
            ("redis", self.broker.process),
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

        A process that exited in between is left out (its last ticks are gone);
        one that started counts from zero.
        """
        used: dict[str, float] = {}
        for pid, (name, ticks) in after.items():
            delta = ticks - before.get(pid, (name, 0))[1]
            used[name] = used.get(name, 0.0) + max(0, delta) * 1000 / TICKS_PER_SECOND
        return used

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            if proc is not None:
                proc.stop()
        self.cache.stop()
        self.broker.stop()
        self.pg.stop()


def bench_env(
    pg: Postgres, cache: Redis, broker: Redis, *, load_test: bool = True, **extra: str
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
    pg = Postgres(root, durable=durable)
    cache, broker = Redis(root, "redis-cache"), Redis(root, "redis-broker")
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
