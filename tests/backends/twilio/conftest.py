"""Fixtures of the Twilio tests: the mocked API, settings, a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_ciam_otp.backends.sms import twilio
from django_ciam_otp.backends.sms.twilio import sdk

from ..provider_fixtures import clear_proxies, configurer, fresh_clients
from .fake import FakeTwilio, serve, twilio_conf


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    yield from serve()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh SDK clients per test (they are cached per process), no proxies, no leftovers."""
    clear_proxies(monkeypatch)
    sdk.forget_retry_after()
    yield from fresh_clients(sdk)


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    """Make Twilio the SMS backend, ``CIAM_OTP["TWILIO_SMS"]`` a working config + overrides."""
    return configurer(settings, twilio.BACKEND_PATH, "TWILIO_SMS", twilio_conf)


@pytest.fixture
def backend(fake: FakeTwilio, configure: Callable[..., None]) -> twilio.SMSBackend:
    configure()
    return twilio.SMSBackend()
