"""Real servers for the integration tests: PostgreSQL, Redis, a Celery worker, gunicorn.

Each server runs as a child process of the test run, on 127.0.0.1 and a free
port, with its data in a temporary directory, and is stopped by its own process
id when the test (or the session) ends. Nothing on the machine is reused: a
developer's own PostgreSQL or Redis is never touched.

A missing server binary is a test failure with a message that says what to
install, never a skip: a suite that silently passes without its integration
tests proves nothing (STYLE.md, "never silently skipped").
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
INSTALL_HINT = (
    "The integration tests start their own servers. On Debian/Ubuntu: "
    "`apt-get install -y redis-server postgresql` (.ci/run does this), or deselect "
    'them knowingly with `-m "not integration"`.'
)


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
    """The path of ``name``, or fail the test loudly with what to install."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in extra_dirs:
        candidates = sorted(Path("/").glob(pattern.lstrip("/")), reverse=True)
        for candidate in candidates:
            if (candidate / name).is_file():
                return str(candidate / name)
    pytest.fail(f"`{name}` was not found on this machine. {INSTALL_HINT}", pytrace=False)


def require_module(name: str) -> None:
    """Fail loudly when a Python package the servers need is not installed."""
    import importlib.util

    if importlib.util.find_spec(name) is None:
        pytest.fail(
            f"The Python package {name!r} is missing: pip install -e '.[test]'", pytrace=False
        )


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

    def start(self) -> Process:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(  # noqa: S603 - argv built by the tests
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
            pytest.fail(f"{self.name} exited while {what}:\n{self.log()}", pytrace=False)

    def signal_group(self, signum: int) -> None:
        """Signal this process and its children (its own process group, by id)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def stop(self, timeout: float = 10) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
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


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or predicate}", pytrace=False)


# --- PostgreSQL ------------------------------------------------------------------


class PostgresServer:
    """A throw-away PostgreSQL cluster: ``initdb`` into a temporary directory, ``pg_ctl start``.

    PostgreSQL refuses to run as root, so when the tests run as root the
    cluster belongs to the ``postgres`` user (created by the Debian package),
    or ``nobody``.
    """

    SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/usr/pgsql-*/bin")

    def __init__(self, locale: str = "C", icu_locale: str | None = None) -> None:
        """``locale`` is initdb's ``--locale``; ``icu_locale`` makes ICU the locale provider.

        The default ``C`` keeps ``upper()`` and ``lower()`` to ASCII; the look-ups
        that must hold under real case folding pass a UTF-8 or ICU locale
        (tests/postgres/).
        """
        self.locale = locale
        self.icu_locale = icu_locale
        self.initdb = find_binary("initdb", *self.SEARCH)
        self.bindir = Path(self.initdb).parent
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ciam-otp-pg-"))
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if self.user is None:
                pytest.fail("PostgreSQL cannot run as root and no 'postgres' user exists.")
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
            pytest.fail(
                f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}", pytrace=False
            )

    def start(self) -> PostgresServer:
        self._run(
            self.initdb,
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            f"--locale={self.locale}",
            *(
                ("--locale-provider=icu", f"--icu-locale={self.icu_locale}")
                if self.icu_locale
                else ()
            ),
            "--no-sync",
        )
        # Durability off: a test cluster trades crash safety for speed.
        self.process = Process(
            "postgres",
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.root}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "maintenance_work_mem=512MB",
                "-c",
                "max_wal_size=4GB",
                "-c",
                "checkpoint_timeout=30min",
            ],
            self.root / "postgres.log",
            user=self.user,
            cwd=self.root,
        ).start()
        wait_until(lambda: self._ready(), 30, what="PostgreSQL to accept connections")
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

    def connect(self, dbname: str = "otp"):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}", connect_timeout=2
        )

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast shutdown".
            self.process.signal_group(signal.SIGINT)
            self.process.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# --- Redis ---------------------------------------------------------------------------


class RedisServer:
    """One ``redis-server`` on loopback, in memory only (no RDB, no AOF)."""

    def __init__(self, root: Path, name: str = "redis") -> None:
        self.binary = find_binary("redis-server")
        self.name = name
        self.root = root
        self.port = free_port()
        self.process: Process | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        self.process = Process(
            self.name,
            [
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
            ],
            self.root / f"{self.name}-{self.port}.log",
        ).start()
        wait_until(self._ready, 10, what=f"{self.name} to accept connections")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.fail_unless_alive("starting")
        return self.ping()

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001
            return False

    def client(self, db: int = 0):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=2)

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


# --- the app: migrations, a Celery worker, gunicorn ------------------------------------


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``manage.py`` with the integration settings; return stdout, fail loudly on error."""
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
        pytest.fail(
            f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}", pytrace=False
        )
    return result.stdout


class CeleryWorker:
    """``celery -A example_project worker`` consuming the delivery queue."""

    def __init__(
        self, env: dict[str, str], root: Path, *, concurrency: int = 2, name: str = "w1"
    ) -> None:
        self.env = env
        self.root = root
        self.concurrency = concurrency
        self.name = name
        self.process: Process | None = None

    def start(self, wait: bool = True) -> CeleryWorker:
        require_module("celery")
        self.process = Process(
            f"celery worker {self.name}",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "example_project",
                "worker",
                "-P",
                "prefork",
                "-c",
                str(self.concurrency),
                "-l",
                "INFO",
                "-n",
                f"{self.name}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            self.root / f"worker-{self.name}-{time.monotonic_ns()}.log",
            env=self.env,
        ).start()
        if wait:
            wait_until(self._ready, 30, interval=0.1, what="the Celery worker")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.fail_unless_alive("starting")
        # Celery logs "<name>@<host> ready." once it consumes.
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
    """gunicorn serving the example project (threads, several processes), on loopback."""

    def __init__(
        self,
        env: dict[str, str],
        root: Path,
        *,
        workers: int = 2,
        threads: int = 8,
        name: str = "web",
    ) -> None:
        self.env = env
        self.root = root
        self.workers = workers
        self.threads = threads
        self.name = name
        self.port = free_port()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebServer:
        require_module("gunicorn")
        self.process = Process(
            f"gunicorn {self.name}",
            [
                PYTHON,
                "-m",
                "gunicorn",
                "example_project.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(self.threads),
                "--timeout",
                "30",
                "--graceful-timeout",
                "3",
                "--backlog",
                "512",
                "--access-logfile",
                "-",
            ],
            self.root / f"{self.name}-{self.port}.log",
            env=self.env,
        ).start()
        wait_until(self._ready, 30, interval=0.1, what=f"gunicorn {self.name}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.fail_unless_alive("starting")
        if not port_open(self.port):
            return False
        # Every worker process must have imported Django, not only the master.
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + "/otp/schema", timeout=5) as response:  # noqa: S310
                return bool(response.status == 200)
        except Exception:  # noqa: BLE001
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def log(self) -> str:
        return self.process.log() if self.process else "(not running)"


@contextlib.contextmanager
def running(*servers: RedisServer | CeleryWorker | WebServer) -> Iterator[None]:
    """Stop the given servers (in reverse order) however the block ends."""
    try:
        yield
    finally:
        for server in reversed(servers):
            server.stop()
