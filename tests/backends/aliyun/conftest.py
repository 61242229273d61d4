"""Fixtures of the Alibaba Cloud SMS tests: the fake at the HTTP layer, settings, a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_ciam_otp.backends.sms import aliyun
from django_ciam_otp.backends.sms.aliyun import sdk

from .fake import FakeAliyun, aliyun_conf, serve


@pytest.fixture
def fake() -> Iterator[FakeAliyun]:
    yield from serve()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads *_PROXY itself; the tests' requests never leave the process."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "DEBUG"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test builds its own SDK clients (they are cached per process)."""
    sdk.forget_clients()
    yield
    sdk.forget_clients()


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    """Set CIAM_OTP["ALIYUN_SMS"] (and make this backend the SMS backend)."""

    def apply(**overrides: Any) -> None:
        settings.CIAM_OTP = {
            **settings.CIAM_OTP,
            "SMS_BACKEND": aliyun.BACKEND_PATH,
            "ALIYUN_SMS": aliyun_conf(**overrides),
        }

    return apply


@pytest.fixture
def backend(fake: FakeAliyun, configure: Callable[..., None]) -> aliyun.SMSBackend:
    configure()
    return aliyun.SMSBackend()
