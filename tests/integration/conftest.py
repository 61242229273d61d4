"""Fixtures that run the example project the way production does.

One PostgreSQL cluster and two Redis servers (the rate-limit cache and the
Celery broker, kept apart so each can fail alone) live for the whole session;
a Celery worker and two gunicorn servers, all sharing them, form the "shared
stack". Fault tests that break a server build their own small stack on top
of the shared PostgreSQL, so breaking it cannot disturb another test.

The pytest process itself stays on the fast suite's settings (SQLite); it
looks at the production database only through ``psycopg`` (``db`` fixture)
and at the servers only over HTTP, as an outside caller would.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import (
    REPO,
    CeleryWorker,
    PostgresServer,
    RedisServer,
    WebServer,
    manage,
    wait_until,
)

SETTINGS_MODULE = "tests.integration.settings"
FAULT_BACKEND = "tests.integration.fault_sms.SMSBackend"
SMS_SOURCE = "MOCK_SMS_OTP_AUTH_SOURCE_ID"  # from load_demo_data: 6 digits, valid 60 s
SHORT_SOURCE = "SHORT_SMS"  # 6 digits, valid 10 s


@pytest.fixture(scope="session")
def integration_root() -> Iterator[Path]:
    """Logs, SMS files and fault scripts of this session (kept on failure for a post-mortem)."""
    root = Path(tempfile.mkdtemp(prefix="ciam-otp-it-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cache(integration_root: Path) -> Iterator[RedisServer]:
    server = RedisServer(integration_root, "redis-cache").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_broker(integration_root: Path) -> Iterator[RedisServer]:
    server = RedisServer(integration_root, "redis-broker").start()
    yield server
    server.stop()


@dataclass
class StackEnv:
    """Builds the environment of every server process, as a deploy script would."""

    root: Path
    database_url: str

    @property
    def sms_dir(self) -> Path:
        return self.root / "sms"

    @property
    def control_dir(self) -> Path:
        return self.root / "fault-control"

    def __call__(self, *, cache: str, broker: str, **extra: str) -> dict[str, str]:
        self.sms_dir.mkdir(exist_ok=True)
        self.control_dir.mkdir(exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "OTP_", "CELERY_", "PYTEST_"))
            and key not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
            DATABASE_URL=self.database_url,
            REDIS_URL=cache,
            CELERY_BROKER_URL=broker,
            OTP_SMS_BACKEND=FAULT_BACKEND,
            OTP_SMS_FILE_PATH=str(self.sms_dir),
            FAULT_SMS_CONTROL=str(self.control_dir),
            # Every request of the tests comes from 127.0.0.1 with one client;
            # the limits under test are per recipient (and per client where a
            # test turns it back on).
            OTP_IP_RATE_LIMITS="",
            OTP_CLIENT_RATE_LIMITS="",
        )
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def stack_env(integration_root: Path, postgres: PostgresServer) -> StackEnv:
    return StackEnv(integration_root, postgres.url)


@pytest.fixture(scope="session")
def migrated(stack_env: StackEnv, redis_cache: RedisServer, redis_broker: RedisServer) -> None:
    """The schema as ``manage.py migrate`` builds it, plus the seed's demo data."""
    env = stack_env(cache=redis_cache.url + "/0", broker=redis_broker.url + "/0")
    manage(env, "migrate", "--noinput")
    manage(env, "load_demo_data")
    # The shortest validity an auth source may have, for the expiry tests.
    manage(env, "create_auth_source", "--id", SHORT_SOURCE, "--channel", "sms", "--validity", "10")


@dataclass
class Stack:
    """Servers sharing one database, one cache and one broker."""

    env: dict[str, str]
    webs: list[WebServer]
    worker: CeleryWorker | None
    sms_dir: Path
    control_dir: Path

    @property
    def web(self) -> WebServer:
        return self.webs[0]


@pytest.fixture(scope="session")
def shared_stack(
    migrated: None,
    stack_env: StackEnv,
    redis_cache: RedisServer,
    redis_broker: RedisServer,
    integration_root: Path,
) -> Iterator[Stack]:
    """A worker and two web servers (two gunicorn masters, two processes each)."""
    env = stack_env(cache=redis_cache.url + "/0", broker=redis_broker.url + "/0")
    worker = CeleryWorker(env, integration_root, concurrency=2, name="shared")
    web_a = WebServer(env, integration_root, name="web-a")
    web_b = WebServer(env, integration_root, name="web-b")
    try:
        worker.start(wait=False)
        web_a.start()
        web_b.start()
        assert worker.process is not None
        wait_until(worker._ready, 30, interval=0.1, what="the shared Celery worker")
        yield Stack(env, [web_a, web_b], worker, stack_env.sms_dir, stack_env.control_dir)
    finally:
        for server in (web_b, web_a, worker):
            server.stop()


class OwnServers:
    """Servers one test starts for itself (and breaks), stopped when it ends."""

    def __init__(self, root: Path, stack_env: StackEnv) -> None:
        self.root = root
        self.stack_env = stack_env
        self.started: list[RedisServer | CeleryWorker | WebServer] = []

    def redis(self, name: str) -> RedisServer:
        return self._track(RedisServer(self.root, name).start())

    def web(self, env: dict[str, str], name: str = "own-web") -> WebServer:
        return self._track(WebServer(env, self.root, workers=1, threads=4, name=name).start())

    def worker(self, env: dict[str, str], name: str = "own") -> CeleryWorker:
        return self._track(CeleryWorker(env, self.root, concurrency=2, name=name).start())

    def _track(self, server: Any) -> Any:
        self.started.append(server)
        return server

    def stop(self) -> None:
        for server in reversed(self.started):
            server.stop()


