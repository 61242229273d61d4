"""The example project's password log-in: failed attempts are throttled per IP and per account.

Past a limit the form says "Too many failed log-ins. Try again in N minutes."
(translated) and does not check the password; successes are not counted.
Time is frozen so no test straddles a django-ratelimit window by chance.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client

from example_project.demo import forms as demo_forms
from example_project.demo.models import Profile
from tests.conftest import use_example_project

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 4, 12, 0, 7, tzinfo=dt.UTC)
PASSWORD = "correct-horse-battery"
IP, OTHER_IP = "203.0.113.7", "198.51.100.9"
TOO_MANY_1 = "Too many failed log-ins. Try again in 1 minute."
WRONG = "Wrong email address, mobile number or password."


@pytest.fixture(autouse=True)
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def demo(settings: Any) -> None:
    """The example project's URLs and OTP settings, its demo data, small failure limits."""
    use_example_project(settings, load_data=False)
    settings.DEMO_PASSWORD_LOGIN_RATE_LIMITS = {"IP": ["4/m"], "ACCOUNT": ["2/m"]}
    call_command("load_demo_data", stdout=io.StringIO())


@pytest.fixture
def alice(demo: None) -> Any:
    user = get_user_model().objects.create_user(
        "alice@example.com", email="alice@example.com", password=PASSWORD
    )
    Profile.objects.create(user=user, phone_number="+8613612345678")
    return user


@pytest.fixture
def checked(monkeypatch: Any) -> list[str]:
    """The usernames whose password the form checked (``authenticate()`` calls)."""
    calls: list[str] = []
    real = demo_forms.authenticate

    def counting(request: Any, **credentials: Any) -> Any:
        calls.append(credentials.get("username", ""))
        return real(request, **credentials)

    monkeypatch.setattr(demo_forms, "authenticate", counting)
    return calls


def log_in(login: str, password: str, *, ip: str = IP, **extra: Any) -> Any:
    """Post the form and follow its redirect (a refused log-in, too, comes back by GET)."""
    client = Client(REMOTE_ADDR=ip, **extra)
    return client.post("/login/", {"login": login, "password": password}, follow=True)


def errors(response: Any) -> list[str]:
    found = re.findall(r'<p class="error[^"]*"[^>]*>(.*?)</p>', response.content.decode(), re.S)
    return [html.unescape(e).strip() for e in found]


def logged_in(response: Any) -> bool:
    return response.redirect_chain[:1] == [("/account/", 302)]


def test_wrong_passwords_then_even_the_right_one_is_not_checked(
    alice: Any, checked: list[str]
) -> None:
    for _ in range(2):
        assert errors(log_in("alice@example.com", "wrong")) == [WRONG]
    assert len(checked) == 2
    response = log_in("alice@example.com", PASSWORD)
    assert response.status_code == 200
    assert errors(response) == [TOO_MANY_1]
    assert len(checked) == 2  # the password was not checked
    assert not logged_in(response)


def test_the_block_ends_with_its_window(alice: Any, frozen: Any) -> None:
    for _ in range(2):
        log_in("alice@example.com", "wrong")
    assert errors(log_in("alice@example.com", PASSWORD)) == [TOO_MANY_1]
    frozen.shift(61)
    assert logged_in(log_in("alice@example.com", PASSWORD))


def test_every_way_of_writing_a_login_shares_its_counter(alice: Any) -> None:
    """Email case, phone number formats: one login, no extra guesses."""
    log_in("ALICE@Example.com", "wrong", ip="192.0.2.1")
    log_in("alice@EXAMPLE.com", "wrong", ip="192.0.2.2")
    assert errors(log_in("alice@example.com", PASSWORD, ip="192.0.2.3")) == [TOO_MANY_1]
    log_in("+86 136 1234 5678", "wrong", ip="192.0.2.4")
    log_in("136-1234-5678", "wrong", ip="192.0.2.5")
    assert errors(log_in("13612345678", PASSWORD, ip="192.0.2.6")) == [TOO_MANY_1]


def test_the_throttle_never_tells_which_logins_share_an_account(alice: Any) -> None:
    """Failing with her email must not lock out her phone number: that would link the two."""
    for n in range(2):
        log_in("alice@example.com", "wrong", ip=f"192.0.2.{n + 1}")
    assert errors(log_in("alice@example.com", PASSWORD, ip="192.0.2.3")) == [TOO_MANY_1]
    assert logged_in(log_in("+86 136 1234 5678", PASSWORD, ip="192.0.2.4"))


