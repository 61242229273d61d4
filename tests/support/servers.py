"""Real servers on loopback, shared by the integration tests and the benchmarks.

PostgreSQL, Redis, gunicorn serving the example project, a Celery worker:
each runs as a child process in its own process group, on 127.0.0.1 and a
free port, with its data in a temporary directory, and is stopped by its own
process id. Nothing already running on the machine is reused or touched: a
developer's own PostgreSQL or Redis is never seen.

The tests (``tests/integration``, ``tests/postgres``) and the bench
(``bench/stack.py``, run as ``python -m bench.run`` from the repository
root) start the same servers with the same code, so a fix to how a server is
started, awaited or stopped reaches both. What differs is passed in (the
bench's PostgreSQL sizing, gunicorn's keep-alive, the worker's log level) or
overridden in a subclass (how the bench knows gunicorn and the worker are up).

This lives under ``tests/`` rather than in a top-level package of its own:
``tests`` is already an importable package that ``make lint`` checks and the
sdist leaves out, and the bench is a client of the test tooling anyway.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol, Self

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
INSTALL_HINT = (
    "The integration tests and the bench start their own servers. On Debian/Ubuntu: "
    "`apt-get install -y redis-server postgresql` (.ci/run does this; the bench also needs "
    'wrk), or deselect the tests knowingly with `-m "not integration"`.'
)


class ServerError(RuntimeError):
    """A server could not be found, started or used (the bench's error; see :func:`fail`)."""


def fail(message: str) -> NoReturn:
    """Stop with ``message``: a test failure inside a pytest test, :class:`ServerError` elsewhere.

    Under pytest a missing or broken server must fail the test, never skip it
    (STYLE.md: "never silently skipped"), and ``pytest.fail(pytrace=False)``
    shows the message alone instead of a traceback through this module. The
    bench never imports pytest. pytest sets ``PYTEST_CURRENT_TEST`` while it
    sets up, runs and tears down each test, session fixtures included.
    """
    if "PYTEST_CURRENT_TEST" in os.environ:
        import pytest

        pytest.fail(message, pytrace=False)
    raise ServerError(message)


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def find_binary(name: str, *extra_dirs: str) -> str:
    """The path of ``name`` on ``PATH`` or in one of the ``extra_dirs`` globs, or fail loudly."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in extra_dirs:
        for candidate in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):
            if (candidate / name).is_file():
                return str(candidate / name)
    fail(f"`{name}` was not found on this machine. {INSTALL_HINT}")


def require_module(name: str) -> None:
    """Fail loudly when a Python package the servers need is not installed."""
    if importlib.util.find_spec(name) is None:
        fail(f"The Python package {name!r} is missing: pip install -e '.[test]'")


def wait_until(
    predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    fail(f"timed out after {timeout:.0f}s waiting for {what or predicate}")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc): a gunicorn master's workers, for instance."""
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


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Process:
    """One child process in its own session (process group), logging to a file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path = REPO
    user: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def start(self) -> Self:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(  # noqa: S603 - argv built by the callers
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

    def log(self) -> str:
        return _tail(self.log_path)

    def fail_unless_alive(self, what: str) -> None:
        if not self.alive():
            fail(f"{self.name} exited while {what}:\n{self.log()}")

    def signal_group(self, signum: int) -> None:
        """Signal this process and its children (its own process group, by id)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> None:
        """``signum`` to the group, SIGKILL after ``timeout`` seconds, then close the log."""
        if self.popen is not None and self.popen.poll() is None:
            self.signal_group(signum)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(5)
        # Children that outlived their parent (a killed prefork master) share its group id.
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the whole group at once: the machine died, nothing is cleaned up."""
        self.signal_group(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(5)


class Server(Protocol):
    def stop(self) -> None: ...


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Stop the given servers (in reverse order) however the block ends."""
    try:
        yield
    finally:
        for server in reversed(servers):
            server.stop()


# --- PostgreSQL ------------------------------------------------------------------------


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class PostgresServer:
    """A throw-away PostgreSQL cluster: ``initdb`` into a temporary directory, then ``postgres``.

    PostgreSQL refuses to run as root, so when the caller runs as root the
    cluster belongs to the ``postgres`` user (created by the Debian package),
    or ``nobody``.
    """

    SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/usr/pgsql-*/bin")
    #: The tests' cluster: room for every server's connections, rare checkpoints.
    TEST_SETTINGS: Mapping[str, str] = {
        "max_connections": "200",
        "shared_buffers": "256MB",
        "maintenance_work_mem": "512MB",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "30min",
    }
    #: Durability off: a throw-away cluster trades crash safety for speed.
    NOT_DURABLE: Mapping[str, str] = {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }

    def __init__(
        self,
        root: Path | None = None,
        *,
        locale: str = "C",
        icu_locale: str | None = None,
        durable: bool = False,
        settings: Mapping[str, str] = TEST_SETTINGS,
    ) -> None:
        """``root``: a directory to create the cluster's own in (kept); else a new one (removed).

        ``locale`` is initdb's ``--locale``; ``icu_locale`` makes ICU the locale
        provider. The default ``C`` keeps ``upper()`` and ``lower()`` to ASCII;
        the look-ups that must hold under real case folding pass a UTF-8 or ICU
        locale (tests/postgres/). ``settings`` are passed as ``-c`` options,
        plus :attr:`NOT_DURABLE` unless ``durable``.
        """
        self.locale = locale
        self.icu_locale = icu_locale
        self.durable = durable
        self.settings = dict(settings)
        self.initdb = find_binary("initdb", *self.SEARCH)
        self.bindir = Path(self.initdb).resolve().parent
        self.port = free_port()
        self.owns_root = root is None
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="ciam-otp-pg-"))
        else:
            self.root = root / "pg"
            self.root.mkdir()
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if self.user is None:
                fail("PostgreSQL cannot run as root and no 'postgres' user exists.")
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/otp"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=otp"

    def _run(self, *argv: str) -> None:
        result = subprocess.run(  # noqa: S603
            list(argv), capture_output=True, text=True, user=self.user, cwd=self.root, check=False
        )
        if result.returncode != 0:
            fail(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> Self:
        provider = ("--locale-provider=icu", f"--icu-locale={self.icu_locale}")
        self._run(
            self.initdb,
            *("-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
            f"--locale={self.locale}",
            *(provider if self.icu_locale else ()),
            "--no-sync",
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            **self.settings,
            **({} if self.durable else self.NOT_DURABLE),
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for key, value in options.items():
            argv += ["-c", f"{key}={value}"]
        self.process = Process(
            "postgres", argv, self.root / "postgres.log", user=self.user, cwd=self.root
        ).start()
        wait_until(self._ready, 30, what="PostgreSQL to accept connections")
        with self.connect("postgres") as conn:
            conn.autocommit = True
            conn.execute("CREATE DATABASE otp")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.fail_unless_alive("starting")
        try:
            with self.connect("postgres"):
                return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def connect(self, dbname: str = "otp") -> Any:
        """A ``psycopg`` connection (imported here: only callers that talk SQL need it)."""
        import psycopg

        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}", connect_timeout=3
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGINT, timeout=20)  # SIGINT: PostgreSQL's fast shutdown
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)


