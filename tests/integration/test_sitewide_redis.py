"""The site-wide view of SMS pumping on a real Redis, through both Django Redis backends.

``tests/test_sitewide.py`` drives the rules on the fast suite's local-memory
cache; here the same sends run the same ``CountPlan`` as one Lua script
(``counters/count.lua``: the conditional bumps, the sums and the token bucket
with Redis's own clock), and a send stays one round trip to the cache while
the site is tightened.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from django_ciam_otp import counters, sitewide
from django_ciam_otp.flows import enqueue
from tests.test_sitewide import configure, fresh_blocks, proven, send

from .test_redis_counters import DB, round_trips

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(
    params=["django_redis.cache.RedisCache", "django.core.cache.backends.redis.RedisCache"]
)
def on_redis(request, settings, redis_cache, api_client) -> Iterator[redis.Redis]:
    settings.CACHES = {
        "default": {"BACKEND": request.param, "LOCATION": f"{redis_cache.url}/{DB}"},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    configure(settings, api_client.client.client_id)
    raw = redis.Redis(host="127.0.0.1", port=redis_cache.port, db=DB)
    raw.flushdb()
    counters.reset_breaker()
    sitewide.forget_local_copy()
    yield raw
    raw.flushdb()
    counters.reset_breaker()
    sitewide.forget_local_copy()


def test_a_sparse_bot_tightens_the_site_and_the_budget_holds_it_on_redis(on_redis, monkeypatch):
    monkeypatch.setattr(enqueue, "hand_off", lambda token, envelope: None)
    monkeypatch.setattr(enqueue.dispatch, "wake", lambda token, until=0.0: None)
    walk = fresh_blocks()
    answers = [send(next(walk)) for _ in range(30)]
    # As on any cache: 5 unproven sends tighten the site, then the budget's burst of 2.
    assert answers == [200] * 7 + [429] * 23
    found = sitewide.status()
    assert found.tightened_since is not None
    assert found.budget_left is not None and found.budget_left < 1
    assert found.unproven_by_hour[-1] == 30  # attempts: refused ones show the attack too


def test_proven_blocks_pass_and_each_send_is_one_round_trip_while_tightened(on_redis, monkeypatch):
    monkeypatch.setattr(enqueue, "hand_off", lambda token, envelope: None)
    monkeypatch.setattr(enqueue.dispatch, "wake", lambda token, until=0.0: None)
    walk = fresh_blocks()
    for _ in range(8):
        send(next(walk))
    assert sitewide.tightened_here()
    phone = "13912345678"
    proven(phone)
    send("13912340000")  # loads the script on this connection
    with round_trips() as trips:
        assert send(phone) == 200
    assert trips[0] == 1
