"""Client authentication: the Basic header, the client look-up, and the failure throttle.

``AUTH_FAILURE_IP_RATE_LIMITS`` / ``AUTH_FAILURE_CLIENT_RATE_LIMITS``: failures
(wrong secret, unknown or disabled client, garbled header) are counted; past a
rate the caller gets 429 ``rate_limit_exceeded`` with ``Retry-After``, before
its credentials are looked at, until the window ends. Time is frozen so no
test straddles a django-ratelimit window by chance.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from django.core.cache import caches
from django.core.checks import run_checks
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_ciam_otp import auth, counters, crypto
from django_ciam_otp.models import OTPClient
from tests.conftest import Api, ApiClient, basic_auth

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 4, 12, 0, 7, tzinfo=dt.UTC)
ENDPOINTS = ["/otp/send", "/otp/verify"]
IP, OTHER_IP = "203.0.113.7", "198.51.100.9"


@pytest.fixture(autouse=True)
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def limits(settings: Any) -> Callable[..., None]:
    """Set the two failure limits (``None`` leaves the default)."""

    def apply(ip: list[str] | None = None, client: list[str] | None = None) -> None:
        values = dict(settings.CIAM_OTP)
        if ip is not None:
            values["AUTH_FAILURE_IP_RATE_LIMITS"] = ip
        if client is not None:
            values["AUTH_FAILURE_CLIENT_RATE_LIMITS"] = client
        settings.CIAM_OTP = values

    return apply


def call(api: Api, path: str, auth_value: ApiClient | str | None, ip: str = IP) -> Any:
    """One request; an empty body, so a request that passes authentication answers 400."""
    return api.post(path, {}, auth=auth_value, REMOTE_ADDR=ip)


def wrong(client: ApiClient) -> str:
    return basic_auth(client.client.client_id, client.secret + "x")


def count_hashes(monkeypatch: Any) -> list[str]:
    """The purposes of every ``crypto.hash_matches`` call from now on (secret checks)."""
    calls: list[str] = []
    real = crypto.hash_matches

    def counting(purpose: str, value: str, stored_hash: str) -> bool:
        calls.append(purpose)
        return real(purpose, value, stored_hash)

    monkeypatch.setattr(crypto, "hash_matches", counting)
    return calls


def assert_passed_auth(response: Any) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"


def assert_throttled(response: Any) -> int:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json;charset=UTF-8"
    body = response.json()
    assert body["error"] == "rate_limit_exceeded"
    retry_after = int(response["Retry-After"])
    assert body["retry_after"] == retry_after
    return retry_after


# --- per IP address ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_secrets_from_one_ip_then_429_even_with_the_right_secret(
    api: Api, api_client: ApiClient, limits: Callable[..., None], path: str
) -> None:
    limits(ip=["3/m"], client=[])
    for _ in range(3):
        response = call(api, path, wrong(api_client))
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    retry_after = assert_throttled(call(api, path, api_client))
    assert 1 <= retry_after <= 60
    assert_throttled(call(api, path, wrong(api_client)))  # still blocked, and not counted


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_block_ends_with_its_window_and_other_ips_are_not_blocked(
    api: Api, api_client: ApiClient, limits: Callable[..., None], frozen: Any, path: str
) -> None:
    limits(ip=["3/m"], client=[])
    for _ in range(3):
        call(api, path, wrong(api_client))
    retry_after = assert_throttled(call(api, path, api_client))
    assert_passed_auth(call(api, path, api_client, ip=OTHER_IP))
    frozen.shift(retry_after - 1)
    assert_throttled(call(api, path, api_client))
    frozen.shift(1)
    assert_passed_auth(call(api, path, api_client))


def test_the_longest_full_window_decides_retry_after(
    api: Api, api_client: ApiClient, limits: Callable[..., None], frozen: Any
) -> None:
    limits(ip=["2/m", "4/d"], client=[])
    for _ in range(2):
        call(api, "/otp/send", wrong(api_client))
    first = assert_throttled(call(api, "/otp/send", api_client))
    assert first <= 60  # only the minute is full
    frozen.shift(first)
    for _ in range(2):
        assert call(api, "/otp/send", wrong(api_client)).status_code == 401
    second = assert_throttled(call(api, "/otp/send", api_client))
    assert second > 60  # the day is full too, and its window ends later
    frozen.shift(second - 1)
    assert_throttled(call(api, "/otp/send", api_client))
    frozen.shift(1)
    assert_passed_auth(call(api, "/otp/send", api_client))


def test_garbled_headers_count_per_ip(
    api: Api, api_client: ApiClient, limits: Callable[..., None]
) -> None:
    limits(ip=["3/m"], client=["3/m"])
    for garbled in ["Basic !!!", "Basic " + "bm9jb2xvbg==", "Bearer abc"]:
        response = call(api, "/otp/send", garbled)
        assert response.status_code == 401
    assert_throttled(call(api, "/otp/send", api_client))
    assert_passed_auth(call(api, "/otp/send", api_client, ip=OTHER_IP))  # not the client's


def test_missing_credentials_are_not_counted(
    api: Api, api_client: ApiClient, limits: Callable[..., None]
) -> None:
    """No Authorization header is no guess: answered 401 without touching the counters."""
    limits(ip=["3/m"], client=[])
    for _ in range(5):
        assert call(api, "/otp/send", None).status_code == 401
    assert_passed_auth(call(api, "/otp/send", api_client))


def test_successes_are_not_counted(
    api: Api, api_client: ApiClient, limits: Callable[..., None]
) -> None:
    limits(ip=["3/m"], client=["3/m"])
    for _ in range(10):
        assert_passed_auth(call(api, "/otp/verify", api_client))
    for _ in range(2):
        assert call(api, "/otp/verify", wrong(api_client)).status_code == 401
    assert_passed_auth(call(api, "/otp/verify", api_client))
    assert call(api, "/otp/verify", wrong(api_client)).status_code == 401
    assert_throttled(call(api, "/otp/verify", api_client))


def test_ipv6_callers_are_counted_per_64(
    api: Api, api_client: ApiClient, limits: Callable[..., None]
) -> None:
    limits(ip=["3/m"], client=[])
    for n in range(3):
        call(api, "/otp/send", wrong(api_client), ip=f"2001:db8:1:2::{n + 1}")
    assert_throttled(call(api, "/otp/send", api_client, ip="2001:db8:1:2:ffff::9"))
    assert_passed_auth(call(api, "/otp/send", api_client, ip="2001:db8:1:3::1"))


def test_ipv4_mapped_addresses_are_ipv4_callers(
    api: Api, api_client: ApiClient, limits: Callable[..., None]
) -> None:
    """A dual-stack socket reports ``::ffff:a.b.c.d``; a /64 mask would make them all one."""
    limits(ip=["3/m"], client=[])
    for _ in range(3):
        call(api, "/otp/send", wrong(api_client), ip=f"::ffff:{IP}")
    assert_throttled(call(api, "/otp/send", api_client, ip=IP))
    assert_passed_auth(call(api, "/otp/send", api_client, ip=f"::ffff:{OTHER_IP}"))


def test_behind_a_proxy_the_forwarded_address_is_counted(
    api: Api, api_client: ApiClient, limits: Callable[..., None], settings: Any
) -> None:
    """RATELIMIT_IP_META_KEY, as for every other per-IP limit: the proxy is not one caller."""
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    limits(ip=["3/m"], client=[])
    for _ in range(3):
        api.post("/otp/send", {}, auth=wrong(api_client), HTTP_X_REAL_IP=IP)
    blocked = api.post("/otp/send", {}, auth=api_client, HTTP_X_REAL_IP=IP)
    assert_throttled(blocked)
    other = api.post("/otp/send", {}, auth=api_client, HTTP_X_REAL_IP=OTHER_IP)
    assert_passed_auth(other)


def test_callers_without_a_usable_address_share_one_counter_not_none(
    api: Api, api_client: ApiClient, limits: Callable[..., None], caplog: Any
) -> None:
    """An empty or garbled address must not switch the limit off (clientip.py)."""
    limits(ip=["2/m"], client=[])
    assert call(api, "/otp/send", wrong(api_client), ip="").status_code == 401
    assert call(api, "/otp/send", wrong(api_client), ip="garbage").status_code == 401
    assert_throttled(call(api, "/otp/send", api_client, ip=""))
    assert "client IP address unusable" in caplog.text


# --- per client_id -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_secrets_for_one_client_id_from_many_ips(
    api: Api,
    api_client: ApiClient,
    client_factory: Callable[..., ApiClient],
    limits: Callable[..., None],
    path: str,
) -> None:
    limits(ip=[], client=["3/m"])
    other = client_factory()
    for n in range(3):
        assert call(api, path, wrong(api_client), ip=f"192.0.2.{n + 1}").status_code == 401
    assert_throttled(call(api, path, api_client, ip="192.0.2.200"))
    assert_passed_auth(call(api, path, other, ip="192.0.2.1"))  # other clients, same IPs


def test_unknown_client_ids_are_counted_like_known_ones(
    api: Api, api_client: ApiClient, limits: Callable[..., None]
) -> None:
    """Otherwise whether a 429 ever comes would tell known ids from unknown ones."""
    limits(ip=[], client=["2/m"])
    unknown = basic_auth("NO_SUCH_CLIENT", "whatever")
    for n in range(2):
        assert call(api, "/otp/send", unknown, ip=f"192.0.2.{n + 1}").status_code == 401
    assert_throttled(call(api, "/otp/send", unknown, ip="192.0.2.99"))
    assert_passed_auth(call(api, "/otp/send", api_client))


def test_a_disabled_client_with_its_right_secret_counts_as_a_failure(
    api: Api, api_client: ApiClient, limits: Callable[..., None]
) -> None:
    limits(ip=[], client=["2/m"])
    OTPClient.objects.filter(pk=api_client.client.pk).update(enabled=False)
    for _ in range(2):
        assert call(api, "/otp/send", api_client).status_code == 401
    OTPClient.objects.filter(pk=api_client.client.pk).update(enabled=True)
    assert_throttled(call(api, "/otp/send", api_client))


def test_the_default_limits(api: Api, api_client: ApiClient, settings: Any) -> None:
    """Documented defaults: 20 per minute per IP, 60 per minute per client_id."""
    assert "AUTH_FAILURE_IP_RATE_LIMITS" not in settings.CIAM_OTP
    for _ in range(20):
        assert call(api, "/otp/send", wrong(api_client)).status_code == 401
    assert_throttled(call(api, "/otp/send", api_client))
    for n in range(39):  # 20 + 39 = 59 failures of this client_id so far, spread over IPs
        assert call(api, "/otp/send", wrong(api_client), ip=f"10.0.{n}.1").status_code == 401
    assert call(api, "/otp/send", wrong(api_client), ip="10.1.0.1").status_code == 401
    assert_throttled(call(api, "/otp/send", api_client, ip="10.2.0.1"))


# --- what a blocked request costs, and what the cache holds ---------------------------------------


def test_a_blocked_request_costs_no_query_and_no_hash(
    api: Api, api_client: ApiClient, limits: Callable[..., None], monkeypatch: Any
) -> None:
    limits(ip=["1/m"], client=["1/m"])
    call(api, "/otp/send", wrong(api_client))
    hashed = count_hashes(monkeypatch)
    with CaptureQueriesContext(connection) as queries:
        assert_throttled(call(api, "/otp/send", api_client))
    assert hashed == []
    assert len(queries) == 0


def test_each_failure_is_counted_once(
    api: Api, api_client: ApiClient, limits: Callable[..., None], monkeypatch: Any
) -> None:
    """The authenticator runs once per request, also when it raises the 429 (no DRF retry)."""
    limits(ip=["5/m"], client=[])
    runs: list[int] = []
    real = auth.BasicClientAuthentication.authenticate

    def counting(self: Any, request: Any) -> Any:
        runs.append(1)
        return real(self, request)

    monkeypatch.setattr(auth.BasicClientAuthentication, "authenticate", counting)
    for _ in range(5):
        call(api, "/otp/send", wrong(api_client))
    assert_throttled(call(api, "/otp/send", api_client))
    assert len(runs) == 6


def test_the_cache_holds_neither_client_ids_nor_addresses(
    api: Api, api_client: ApiClient, limits: Callable[..., None]
) -> None:
    limits(ip=["1/m"], client=["1/m"])
    call(api, "/otp/send", wrong(api_client))
    assert_throttled(call(api, "/otp/send", api_client))
    cache = caches["default"]
    stored: dict[str, Any] = cache._cache  # type: ignore[attr-defined]  # LocMemCache's
    keys = list(stored)
    assert keys
    for key in keys:
        assert api_client.client.client_id not in key
        assert IP not in key
    assert not any(api_client.client.client_id in repr(v) for v in stored.values())


# --- switched off, and a cache that fails ------------------------------------------------------


@pytest.mark.parametrize(
    ("ip_rates", "client_rates", "enabled"),
    [([], [], True), (["1/m"], ["1/m"], False)],
    ids=["empty lists", "RATELIMIT_ENABLE=False"],
)
def test_switched_off_never_429(
    api: Api,
    api_client: ApiClient,
    limits: Callable[..., None],
    settings: Any,
    ip_rates: list[str],
    client_rates: list[str],
    enabled: bool,
) -> None:
    settings.RATELIMIT_ENABLE = enabled
    limits(ip=ip_rates, client=client_rates)
    for _ in range(30):
        assert call(api, "/otp/send", wrong(api_client)).status_code == 401
        assert call(api, "/otp/send", "Basic !!!").status_code == 401
    assert_passed_auth(call(api, "/otp/send", api_client))


@pytest.mark.parametrize("method", ["get_many", "incr", "add", "set"])
def test_a_failing_cache_fails_open(
    api: Api,
    api_client: ApiClient,
    limits: Callable[..., None],
    monkeypatch: Any,
    caplog: Any,
    method: str,
) -> None:
    """Whichever cache call fails, the request is answered as if there were no throttle."""
    limits(ip=["2/m"], client=["2/m"])
    cache = caches["default"]

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, method, down)
    caplog.set_level(logging.WARNING, logger="django_ciam_otp.auth")
    for _ in range(3):
        assert call(api, "/otp/send", wrong(api_client)).status_code == 401
        counters.reset_breaker()
    assert_passed_auth(call(api, "/otp/send", api_client))
    assert "cache unavailable" in caplog.text


def test_an_open_circuit_breaker_skips_the_cache(
    api: Api, api_client: ApiClient, limits: Callable[..., None], monkeypatch: Any
) -> None:
    limits(ip=["1/m"], client=["1/m"])
    touched: list[str] = []
    cache = caches["default"]

    def get_many(*args: Any, **kwargs: Any) -> dict[str, Any]:
        touched.append("get_many")
        return {}

    monkeypatch.setattr(cache, "get_many", get_many)
    counters.trip_breaker()
    assert call(api, "/otp/send", wrong(api_client)).status_code == 401
    assert_passed_auth(call(api, "/otp/send", api_client))
    assert touched == []


# --- checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["AUTH_FAILURE_IP_RATE_LIMITS", "AUTH_FAILURE_CLIENT_RATE_LIMITS"])
@pytest.mark.parametrize("value", ["20/m", ["20/minute"], [20], None])
def test_check_refuses_bad_rates(settings: Any, key: str, value: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, key: value}
    errors = [e for e in run_checks() if e.id == "ciam_otp.E004"]
    assert [key in e.msg for e in errors] == [True]


def test_check_accepts_the_defaults_and_empty_lists(settings: Any) -> None:
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "AUTH_FAILURE_IP_RATE_LIMITS": [],
        "AUTH_FAILURE_CLIENT_RATE_LIMITS": ["100/m", "1000/h"],
    }
    assert not [e for e in run_checks() if e.id == "ciam_otp.E004"]


# --- the look-up behind it: unknown ids cost what known ids cost -------------------------------


def test_an_unknown_id_with_the_decoys_secret_is_refused(
    client_factory: Callable[..., ApiClient],
) -> None:
    """Unknown ids are checked against a real row (the oldest client) and must never pass."""
    oldest = client_factory(client_id="OLDEST", client_secret="its-secret")
    client_factory(client_id="NEWER", client_secret="another-secret")
    assert auth.authenticate_client("OLDEST", "its-secret") == oldest.client
    assert auth.authenticate_client("UNKNOWN", "its-secret") is None
    assert auth.authenticate_client("oldest", "its-secret") is None
    assert auth.authenticate_client("OLDEST ", "its-secret") is None


def test_no_clients_at_all(db: None) -> None:
    assert auth.authenticate_client("ANY", "secret") is None


def test_known_and_unknown_ids_run_the_same_statements_and_hashes(
    api_client: ApiClient, monkeypatch: Any
) -> None:
    hashed = count_hashes(monkeypatch)
    runs = []
    for client_id in [api_client.client.client_id, "UNKNOWN"]:
        hashed.clear()
        with CaptureQueriesContext(connection) as queries:
            assert auth.authenticate_client(client_id, "wrong") is None
        runs.append(([q["sql"].replace(client_id, "?") for q in queries], len(hashed)))
    assert runs[0] == runs[1]
    assert len(runs[0][0]) == 1 and runs[0][1] == 1


# --- the Basic header ---------------------------------------------------------------------


def _basic(raw: bytes) -> bytes:
    import base64

    return b"Basic " + base64.b64encode(raw)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_basic(b"id:secret"), ("id", "secret")),
        (_basic(b"id:sec:ret"), ("id", "sec:ret")),  # only the first colon separates
        (_basic(b"a%3Ab:c+d"), ("a:b", "c d")),  # RFC 6749 2.3.1 form-encodes both
        (b"basic " + _basic(b"id:s")[6:], ("id", "s")),  # the scheme is case-insensitive
    ],
)
def test_basic_credentials_are_parsed_as_rfc_6749_says(header, expected):
    assert auth.parse_basic_credentials(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        b"",
        b"Basic",
        b"Bearer abc",
        b"Basic !!!notbase64",
        _basic(b"no-colon"),
        _basic(b":secret"),
        _basic(b"id:"),
        _basic(b"\xff\xfe:secret"),  # not UTF-8
        _basic(b"a%00b:secret"),  # NUL: PostgreSQL cannot store it
        _basic(b"x" * 256 + b":secret"),
        _basic(b"%ff:secret"),  # a percent-escape that is not UTF-8
    ],
)
def test_garbled_credentials_are_a_value_error_never_anything_else(header):
    with pytest.raises(ValueError):
        auth.parse_basic_credentials(header)
