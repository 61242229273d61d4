"""The send's counters on a real Redis: one round trip, and the same decisions as any cache.

On Redis, ``ratelimits.count_send`` counts a send's whole ``CountPlan`` (the
limits of client, IP, recipient, blocked prefix, prefix; the conversion
monitor's counters; the "sent lately" marker) in one Lua script. These tests
run it in this process against the session's Redis, through both Redis cache
backends (django-redis and Django's own), and hold it to the ``CacheStore``
that other caches take (the same plan, on a local-memory cache): same
answers, same ``Retry-After``, same counters, in the same keys
(``ciam_otp:rl:...``, ``counters/rates.py``). ``tests/counters`` holds the two
stores to each rule one by one; this file, to whole sends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import time_machine
from django.core.cache import caches
from django.db import connection
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from django_ciam_otp import abuse, counters, flows, outbox, ratelimits, tasks
from django_ciam_otp.counters import CountPlan, Marker, rates_for
from django_ciam_otp.exceptions import (
    InsufficientSMSQuota,
    InvalidOTPToken,
    RateLimited,
    RateLimitExceeded,
    TemporarilyUnavailable,
)
from django_ciam_otp.flows import enqueue, issuing, provisioning
from django_ciam_otp.models import (
    AuthSource,
    BlockedPrefix,
    OTPClient,
    OTPToken,
    Quota,
    TokenStatus,
)
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

DB = 9  # a database of the session's cache Redis no other test uses
START = dt.datetime(2025, 5, 1, 8, 0, 0, 500000, tzinfo=dt.UTC)
LIMITS = {
    "SMS_RATE_LIMITS": ["1/30s", "3/h"],
    "PREFIX_RATE_LIMITS": ["2/m", "5/h"],
    "CLIENT_RATE_LIMITS": ["9/m"],
    "IP_RATE_LIMITS": ["7/m"],
}


@contextlib.contextmanager
def round_trips() -> Iterator[list[int]]:
    """Count redis-py's network writes (one per command, one per pipeline or script)."""
    from redis.connection import AbstractConnection

    count = [0]
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield count
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


