"""What the provider backends' conftests share: no proxies, fresh clients, a settings helper.

Each provider's ``conftest.py`` declares its fixtures (pytest finds them
there) and builds them from these, so the four cannot drift apart on how a
test isolates the SDK's client cache or sets ``CIAM_OTP``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def clear_proxies(monkeypatch: pytest.MonkeyPatch, *extra: str) -> None:
    """Unset the proxy variables (both cases) and ``extra``: the fakes are on loopback."""
    for name in (*PROXY_VARIABLES, *extra):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def fresh_clients(sdk: ModuleType) -> Iterator[None]:
    """Empty ``sdk``'s client cache around a test: each test builds its own clients."""
    sdk.forget_clients()
    yield
    sdk.forget_clients()


def configurer(
    settings: Any, backend_path: str, settings_key: str, conf: Callable[..., dict[str, Any]]
) -> Callable[..., None]:
    """``configure(**overrides)``: this backend as the SMS backend, ``conf(**overrides)`` its dict.

    Through the ``settings`` fixture, so ``setting_changed`` reloads
    ``CIAM_OTP`` and empties the client caches as in production.
    """

    def apply(**overrides: Any) -> None:
        settings.CIAM_OTP = {
            **settings.CIAM_OTP,
            "SMS_BACKEND": backend_path,
            settings_key: conf(**overrides),
        }

    return apply
