"""CIAM_OTP["DELIVERY"]: a Celery task, or inline when the site has no Celery app."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from django.core import checks

from django_ciam_otp import checks as otp_checks
from django_ciam_otp import dispatch, send_otp
from django_ciam_otp.models import DeliveryStatus, OTPToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_celery_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a fresh startproject site: only Celery's fallback app exists."""
    fallback = Celery("default", fixups=[], set_as_current=False)
    monkeypatch.setattr(
        "celery.current_app", type("P", (), {"_get_current_object": lambda self: fallback})()
    )


def test_celerys_fallback_app_is_recognised():
    assert dispatch.is_fallback(Celery("default", fixups=[], set_as_current=False))
    assert not dispatch.is_fallback(Celery("mysite", set_as_current=False))
    assert dispatch.celery_app() is not None  # the test suite's own app


def test_auto_picks_celery_with_an_app_and_inline_without(no_celery_app, settings):
    assert dispatch.delivery_mode() == "inline"
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY": "celery"}
    assert dispatch.delivery_mode() == "celery"


def test_auto_picks_celery_when_the_site_has_an_app():
    assert dispatch.delivery_mode() == "celery"


@pytest.mark.django_db(transaction=True)  # delivery follows the send's own commit
def test_inline_delivery_without_celery_delivers_at_commit(
    no_celery_app, client_factory, sms_outbox, monkeypatch
):
    def no_publishing(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("inline delivery published a Celery task")

    monkeypatch.setattr(dispatch, "publish", no_publishing)
    caller = client_factory()
    result = send_otp(caller.client, usage="signup", phone_number="13612345678")
    dispatch.wait_for_inline_deliveries()
    assert [m.phone_number for m in sms_outbox] == ["+8613612345678"]
    assert OTPToken.objects.get(pk=result.token.pk).delivery_status == DeliveryStatus.SENT


@pytest.mark.django_db(transaction=True)
def test_inline_delivery_failure_is_recorded_not_raised(
    no_celery_app, client_factory, settings, caplog
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKEND": "tests.test_dispatch.BrokenBackend",
        "DELIVERY_MAX_RETRIES": 1,
    }
    result = send_otp(client_factory().client, usage="signup", phone_number="13612345678")
    dispatch.wait_for_inline_deliveries()
    token = OTPToken.objects.get(pk=result.token.pk)
    assert token.delivery_status == DeliveryStatus.FAILED
    assert "provider down" in caplog.text


class BrokenBackend:
    def __init__(self, **kwargs: Any) -> None:
        pass

    def send(self, message: Any) -> str:
        from django_ciam_otp.backends.base import TransientDeliveryError

        raise TransientDeliveryError("provider down")


def ids(messages: list[checks.CheckMessage]) -> set[str]:
    return {m.id for m in messages if m.id}


def test_an_unknown_delivery_mode_is_e010(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY": "rq"}
    assert "ciam_otp.E010" in ids(otp_checks.check_settings())


def test_celery_without_an_app_is_e011(no_celery_app, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY": "celery"}
    (message,) = [m for m in otp_checks.check_settings() if m.id == "ciam_otp.E011"]
    assert "celery.py" in message.hint


def test_celery_without_a_broker_is_e012(settings):
    from celery import current_app

    eager, broker = current_app.conf.task_always_eager, current_app.conf.broker_url
    current_app.conf.task_always_eager, current_app.conf.broker_url = False, None
    try:
        assert "ciam_otp.E012" in ids(otp_checks.check_settings())
        current_app.conf.broker_url = "redis://127.0.0.1:1/0"
        assert "ciam_otp.E012" not in ids(otp_checks.check_settings())
    finally:
        current_app.conf.task_always_eager, current_app.conf.broker_url = eager, broker


def test_inline_delivery_is_a_deploy_warning(no_celery_app):
    assert "ciam_otp.W014" in ids(otp_checks.check_deploy())
    assert "ciam_otp.W014" not in ids(otp_checks.check_settings())


def test_the_auth_backend_without_a_site_client_is_w015(settings):
    assert "ciam_otp.W015" in ids(otp_checks.check_settings())  # tests.settings lists OTPBackend
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SITE_CLIENT_ID": "my-site"}
    assert "ciam_otp.W015" not in ids(otp_checks.check_settings())


def test_a_backends_first_failure_is_logged_once_with_where_it_sends(
    client_factory, settings, caplog, django_capture_on_commit_callbacks
):
    import logging

    from django_ciam_otp import delivery

    delivery._REPORTED.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens: refused at once
    settings.CIAM_OTP = {**settings.CIAM_OTP, "DELIVERY_MAX_RETRIES": 1}
    caller = client_factory()
    with caplog.at_level(logging.ERROR, logger="django_ciam_otp.delivery"):
        for address in ("a@example.com", "b@example.com"):
            with django_capture_on_commit_callbacks(execute=True):
                send_otp(caller.client, usage="signup", email=address)
    first = [r for r in caplog.records if "failed:" in r.getMessage() and "via" in r.getMessage()]
    assert len(first) == 1
    line = first[0].getMessage()
    assert "django.core.mail.backends.smtp.EmailBackend" in line
    assert "(127.0.0.1:9)" in line
    assert "ConnectionRefusedError" in line or "refused" in line.lower()


@pytest.mark.django_db(transaction=True)
def test_inline_delivery_leaves_the_request_before_the_provider_answers(
    no_celery_app, client_factory, settings
):
    """A slow provider must not make a real reset answer later than one for nobody (timing)."""
    import threading
    import time

    from django.contrib.auth import get_user_model

    release = threading.Event()
    SlowBackend.release = release
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_BACKEND": "tests.test_dispatch.SlowBackend"}
    get_user_model().objects.create(username="known", email="known@example.com")
    caller = client_factory().client
    started = time.monotonic()
    send_otp(caller, usage="reset_password", email="known@example.com")
    assert time.monotonic() - started < 1.0  # the provider is still "sending"
    release.set()
    dispatch.wait_for_inline_deliveries()
    assert SlowBackend.sent == ["known@example.com"]


class SlowBackend:
    release: Any = None
    sent: list[str] = []

    def __init__(self, **kwargs: Any) -> None:
        pass

    def send(self, message: Any) -> str:
        SlowBackend.release.wait(5)
        SlowBackend.sent.append(message.recipient)
        return "slow-1"
