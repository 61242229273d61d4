"""``RedisStore``: a whole :class:`CountPlan` in one atomic round trip (``count.lua``).

One round trip instead of one or two per rate, and atomic, so a refused
request never shows in a counter even for a moment. A sliding window's
settled buckets travel only when their memo is missing (``plan.Buckets``):
the site-wide view's day of hourly buckets is then a memo and two keys, not
twenty-four, in the request and in the script. The scripts are loaded
once per process with ``SCRIPT LOAD`` and run by their SHA (``EVALSHA``),
loaded again when Redis answers ``NOSCRIPT`` (a restart, ``SCRIPT FLUSH``,
another server). The plain operations go through the Django cache, like the
:class:`CacheStore` this extends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from django.core.cache.backends.base import BaseCache

from . import wire
from .cache import CacheStore
from .plan import CountPlan, CountResult, refill

_SOURCES = {
    name: resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    for name in ("count", "refund")
}
_shas: dict[str, str] = {}


@dataclass(frozen=True)
class RedisAccess:
    """The redis-py client behind a Django cache whose integers are plain Redis integers.

    Both ``django_redis.client.DefaultClient`` (and its Sentinel subclass) and
    Django's own ``RedisCache`` store an ``int`` as the number itself, which
    is what makes ``INCR`` in a script and ``cache.incr`` agree. Sharded and
    "herd" clients do not (one key per server, values wrapped), so they take
    the :class:`CacheStore`.
    """

    client: Any  # redis.Redis
    make_key: Callable[[str], str]


def redis_access(cache: Any) -> RedisAccess | None:
    """``RedisAccess`` for ``cache``, or ``None`` when it is not a plain Redis cache."""
    backend = type(cache).__module__
    try:
        if backend.startswith("django_redis"):
            from django_redis.client import DefaultClient, HerdClient, ShardClient

            client = cache.client
            if not isinstance(client, DefaultClient) or isinstance(
                client, ShardClient | HerdClient
            ):
                return None
            return RedisAccess(client.get_client(write=True), cache.make_key)
        if backend == "django.core.cache.backends.redis":
            # Django's RedisCache has no public way to its client (Django 5.2, 6.0).
            return RedisAccess(cache._cache.get_client(write=True), cache.make_key)
    except ImportError:
        return None
    return None


def run_script(access: RedisAccess, name: str, keys: Sequence[str], args: Sequence[str]) -> Any:
    """``EVALSHA`` the script ``name``, loading it first in this process or after ``NOSCRIPT``."""
    from redis.exceptions import NoScriptError

    client = access.client
    full_keys = [access.make_key(key) for key in keys]
    sha = _shas.get(name)
    if sha is not None:
        try:
            return client.evalsha(sha, len(full_keys), *full_keys, *args)
        except NoScriptError:
            pass
    loaded = client.script_load(_SOURCES[name])
    sha = _shas[name] = loaded.decode() if isinstance(loaded, bytes) else str(loaded)
    return client.evalsha(sha, len(full_keys), *full_keys, *args)


class RedisStore(CacheStore):
    """Counts and refunds as Lua scripts on the Redis behind a Django cache."""

    def __init__(self, cache: BaseCache, access: RedisAccess) -> None:
        super().__init__(cache)
        self.access = access

    def count(self, plan: CountPlan) -> CountResult:
        """One round trip, two when a memo is missing (a window moved on since its last send)."""
        keys, args = wire.encode(plan)
        answer = run_script(self.access, "count", keys, args)
        if wire.needs_settled(answer):
            keys, args = wire.encode(plan, settled=True)
            answer = run_script(self.access, "count", keys, args)
        return wire.decode(plan, answer)

    def refund(self, keys: Sequence[str]) -> None:
        if keys:
            run_script(self.access, "refund", keys, [])

    def add(self, key: str, value: Any, ttl: int | None) -> bool:
        """``SET NX`` on the client itself for an integer (stored as the number, as both cache
        backends store one): a flag set on every send (``outbox.claim_wake``) skips the
        cache's serializer and key plumbing. Anything else goes through the cache."""
        if type(value) is not int:
            return super().add(key, value, ttl)
        return bool(self.access.client.set(self.access.make_key(key), value, nx=True, ex=ttl))

    def hand_over(self, key: str, value: str, ms: int) -> bool:
        """``SET PX``, whether the key exists or not (see ``outbox.let_go_of_wake``)."""
        self.access.client.set(self.access.make_key(key), value, px=ms)
        return True

    def budget_left(self, key: str, capacity: float, per_second: float) -> float:
        """Read on the server's clock, as ``count.lua`` refills (one round trip)."""
        pipe = self.access.client.pipeline(transaction=False)
        pipe.hmget(self.access.make_key(key), ["tokens", "at"])
        pipe.time()
        (tokens, at), (seconds, micros) = pipe.execute()
        state = None if tokens is None or at is None else (float(tokens), float(at))
        return refill(capacity, per_second, state, seconds + micros / 1_000_000)