# --- Redis -----------------------------------------------------------------------------


class RedisServer:
    """One ``redis-server`` on loopback, in memory only (no RDB, no AOF)."""

    def __init__(self, root: Path, name: str = "redis", *, socket_timeout: float = 2) -> None:
        self.binary = find_binary("redis-server")
        self.name = name
        self.root = root
        self.socket_timeout = socket_timeout
        self.port = free_port()
        self.process: Process | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> Self:
        argv = [
            self.binary,
            *("--bind", "127.0.0.1", "--port", str(self.port)),
            *("--save", "", "--appendonly", "no", "--dir", str(self.root)),
            *("--protected-mode", "yes", "--loglevel", "warning"),
        ]
        log = self.root / f"{self.name}-{self.port}.log"
        self.process = Process(self.name, argv, log).start()
        wait_until(self._ready, 10, what=f"{self.name} to accept connections")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.fail_unless_alive("starting")
        return self.ping()

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001 - not up (or paused)
            return False

    def client(self, db: int = 0) -> Any:
        """A ``redis.Redis`` client (imported here: only callers that talk Redis need it)."""
        import redis

        return redis.Redis(
            host="127.0.0.1", port=self.port, db=db, socket_timeout=self.socket_timeout
        )

    def commands_processed(self) -> int:
        return int(self.client().info("stats")["total_commands_processed"])

    def stop(self) -> None:
        if self.paused:
            self.resume()
        if self.process is not None:
            self.process.stop()
            self.process = None

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung server)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False


