"""Fixtures of the Tencent Cloud SMS tests: the fake server, settings, a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_ciam_otp.backends.sms import tencent
from django_ciam_otp.backends.sms.tencent import sdk

from .fake import FakeTencent, serve, tencent_conf


@pytest.fixture
def fake() -> Iterator[FakeTencent]:
    yield from serve()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK and requests honour *_PROXY; the fake is on loopback."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
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
    """Set CIAM_OTP["TENCENT_SMS"] (conf.py reloads on setting_changed)."""

    def apply(**overrides: Any) -> None:
        settings.CIAM_OTP = {
            **settings.CIAM_OTP,
            "SMS_BACKEND": tencent.BACKEND_PATH,
            "TENCENT_SMS": tencent_conf(**overrides),
        }

    return apply


@pytest.fixture
def backend(fake: FakeTencent, configure: Callable[..., None]) -> tencent.SMSBackend:
    configure(ENDPOINT=fake.url)
    return tencent.SMSBackend()
