"""django_ciam_otp.clientip: the per-IP limits' address, tolerant of what proxies pass on."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from django_ciam_otp.clientip import UNKNOWN, client_ip


def request(remote: str | None = "198.51.100.9", **meta: str):
    req = RequestFactory().get("/")
    if remote is None:
        del req.META["REMOTE_ADDR"]
    else:
        req.META["REMOTE_ADDR"] = remote
    req.META.update(meta)
    return req


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("1.2.3.4, 203.0.113.7", "203.0.113.7"),  # the last: what our proxy appended
        ("1.2.3.4, garbage", "1.2.3.4"),
        ("garbage", "198.51.100.9"),  # REMOTE_ADDR
        ("", "198.51.100.9"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::"),  # /64
    ],
)
def test_behind_a_proxy(settings, forwarded, expected):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    assert client_ip(request(HTTP_X_FORWARDED_FOR=forwarded)) == expected


@pytest.mark.parametrize("remote", ["", None, "unix:/run/gunicorn.sock"])
def test_no_usable_address_at_all_is_one_shared_bucket(remote):
    assert client_ip(request(remote)) == UNKNOWN


def test_a_failing_site_callable_is_no_address(settings):
    def broken(req):
        raise KeyError("x")

    settings.RATELIMIT_IP_META_KEY = broken
    assert client_ip(request()) == "198.51.100.9"


@pytest.mark.django_db
@pytest.mark.parametrize("forwarded", ["garbage", "203.0.113.7, 10.0.0.1", ""])
def test_a_garbled_header_is_never_a_500_and_still_counted(api, api_client, settings, forwarded):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    settings.CIAM_OTP = {**settings.CIAM_OTP, "IP_RATE_LIMITS": ["1/m"]}
    body = {"usage": "signup", "email": "a@example.com"}
    first = api.send(body, auth=api_client, HTTP_X_FORWARDED_FOR=forwarded)
    assert first.status_code == 200
    second = api.send(
        {"usage": "signup", "email": "b@example.com"},
        auth=api_client,
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    assert second.status_code == 429