@pytest.fixture
def own_servers(
    integration_root: Path, stack_env: StackEnv, migrated: None
) -> Iterator[OwnServers]:
    servers = OwnServers(integration_root, stack_env)
    yield servers
    servers.stop()


# --- looking at the database and the outbox ----------------------------------------


class Db:
    """Read-only questions about the production database, asked with psycopg."""

    def __init__(self, postgres: PostgresServer) -> None:
        self.postgres = postgres

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.postgres.connect() as conn:
            return list(conn.execute(sql, params).fetchall())

    def value(self, sql: str, *params: Any) -> Any:
        rows = self.query(sql, *params)
        return rows[0][0] if rows else None

    def client_pk(self, client_id: str) -> int:
        return int(self.value("SELECT id FROM ciam_otp_otpclient WHERE client_id = %s", client_id))

    def tokens(self, client_id: str) -> list[dict[str, Any]]:
        with self.postgres.connect() as conn:
            cur = conn.execute(
                "SELECT t.* FROM ciam_otp_otptoken t"
                " JOIN ciam_otp_otpclient c ON c.id = t.client_id"
                " WHERE c.client_id = %s ORDER BY t.id",
                (client_id,),
            )
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def quota_used(self, client_id: str, channel: str = "sms") -> int:
        return int(
            self.value(
                "SELECT q.used FROM ciam_otp_quota q"
                " JOIN ciam_otp_otpclient c ON c.id = q.client_id"
                " WHERE c.client_id = %s AND q.channel = %s",
                client_id,
                channel,
            )
        )


@pytest.fixture(scope="session")
def db(postgres: PostgresServer, migrated: None) -> Db:
    return Db(postgres)


_TO_LINE = re.compile(r"^To: (\+\d+)$", re.MULTILINE)
_CODE = re.compile(r"\b(\d{4,10})\b")


@dataclass(frozen=True)
class Delivered:
    phone_number: str
    code: str
    path: Path


def delivered(sms_dir: Path, phone_numbers: set[str] | None = None) -> list[Delivered]:
    """Messages the worker wrote with the filebased backend, optionally for some numbers only."""
    found: list[Delivered] = []
    for path in sorted(sms_dir.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        match = _TO_LINE.search(text)
        if match is None:
            continue
        number = match.group(1)
        if phone_numbers is not None and number not in phone_numbers:
            continue
        body = text.split("\n\n", 1)[1] if "\n\n" in text else text
        code = _CODE.search(body)
        found.append(Delivered(number, code.group(1) if code else "", path))
    return found


# --- recipients, clients and the HTTP caller --------------------------------------------

_phone_counter = itertools.count(1)


def new_phone() -> str:
    """A fresh mainland mobile number whose 9-digit prefix no other test uses.

    Each number lands in its own prefix block, so the prefix velocity limits
    and the conversion monitor (SMS pumping defences) never mix into a test
    about other limits.
    """
    n = next(_phone_counter)
    return f"136{n:04d}5678"


def e164(phone: str) -> str:
    return "+86" + phone


@dataclass
class OTPClient:
    client_id: str
    client_secret: str

    @property
    def authorization(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


_client_counter = itertools.count(1)


@pytest.fixture(scope="session")
def make_client(stack_env: StackEnv, migrated: None) -> Callable[..., OTPClient]:
    """Create an API client with the scripting contract (``create_otp_client --json``)."""
    env = stack_env(cache="redis://127.0.0.1:1/0", broker="redis://127.0.0.1:1/0")

    def make(*, sms_quota: int | None = None) -> OTPClient:
        args = ["create_otp_client", "--name", f"it-{next(_client_counter)}", "--json"]
        if sms_quota is not None:
            args += ["--sms-quota", str(sms_quota)]
        data = json.loads(manage(env, *args))
        return OTPClient(data["client_id"], data["client_secret"])

    return make


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    seconds: float

    @property
    def error(self) -> str | None:
        return self.body.get("error")


def post(
    base_url: str, path: str, body: Any, client: OTPClient | None, timeout: float = 30
) -> Answer:
    """POST JSON the way an outside caller does (urllib, a new connection each time)."""
    headers = {"Content-Type": "application/json"}
    if client is not None:
        headers["Authorization"] = client.authorization
    request = urllib.request.Request(  # noqa: S310 - loopback URL built by the tests
        base_url + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, dict(exc.headers)
    seconds = time.perf_counter() - started
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"_raw": raw.decode(errors="replace")}
    return Answer(status, parsed, got, seconds)


def send_sms(base_url: str, client: OTPClient, phone: str, **extra: Any) -> Answer:
    body = {"usage": "login", "phone_number": phone, "auth_source_id": SMS_SOURCE}
    body.update(extra)
    return post(base_url, "/otp/send", body, client)


def concurrently(calls: list[Callable[[], Answer]], threads: int = 50) -> list[Answer]:
    """Run the calls at once (a barrier releases all threads together)."""
    import threading

    barrier = threading.Barrier(min(threads, len(calls)))

    def run(call: Callable[[], Answer]) -> Answer:
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        return call()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, calls))