@pytest.fixture(
    params=["django_redis.cache.RedisCache", "django.core.cache.backends.redis.RedisCache"]
)
def on_redis(request, settings, redis_cache) -> Iterator[redis.Redis]:
    """The rate-limit cache on Redis (``default``), a local-memory one beside it (``local``)."""
    settings.CACHES = {
        "default": {"BACKEND": request.param, "LOCATION": f"{redis_cache.url}/{DB}"},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.CIAM_OTP = {**settings.CIAM_OTP, **LIMITS}
    raw = redis.Redis(host="127.0.0.1", port=redis_cache.port, db=DB)
    raw.flushdb()
    counters.reset_breaker()
    yield raw
    raw.flushdb()
    counters.reset_breaker()


def request_from(ip: str) -> Any:
    return RequestFactory().post("/otp/send", REMOTE_ADDR=ip)


def count(
    *, watch: abuse.Watch | None = None, marker: Marker | None = None, **overrides: Any
) -> ratelimits.SendCharge:
    """One send's limits (and the monitor's ``watch``, the ``marker``) counted as the flow does."""
    arguments: dict[str, Any] = {
        "client_pk": 7,
        "channel": "sms",
        "recipient_hash": "a" * 64,
        "usage": "login",
        "prefix": "861361234",
    }
    arguments.update(overrides)
    request = arguments.pop("request", request_from("10.0.0.1"))
    limits = ratelimits.send_limits(request, **arguments)
    watch = watch or abuse.Watch()
    plan = CountPlan(limits.groups, watch.bumps, marker, watch.sums, watch.distinct)
    return ratelimits.count_send(limits, plan)


# --- one round trip, in this app's own keys ------------------------------------------------


def test_one_send_is_one_round_trip_in_the_documented_keys(on_redis):
    """The counters are in ``ciam_otp:rl:<group>:<rate>:<window>:<value>`` keys.

    They used to be django-ratelimit's own keys, which the script rebuilt from
    its private helpers (a patch release could have split the counters); they
    are this app's now, and any reader of the Django cache finds them.
    """
    watch = abuse.watch("861361234", 7)
    # Loads the script into Redis (SCRIPT LOAD, then EVALSHA: two round trips).
    count(
        client_pk=8, recipient_hash="w" * 64, prefix="861399999", request=request_from("10.9.9.9")
    )
    with round_trips() as trips:
        charge = count(watch=watch, marker=Marker("ciam_otp:sent:test", 60))
    assert trips[0] == 1
    assert len(charge.caller.keys) == 2  # client 9/m, IP 7/m
    assert len(charge.recipient.keys) == 2 + 2 + 2  # recipient, prefix, monitor's counters
    assert 1 <= charge.retry_after <= 31  # 1/30s is full until its window ends
    assert charge.marker_was_set is False
    # The prefix's sends (this one) and verifications, and whether one was verified lately.
    assert charge.result is not None
    assert charge.result.sums == {
        abuse.SENDS: 1,
        abuse.VERIFICATIONS: 0,
        abuse.VERIFIED_LATELY: 0,
    }

    ip = ratelimits.ip_value(request_from("10.0.0.1"))
    for group, value, rates in [
        ("client", "7", LIMITS["CLIENT_RATE_LIMITS"]),
        ("ip", ip, LIMITS["IP_RATE_LIMITS"]),
        ("sms", "a" * 64 + ":login", LIMITS["SMS_RATE_LIMITS"]),
        ("prefix", "861361234", LIMITS["PREFIX_RATE_LIMITS"]),
    ]:
        for rate in rates_for(group, value, rates):
            assert rate.key.startswith(f"ciam_otp:rl:{group}:")
            assert caches["default"].get(rate.key) == 1, (group, rate)
    assert abuse.conversion("prefix:861361234").sends == 1
    assert abuse.conversion("client:7").sends == 1


def test_a_refund_is_one_round_trip_and_never_revives_an_expired_counter(on_redis):
    charge = count()
    expired = charge.recipient.keys[0]
    caches["default"].delete(expired)
    # Loaded once per process and Redis server (SCRIPT LOAD, or NOSCRIPT then a load):
    # whichever test of this process refunds first pays that, not a refund as such.
    counters.store.refund(["ciam_otp:test:warm-up"])
    with round_trips() as trips:
        charge.refund_all()
    assert trips[0] == 1
    assert caches["default"].get(expired) is None  # not -1
    assert count().recipient.keys  # counted afresh: everything was handed back ...
    assert all(caches["default"].get(k) == 1 for k in charge.caller.keys)


def test_the_marker_tells_a_first_send(on_redis):
    marker = Marker("ciam_otp:sent:7:login:" + "b" * 64, 360)
    with override_settings(CIAM_OTP={**LIMITS, "SMS_RATE_LIMITS": []}):
        assert count(marker=marker).marker_was_set is False
        assert count(marker=marker).marker_was_set is True
    assert 300 < on_redis.ttl(caches["default"].make_key(marker.key)) <= 360


# --- the same decisions as any other cache ---------------------------------------------------


def run(alias: str, step: dict[str, Any]) -> tuple[Any, ...]:
    """One send counted on cache ``alias``: what it answered, and what it counted."""
    with override_settings(RATELIMIT_USE_CACHE=alias):
        try:
            charge = count(
                request=request_from(step["ip"]),
                recipient_hash=step["to"] * 64,
                prefix=step["prefix"],
                blocked=step.get("blocked"),
            )
        except RateLimited as refused:
            return (type(refused).__name__, refused.retry_after, refused.as_dict())
        answer = (
            "ok",
            charge.retry_after,
            sorted(charge.caller.keys),
            sorted(charge.recipient.keys),
        )
        if step.get("refund"):  # e.g. no quota: the recipient's hits go back
            charge.recipient.refund()
        if step.get("broker_down"):
            charge.refund_all()
        return answer


STEPS: list[dict[str, Any]] = [
    {"t": 0, "to": "a", "prefix": "861361234", "ip": "10.0.0.1"},
    {"t": 1, "to": "a", "prefix": "861361234", "ip": "10.0.0.1"},  # recipient: 1/30s
    {"t": 2, "to": "b", "prefix": "861361234", "ip": "10.0.0.1"},
    {"t": 3, "to": "c", "prefix": "861361234", "ip": "10.0.0.1"},  # prefix: 2/m
    {"t": 4, "to": "d", "prefix": "861360000", "ip": "10.0.0.1", "refund": True},
    {"t": 5, "to": "d", "prefix": "861360000", "ip": "10.0.0.2", "broker_down": True},
    {"t": 6, "to": "d", "prefix": "861360000", "ip": "10.0.0.1"},
    {"t": 7, "to": "e", "prefix": "861360000", "ip": "10.0.0.1"},  # IP: 7/m
    {"t": 8, "to": "e", "prefix": "861360000", "ip": "10.0.0.2"},
    {"t": 9, "to": "f", "prefix": "861365555", "ip": "10.0.0.2", "blocked": True},
    {"t": 10, "to": "g", "prefix": "861365555", "ip": "10.0.0.2"},  # client: 9/m
    {"t": 31, "to": "a", "prefix": "861361234", "ip": "10.0.0.3"},  # a new 1/30s window
    {"t": 62, "to": "a", "prefix": "861361234", "ip": "10.0.0.3"},
    {"t": 93, "to": "a", "prefix": "861362222", "ip": "10.0.0.3"},  # recipient: 3/h
    {"t": 124, "to": "h", "prefix": None, "ip": "10.0.0.4"},  # email-like: no prefix
    # A burst in one second: the IP's 7/m and the client's 9/m refuse.
    *({"t": 125, "to": f"{n}", "prefix": f"8613{n}0000", "ip": "10.0.0.5"} for n in range(9)),
    *({"t": 125, "to": f"{n}", "prefix": f"8614{n}0000", "ip": "10.0.0.6"} for n in range(3)),
]


def test_redis_and_any_other_cache_decide_alike(on_redis):
    seen: list[tuple[Any, ...]] = []
    with time_machine.travel(START, tick=False) as clock:
        for step in STEPS:
            clock.move_to(START + dt.timedelta(seconds=step["t"]))
            if step.get("blocked"):
                step = {**step, "blocked": RateLimitExceeded(retry_after=100)}
            on_redis_answer, local_answer = run("default", step), run("local", step)
            assert on_redis_answer == local_answer, step
            seen.append(on_redis_answer)
            # The counters so far, while none has expired (the local cache follows the
            # travelling clock, Redis the real one).
            keys = {k for answer in seen if answer[0] == "ok" for k in answer[2] + answer[3]}
            if step["t"] < 30:
                for key in keys:
                    assert caches["default"].get(key) == caches["local"].get(key), (step, key)
    # Every kind of answer came up: caller (client or IP), recipient, blocked, prefix.
    kinds = {(a[0], a[2].get("error_description")) for a in seen if a[0] != "ok"}
    assert kinds == {
        ("RateLimitExceeded", "Too many requests. Please slow down."),
        ("SMSRateLimitExceeded", "SMS rate limit exceeded for same phone number"),
        ("RateLimitExceeded", "Too many codes to numbers like this one. Try again later."),
    }, kinds
    assert [a[1] for a in seen if a[0] == "RateLimitExceeded"].count(100) == 1  # the block
    assert sum(a[0] == "ok" for a in seen) >= 12


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.999])
def test_waiting_retry_after_always_suffices(on_redis, fraction):
    start = START.replace(microsecond=0) + dt.timedelta(seconds=fraction)
    with time_machine.travel(start, tick=False) as clock:
        wait = count().retry_after
        clock.move_to(start + dt.timedelta(seconds=wait - 1))
        with pytest.raises(RateLimited) as refused:
            count()
        clock.move_to(start + dt.timedelta(seconds=wait))
        count()
    assert refused.value.retry_after == 1  # the last second of the window