# --- the example project: manage.py, a Celery worker, gunicorn -----------------------------


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``manage.py`` in ``env``; return its stdout, fail loudly on an error."""
    result = subprocess.run(  # noqa: S603
        [PYTHON, str(REPO / "manage.py"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class CeleryWorker:
    """``celery -A example_project worker`` (prefork) consuming the delivery queue."""

    START_TIMEOUT = 30.0

    def __init__(
        self,
        env: dict[str, str],
        root: Path,
        *,
        concurrency: int = 2,
        name: str = "w1",
        loglevel: str = "INFO",
        hostname: str | None = None,
    ) -> None:
        self.env = env
        self.root = root
        self.concurrency = concurrency
        self.name = name
        self.loglevel = loglevel
        self.hostname = hostname or f"{name}-{os.getpid()}@%h"
        self.process: Process | None = None

    def start(self, wait: bool = True) -> Self:
        require_module("celery")
        self.process = Process(
            f"celery worker {self.name}",
            [
                *(PYTHON, "-m", "celery", "-A", "example_project", "worker"),
                *("-P", "prefork", "-c", str(self.concurrency), "-l", self.loglevel),
                *("-n", self.hostname),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            self.root / f"worker-{self.name}-{time.monotonic_ns()}.log",
            env=self.env,
        ).start()
        if wait:
            wait_until(self._ready, self.START_TIMEOUT, interval=0.1, what="the Celery worker")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.fail_unless_alive("starting")
        return self.consuming()

    def consuming(self) -> bool:
        """Whether the worker consumes: Celery logs "<name>@<host> ready." at INFO."""
        assert self.process is not None
        return " ready." in self.process.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def log(self) -> str:
        return self.process.log() if self.process else "(not running)"


class WebServer:
    """gunicorn serving the example project (several processes, threads), on loopback."""

    START_TIMEOUT = 30.0

    def __init__(
        self,
        env: dict[str, str],
        root: Path,
        *,
        workers: int = 2,
        threads: int = 8,
        name: str = "web",
        worker_class: str = "gthread",
        backlog: int = 512,
        graceful_timeout: int = 3,
        keep_alive: int | None = None,
        access_log: bool = True,
    ) -> None:
        """``keep_alive``: gunicorn's ``--keep-alive`` (its own default when ``None``)."""
        self.env = env
        self.root = root
        self.workers = workers
        self.threads = threads
        self.name = name
        self.worker_class = worker_class
        self.backlog = backlog
        self.graceful_timeout = graceful_timeout
        self.keep_alive = keep_alive
        self.access_log = access_log
        self.port = free_port()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        argv = [
            *(PYTHON, "-m", "gunicorn", "example_project.wsgi:application"),
            *("--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)),
            *("--worker-class", self.worker_class, "--threads", str(self.threads)),
            *("--timeout", "30", "--graceful-timeout", str(self.graceful_timeout)),
            *("--backlog", str(self.backlog)),
        ]
        if self.keep_alive is not None:
            argv += ["--keep-alive", str(self.keep_alive)]
        if self.access_log:
            argv += ["--access-logfile", "-"]
        return argv

    def start(self) -> Self:
        require_module("gunicorn")
        log = self.root / f"{self.name}-{self.port}.log"
        self.process = Process(f"gunicorn {self.name}", self.argv(), log, env=self.env).start()
        wait_until(self._ready, self.START_TIMEOUT, interval=0.1, what=f"gunicorn {self.name}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.fail_unless_alive("starting")
        return port_open(self.port) and self.answers()

    def answers(self) -> bool:
        """Whether Django answers: ``/otp/schema`` imports the whole app, views and all."""
        try:
            with urllib.request.urlopen(self.url + "/otp/schema", timeout=5) as response:  # noqa: S310 - loopback
                return bool(response.status == 200)
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def worker_pids(self) -> list[int]:
        """gunicorn's worker processes (the master's children)."""
        assert self.process is not None
        return children(self.process.pid)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def log(self) -> str:
        return self.process.log() if self.process else "(not running)"
