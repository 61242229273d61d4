"""Which backend classes the site configured, and building one with its options.

The core reaches providers only through here and the dotted paths in
``CIAM_OTP``: it builds a backend with :func:`get_backend`, asks each
configured class for its system checks (``BaseBackend.check``) and for the
``CIAM_OTP`` key holding its settings (``BaseBackend.settings_key``), and so
names no provider itself.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from django.utils.module_loading import import_string

from ..conf import otp_settings
from ..models import Channel
from .base import BaseBackend

#: Subpackages whose modules are the backends shipped with the app, one class each.
SHIPPED_PACKAGES = ("sms", "email")
#: The class name a backend module exports, per subpackage (Django's own naming).
EXPORTED_NAMES = ("SMSBackend", "EmailBackend")


def setting_name(channel: str) -> str:
    """The ``CIAM_OTP`` key holding the backend path of ``channel``."""
    return "SMS_BACKEND" if channel == Channel.SMS else "EMAIL_BACKEND"


def backend_class(channel: str) -> Any:
    """The configured backend class of ``channel`` (``ImportError`` for a bad path)."""
    return otp_settings.import_string(setting_name(channel))


def get_backend(channel: str, **kwargs: Any) -> BaseBackend:
    """A new backend for ``channel``; ``kwargs`` override its settings, as in django-anymail.

    For SMS, the first of ``SMS_BACKENDS`` (deliveries go through
    :mod:`.routing`, which tries them in turn). Built for each message, so the
    constructor reads current settings and stays cheap.
    """
    if channel == Channel.SMS:
        from .routing import sms_backends

        entry = sms_backends()[0]
        return entry.backend_class()(name=entry.name, **{**entry.options, **kwargs})
    backend: BaseBackend = backend_class(channel)(**kwargs)
    return backend


def configured_backends() -> list[type[BaseBackend]]:
    """The site's backend classes (SMS, then email), once each.

    A path that cannot be imported is left out (``ciam_otp.E003`` reports it),
    and so is a class that does not derive from ``BaseBackend`` (it has no checks).
    """
    from .routing import sms_backends

    found: list[type[BaseBackend]] = []
    candidates: list[Any] = []
    try:
        candidates += [entry.path for entry in sms_backends()]
    except Exception:  # noqa: BLE001 - E020 reports a malformed SMS_BACKENDS
        candidates.append(lambda: backend_class(Channel.SMS))
    candidates.append(lambda: backend_class(Channel.EMAIL))
    for candidate in candidates:
        try:
            cls = import_string(candidate) if isinstance(candidate, str) else candidate()
        except Exception:  # noqa: BLE001, S112 - E003 reports a path that cannot be imported
            continue
        if isinstance(cls, type) and issubclass(cls, BaseBackend) and cls not in found:
            found.append(cls)
    return found


@functools.cache
def shipped_backends() -> tuple[type[BaseBackend], ...]:
    """Every backend class shipped with the app, found by walking its backend packages.

    Importing them imports no provider SDK (each imports its own on first use).
    """
    found: list[type[BaseBackend]] = []
    for name in SHIPPED_PACKAGES:
        package = importlib.import_module(f"{__package__}.{name}")
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for exported in EXPORTED_NAMES:
                cls = getattr(module, exported, None)
                if isinstance(cls, type) and issubclass(cls, BaseBackend):
                    found.append(cls)
    return tuple(found)


def backend_settings_keys() -> set[str]:
    """``CIAM_OTP`` keys that hold a backend's settings: the shipped backends' and the site's.

    The shipped ones count even when another backend is configured, so a
    settings file shared by environments (a real provider in production, the
    console in development) is not an unknown key where it is unused.
    """
    classes = [*shipped_backends(), *configured_backends()]
    return {cls.settings_key for cls in classes if cls.settings_key}
