"""Fixtures of the Twilio tests: the mocked API, settings, a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_ciam_otp.backends.sms import twilio
from django_ciam_otp.backends.sms.twilio import sdk

from .fake import FakeTwilio, serve, twilio_conf


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    yield from serve()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh SDK clients per test (they are cached per process), no proxies, no leftovers."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    sdk.forget_clients()
    sdk.forget_retry_after()
    yield
    sdk.forget_clients()


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    """Make Twilio the SMS backend, ``CIAM_OTP["TWILIO_SMS"]`` a working config + overrides."""

    def apply(**overrides: Any) -> None:
        settings.CIAM_OTP = {
            **settings.CIAM_OTP,
            "SMS_BACKEND": twilio.BACKEND_PATH,
            "TWILIO_SMS": twilio_conf(**overrides),
        }

    return apply


@pytest.fixture
def backend(fake: FakeTwilio, configure: Callable[..., None]) -> twilio.SMSBackend:
    configure()
    return twilio.SMSBackend()
