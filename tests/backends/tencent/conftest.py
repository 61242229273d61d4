"""Fixtures of the Tencent Cloud SMS tests: the fake server, settings, a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_ciam_otp.backends.sms import tencent
from django_ciam_otp.backends.sms.tencent import sdk

from ..provider_fixtures import clear_proxies, configurer, fresh_clients
from .fake import FakeTencent, serve, tencent_conf


@pytest.fixture
def fake() -> Iterator[FakeTencent]:
    yield from serve()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK and requests honour *_PROXY; the fake is on loopback."""
    clear_proxies(monkeypatch)


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test builds its own SDK clients (they are cached per process)."""
    yield from fresh_clients(sdk)


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    """Set CIAM_OTP["TENCENT_SMS"] (conf.py reloads on setting_changed)."""
    return configurer(settings, tencent.BACKEND_PATH, "TENCENT_SMS", tencent_conf)


@pytest.fixture
def backend(fake: FakeTencent, configure: Callable[..., None]) -> tencent.SMSBackend:
    configure(ENDPOINT=fake.url)
    return tencent.SMSBackend()
