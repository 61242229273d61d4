"""Fixtures of the Alibaba Cloud SMS tests: the fake at the HTTP layer, settings, a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_ciam_otp.backends.sms import aliyun
from django_ciam_otp.backends.sms.aliyun import sdk

from ..provider_fixtures import clear_proxies, configurer, fresh_clients
from .fake import FakeAliyun, aliyun_conf, serve


@pytest.fixture
def fake() -> Iterator[FakeAliyun]:
    yield from serve()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads *_PROXY itself; the tests' requests never leave the process."""
    clear_proxies(monkeypatch, "DEBUG")


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test builds its own SDK clients (they are cached per process)."""
    yield from fresh_clients(sdk)


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    """Set CIAM_OTP["ALIYUN_SMS"] (and make this backend the SMS backend)."""
    return configurer(settings, aliyun.BACKEND_PATH, "ALIYUN_SMS", aliyun_conf)


@pytest.fixture
def backend(fake: FakeAliyun, configure: Callable[..., None]) -> aliyun.SMSBackend:
    configure()
    return aliyun.SMSBackend()
