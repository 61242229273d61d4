"""What only the Django-cache store meets: a key can expire between ``add`` and ``incr``.

The shared suite (test_stores.py) holds both stores to every rule; this file
covers the non-atomic store's own race, where locmem and memcached raise
``ValueError`` from ``incr`` on a key that just expired. Monitoring must
never fail a send, so that count starts again at 1.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches

from django_ciam_otp.counters import CacheStore


class ExpiresBetweenCalls:
    """A cache whose key is gone by the time ``incr`` runs (the race, made certain)."""

    def __init__(self) -> None:
        self.inner = caches["default"]
        self.adds = 0

    def add(self, key: str, value: Any, timeout: Any = None) -> bool:
        self.adds += 1
        if self.adds == 1:
            return False  # "already there"…
        return bool(self.inner.add(key, value, timeout))

    def incr(self, key: str, delta: int = 1) -> int:
        raise ValueError(f"Key '{key}' not found")  # …and gone a moment later

    def get(self, key: str, default: Any = None) -> Any:
        return self.inner.get(key, default)


def test_a_bump_whose_key_expired_between_add_and_incr_counts_one():
    cache = ExpiresBetweenCalls()
    store = CacheStore(cache)  # type: ignore[arg-type]
    store.bump("ciam_otp:test:race", 60)
    assert cache.get("ciam_otp:test:race") == 1