def test_a_garbled_forwarded_header_does_not_switch_the_ip_limit_off(alice: Any, settings) -> None:
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    for login in ("x@example.com", "y@example.com", "z@example.com", "w@example.com"):
        log_in(login, "wrong", HTTP_X_FORWARDED_FOR="garbage")
    answer = log_in("alice@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="garbage")
    assert errors(answer) and "Too many" in errors(answer)[0]


def test_unknown_accounts_are_throttled_alike(demo: None) -> None:
    for _ in range(2):
        assert errors(log_in("nobody@example.com", "x", ip="192.0.2.1")) == [WRONG]
    assert errors(log_in("NOBODY@example.com", "x", ip="192.0.2.2")) == [TOO_MANY_1]


def test_one_ip_failing_on_many_accounts(alice: Any) -> None:
    for n in range(4):
        log_in(f"user{n}@example.com", "wrong")
    assert errors(log_in("alice@example.com", PASSWORD)) == [TOO_MANY_1]
    assert logged_in(log_in("alice@example.com", PASSWORD, ip=OTHER_IP))


def test_successful_log_ins_are_not_counted(alice: Any) -> None:
    for _ in range(6):
        assert logged_in(log_in("alice@example.com", PASSWORD))
    log_in("alice@example.com", "wrong")
    assert logged_in(log_in("alice@example.com", PASSWORD))


def test_incomplete_forms_are_not_counted(alice: Any) -> None:
    for _ in range(6):
        log_in("alice@example.com", "")
    assert logged_in(log_in("alice@example.com", PASSWORD))


def test_a_longer_wait_is_said_in_minutes(alice: Any, settings: Any) -> None:
    settings.DEMO_PASSWORD_LOGIN_RATE_LIMITS = {"IP": [], "ACCOUNT": ["1/h"]}
    log_in("alice@example.com", "wrong")
    [text] = errors(log_in("alice@example.com", PASSWORD))
    match = re.fullmatch(r"Too many failed log-ins\. Try again in (\d+) minutes?\.", text)
    assert match, text
    minutes = int(match.group(1))
    assert 1 <= minutes <= 60
    assert text.endswith("minute.") == (minutes == 1)


def test_in_simplified_chinese(alice: Any) -> None:
    for _ in range(2):
        log_in("alice@example.com", "wrong")
    response = log_in("alice@example.com", PASSWORD, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert errors(response) == ["登录失败次数过多，请在 1 分钟后重试。"]


def test_limits_switched_off(alice: Any, settings: Any) -> None:
    settings.DEMO_PASSWORD_LOGIN_RATE_LIMITS = {"IP": [], "ACCOUNT": []}
    for _ in range(10):
        log_in("alice@example.com", "wrong")
    assert logged_in(log_in("alice@example.com", PASSWORD))


def test_the_default_limits(alice: Any, settings: Any) -> None:
    """Five failures a minute per account, ten per IP address."""
    del settings.DEMO_PASSWORD_LOGIN_RATE_LIMITS
    for n in range(5):
        log_in("alice@example.com", "wrong", ip=f"192.0.2.{n + 1}")
    assert errors(log_in("alice@example.com", PASSWORD, ip="192.0.2.99")) == [TOO_MANY_1]
    for n in range(10):
        log_in(f"user{n}@example.com", "wrong")
    assert errors(log_in(f"user{n + 1}@example.com", "wrong")) == [TOO_MANY_1]


def test_a_failing_cache_lets_people_log_in(alice: Any, monkeypatch: Any, caplog: Any) -> None:
    cache = caches["default"]

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", down)
    for _ in range(3):
        assert errors(log_in("alice@example.com", "wrong")) == [WRONG]
    assert logged_in(log_in("alice@example.com", PASSWORD))
    assert "cache unavailable" in caplog.text


def test_the_cache_holds_no_login_names(alice: Any) -> None:
    log_in("alice@example.com", "wrong")
    stored = caches["default"]._cache  # type: ignore[attr-defined]  # LocMemCache's keys
    keys = " ".join(map(str, stored))
    assert "alice" not in keys and "8613612345678" not in keys
