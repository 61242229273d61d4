"""Every counter test runs on each store: the Django-cache one on a local-memory cache, and
the Redis one on a real ``redis-server`` through both Redis cache backends.

The Redis cases are marked ``integration``: the Django 6 run of ``make test``
leaves integration tests out and still runs the cache store's; the Django 5.2
run (and a plain ``pytest``) runs both. A missing ``redis-server`` fails the
Redis cases loudly (``tests/support/servers.py``), it never skips them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from django_ciam_otp import counters
from django_ciam_otp.counters import redis as redis_module
from tests.support.servers import RedisServer

REDIS_BACKENDS = {
    "redis": "django_redis.cache.RedisCache",
    "django-redis-cache": "django.core.cache.backends.redis.RedisCache",
}


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="ciam-otp-counters-"))
    server = RedisServer(root, "redis-counters").start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(
    params=[
        "cache",
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("django-redis-cache", marks=pytest.mark.integration),
    ]
)
def store(request: Any, settings: Any) -> Iterator[counters.CounterStore]:
    """The store ``counters.get_store()`` picks for the cache configured here."""
    if request.param == "cache":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        expected: type = counters.CacheStore
    else:
        server = request.getfixturevalue("redis_server")
        server.client().flushdb()
        settings.CACHES = {
            "default": {"BACKEND": REDIS_BACKENDS[request.param], "LOCATION": server.url + "/0"}
        }
        expected = counters.RedisStore
    counters.reset_breaker()
    chosen = counters.get_store()
    assert type(chosen) is expected
    yield chosen
    counters.counter_cache().clear()
    counters.reset_breaker()


@pytest.fixture
def redis(redis_server: RedisServer, settings: Any) -> Iterator[counters.RedisStore]:
    """The Redis store alone (django-redis), for what only Redis does: memos, round trips."""
    redis_server.client().flushdb()
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_server.url + "/0"}
    }
    counters.reset_breaker()
    store = counters.get_store()
    assert isinstance(store, counters.RedisStore)
    yield store
    redis_server.client().flushdb()
    counters.reset_breaker()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of keys of each ``count`` script run (one entry per round trip)."""
    seen: list[int] = []
    original = redis_module.run_script

    def counting(access: Any, name: str, keys: Any, args: Any) -> Any:
        if name == "count":
            seen.append(len(keys))
        return original(access, name, keys, args)

    monkeypatch.setattr(redis_module, "run_script", counting)
    return seen