# --- the whole send on Redis ----------------------------------------------------------------------


@pytest.fixture
def site() -> tuple[OTPClient, AuthSource]:
    """A client and an auth source in the fast suite's database (``django_db`` tests)."""
    client, _ = provisioning.create_client("redis counters")
    source = AuthSource.objects.create(id="SMS_SOURCE", channel="sms")
    return client, source


def statements(queries: CaptureQueriesContext) -> list[str]:
    """``UPDATE "ciam_otp_quota" SET ...`` -> ``UPDATE ciam_otp_quota``."""
    found = []
    for query in queries.captured_queries:
        words = query["sql"].replace('"', "").split()
        table = next((w for w in words if w.startswith("ciam_otp_")), "")
        found.append(f"{words[0]} {table}".strip())
    return found


@pytest.mark.django_db(transaction=True)
def test_a_send_on_redis_is_five_statements_and_one_round_trip(on_redis, site, monkeypatch):
    client, source = site
    Quota.objects.create(client=client, channel="sms", limit=10)
    monkeypatch.setattr(tasks.deliver_due, "apply_async", lambda *a, **k: None)  # the broker
    monkeypatch.setattr(outbox, "RELY_SECONDS", 1.0)  # a slow test machine commits in time
    flows.send_otp(client, usage="login", phone_number="13612340000", auth_source_id=source.pk)
    with CaptureQueriesContext(connection) as queries, round_trips() as trips:
        flows.send_otp(client, usage="login", phone_number="13612340001", auth_source_id=source.pk)
    # The counting script alone: it read the outbox's wake-up flag too, which the first
    # send set (its run is still pending), so this one neither sets it nor publishes.
    assert trips[0] == 1
    # With the client look-up of the view: 5, as on the fast suite's local-memory cache.
    assert statements(queries) == [
        "BEGIN",
        "UPDATE ciam_otp_quota",
        "INSERT ciam_otp_otptoken",
        "COMMIT",
    ], [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_only_a_resend_supersedes_and_a_lost_marker_lets_no_old_code_verify(
    on_redis, site, monkeypatch, settings
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": []}
    client, _ = site
    monkeypatch.setattr(issuing.crypto, "new_code", lambda length: "123456")
    monkeypatch.setattr(enqueue, "hand_off", lambda token, envelope: None)
    monkeypatch.setattr(enqueue.dispatch, "wake", lambda token, until=0.0: None)
    supersede = "UPDATE ciam_otp_otptoken"

    def send() -> tuple[flows.SendResult, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            result = flows.send_otp(client, usage="signup", phone_number="13612340000")
        return result, statements(queries)

    first, done = send()
    assert supersede not in done  # nothing older can be pending
    second, done = send()
    assert done[-1] == supersede  # a resend supersedes
    assert OTPToken.objects.get(pk=first.token.pk).status == TokenStatus.SUPERSEDED

    on_redis.flushdb()  # Redis restarted: the marker is gone
    third, done = send()
    assert supersede not in done
    assert OTPToken.objects.get(pk=second.token.pk).status == TokenStatus.PENDING
    with pytest.raises(InvalidOTPToken):  # ... but verification knows a newer token exists
        flows.verify_otp(
            client, second.otp_token, "123456", phone_number="13612340000", usage="signup"
        )
    flows.verify_otp(client, third.otp_token, "123456", phone_number="13612340000", usage="signup")


@pytest.mark.django_db(transaction=True)
def test_the_monitor_counts_on_redis_and_hands_back_a_send_that_was_not_made(
    on_redis, site, monkeypatch, settings
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {"MIN_SENDS": 3, "MIN_RATIO": 0.5, "COOLDOWN": 600},
    }
    client, _ = site
    monkeypatch.setattr(enqueue, "hand_off", lambda token, envelope: None)
    monkeypatch.setattr(enqueue.dispatch, "wake", lambda token, until=0.0: None)
    quota = Quota.objects.create(client=client, channel="sms", limit=0)
    with pytest.raises(InsufficientSMSQuota):
        flows.send_otp(client, usage="signup", phone_number="13612340000")
    assert abuse.conversion("prefix:861361234").sends == 0  # handed back
    quota.delete()
    statuses = []
    for n in range(5):
        try:
            flows.send_otp(client, usage="signup", phone_number=f"1361234000{n}")
            statuses.append(200)
        except RateLimitExceeded:
            statuses.append(429)
    assert statuses == [200, 200, 200, 429, 429]  # blocked at the third unverified send
    assert abuse.conversion("prefix:861361234").sends == 3


@pytest.mark.django_db(transaction=True)
def test_a_block_this_process_has_not_seen_still_holds(on_redis, site, monkeypatch, settings):
    """Another process blocked the prefix; this one's copy of the table is stale."""
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {"MIN_SENDS": 3, "MIN_RATIO": 0.5, "COOLDOWN": 600},
    }
    client, _ = site
    monkeypatch.setattr(enqueue, "hand_off", lambda token, envelope: None)
    monkeypatch.setattr(enqueue.dispatch, "wake", lambda token, until=0.0: None)
    for n in range(3):
        flows.send_otp(client, usage="signup", phone_number=f"1361234000{n}")
    assert BlockedPrefix.objects.filter(prefix="861361234").exists()
    BlockedPrefix.objects.all().delete()  # what a process with a stale copy sees
    monkeypatch.setattr(abuse.snapshots.blocked_prefixes, "get", lambda: {})

    with pytest.raises(RateLimitExceeded) as refused:
        flows.send_otp(client, usage="signup", phone_number="13612340009")
    assert 590 <= refused.value.retry_after <= 601
    assert OTPToken.objects.count() == 3  # nothing more was sent
    blocked = BlockedPrefix.objects.get(prefix="861361234")  # and the block is written again
    assert (blocked.sends, blocked.verifications) == (3, 0)
    assert abuse.conversion("prefix:861361234").sends == 3  # the refused send handed back
    # Another prefix is untouched.
    flows.send_otp(client, usage="signup", phone_number="13612350000")


@pytest.mark.django_db(transaction=True)
def test_an_unproven_prefix_is_blocked_by_numbers_counted_in_the_same_round_trip(
    on_redis, site, monkeypatch, settings
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": [],
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {"MIN_SENDS": 100, "NEW_PREFIX_NUMBERS": 3},
    }
    client, _ = site
    monkeypatch.setattr(issuing.crypto, "new_code", lambda length: "123456")
    monkeypatch.setattr(enqueue, "hand_off", lambda token, envelope: None)
    monkeypatch.setattr(enqueue.dispatch, "wake", lambda token, until=0.0: None)
    flows.send_otp(client, usage="signup", phone_number="13612350000")  # loads the script

    def send(phone: str) -> flows.SendResult | None:
        try:
            with round_trips() as trips:
                result = flows.send_otp(client, usage="signup", phone_number=phone)
        except RateLimitExceeded:
            return None
        assert trips[0] == 1  # the numbers ride in the limits' script
        return result

    sent = [send(n) for n in ("13612340000", "13612340001", "13612340000", "13612340002")]
    assert all(sent)  # three numbers (a resend is not a new one)
    assert not BlockedPrefix.objects.exists()
    assert send("13612340003") is None
    assert BlockedPrefix.objects.get(prefix="861361234").is_active
    # The refused number was not kept: the block's sets hold exactly the three.
    members = sum(on_redis.scard(k) for k in on_redis.keys("*conv:prefix:861361234:n:*"))
    assert members == 3

    # Another process, whose copy of the table has not seen the block yet,
    # refuses all the same (the counters say so) and writes the block again.
    BlockedPrefix.objects.all().delete()
    monkeypatch.setattr(abuse.snapshots.blocked_prefixes, "get", lambda: {})
    assert send("13612340004") is None
    assert BlockedPrefix.objects.filter(prefix="861361234").exists()
    monkeypatch.undo()
    monkeypatch.setattr(enqueue, "hand_off", lambda token, envelope: None)
    monkeypatch.setattr(enqueue.dispatch, "wake", lambda token, until=0.0: None)

    result = sent[1]
    assert result is not None
    flows.verify_otp(client, result.otp_token, "123456", phone_number="13612340001", usage="signup")
    assert not BlockedPrefix.objects.get(prefix="861361234").is_active  # lifted
    assert send("13612340003") is not None  # ... and the block is proven for 30 days
    assert send("13612340005") is not None


@pytest.mark.django_db(transaction=True)
def test_under_attack_the_range_cap_rides_in_the_same_round_trip(
    on_redis, site, monkeypatch, settings
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_RATE_LIMITS": [],
        "PREFIX_RATE_LIMITS": [],
        "CONVERSION_MONITOR": {"MIN_SENDS": 100, "NEW_PREFIX_NUMBERS": 3, "ATTACK_BLOCKS": 1},
    }
    client, _ = site
    monkeypatch.setattr(enqueue, "hand_off", lambda token, envelope: None)
    monkeypatch.setattr(enqueue.dispatch, "wake", lambda token, until=0.0: None)
    BlockedPrefix.objects.create(
        prefix="861380000", blocked_until=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    flows.send_otp(client, usage="signup", phone_number="13612350000")  # loads the script

    def send(phone: str) -> bool:
        try:
            with round_trips() as trips:
                flows.send_otp(client, usage="signup", phone_number=phone)
        except RateLimitExceeded:
            return False
        assert trips[0] == 1
        return True

    assert [send(n) for n in ("13612340000", "13612340100", "13612340000")] == [True] * 3
    assert send("13612340101") is False  # a neighbour of the second
    assert BlockedPrefix.objects.get(prefix="861361234").is_active


# --- a cache that does not answer ----------------------------------------------------------------


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_dead_redis_trips_the_breaker_and_is_left_alone(settings, fail_open):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nobody listens
        }
    }
    settings.CIAM_OTP = {**settings.CIAM_OTP, **LIMITS, "RATE_LIMIT_FAIL_OPEN": fail_open}
    counters.reset_breaker()
    try:
        if fail_open:
            assert count().result is None  # sent uncounted ...
        else:
            with pytest.raises(TemporarilyUnavailable):
                count()
        assert counters.cache_is_down()
        with round_trips() as trips:
            # ... and the monitor leaves a cache that is down alone
            assert abuse.conversion("prefix:861361234") == abuse.Conversion(0, 0)
            if fail_open:
                assert count().result is None
                with pytest.raises(RateLimitExceeded):  # a block is known without the cache
                    count(blocked=RateLimitExceeded(retry_after=5))
            else:
                with pytest.raises(TemporarilyUnavailable):
                    count()
        assert trips[0] == 0
    finally:
        counters.reset_breaker()
