"""What every provider's ``sdk`` module needs from its SDK: a lazy import, one client, quiet logs.

The provider SDKs are optional dependencies, so each backend imports its SDK
on first use (:func:`import_modules`) and a missing one is a configuration
error naming the pip extra, as django-anymail does. Building a client opens a
connection pool (and may look up credentials), so each provider keeps one per
configuration and process in a :class:`ClientCache`. And the SDKs log their
requests at DEBUG, bodies included, which carry the code and the phone number:
:func:`redact_sdk_loggers` drops those records; and their error messages may
quote the number, which :func:`scrub` masks before a log line or a token's
failure reason shows it. One copy of each rule here,
so a fix to one (a fork, a settings change, a leak) reaches every provider.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import phonenumbers
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ...crypto import mask_recipient
from ..base import OTPMessage


def import_modules(
    modules: Mapping[str, str], *, needs: str, pip_extra: str
) -> dict[str, ModuleType]:
    """``{name: module}`` for ``{name: dotted path}``, imported now, in order.

    ``ImproperlyConfigured`` when one is missing, reading "``needs``; install
    it with: pip install "``pip_extra``"", so the site is told what to install
    rather than shown an ``ImportError`` from deep inside a send.
    """
    try:
        return {name: importlib.import_module(path) for name, path in modules.items()}
    except ImportError as exc:
        raise ImproperlyConfigured(f'{needs}; install it with: pip install "{pip_extra}"') from exc


#: Seconds the connection may take, at most (the rest of ``TIMEOUT`` waits for the answer).
CONNECT_TIMEOUT_MAX = 2.0


def split_timeout(total: Any, settings_key: str) -> tuple[float, float]:
    """``TIMEOUT`` (seconds one API call may take) -> ``(connect, read)`` seconds.

    The SDKs time connecting and reading separately; connecting gets half,
    at most :data:`CONNECT_TIMEOUT_MAX`, so the sum is ``TIMEOUT`` and the
    worst case of a call is what the time-budget checks count.
    ``ImproperlyConfigured`` unless ``total`` is a positive number.
    """
    if isinstance(total, bool) or not isinstance(total, int | float) or total <= 0:
        raise ImproperlyConfigured(
            f'{settings_key}["TIMEOUT"] must be a positive number of seconds, not {total!r}'
        )
    connect = min(CONNECT_TIMEOUT_MAX, total / 2)
    return connect, total - connect


#: ``CREDENTIALS`` values besides a dotted path, for the SDKs with a default chain.
CREDENTIAL_MODES = ("static", "default")


def check_credential_mode(mode: str, settings_key: str) -> str:
    """``mode`` (from ``CREDENTIALS``) if it is one of :data:`CREDENTIAL_MODES` or a dotted path.

    Checked when the backend is built, so a typo ("defualt") fails once, at
    start-up, instead of on every message as an import error.
    """
    if mode not in CREDENTIAL_MODES and "." not in mode:
        raise ImproperlyConfigured(
            f'{settings_key}["CREDENTIALS"] = {mode!r}: use None, "static", "default" '
            "or the dotted path of a credential factory"
        )
    return mode


class RedactPhoneTraffic(logging.Filter):
    """Drop an SDK's debug records of calls that carry a code or a phone number.

    A record is dropped when its text holds one of ``markers`` (an action
    name, a parameter name, a namespace of the provider's answers): a
    whole-record match, because the SDKs log bodies in their own formats and a
    partial scrub would miss a spelling. A record that cannot be rendered is
    let through: it cannot leak either.
    """

    def __init__(self, markers: Iterable[str]) -> None:
        super().__init__()
        self.markers = tuple(markers)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record we cannot render cannot leak either
            return True
        return not any(marker in text for marker in self.markers)


def redact_sdk_loggers(logger_names: Iterable[str], markers: Iterable[str]) -> None:
    """Put a :class:`RedactPhoneTraffic` on each logger, once however often this runs.

    On each logger itself, not a parent: filters do not apply to records that
    propagate from a child logger.
    """
    wanted = tuple(markers)
    for name in logger_names:
        sdk_logger = logging.getLogger(name)
        if not any(
            isinstance(f, RedactPhoneTraffic) and f.markers == wanted for f in sdk_logger.filters
        ):
            sdk_logger.addFilter(RedactPhoneTraffic(wanted))


class ClientCache:
    """One SDK client per configuration *and process id*, built on first use.

    A client holds a connection pool, so building one per message meant a TCP
    and TLS handshake for every SMS. Keyed by the process id too: a Celery
    prefork child, forked after the parent may have built one, builds its own
    instead of sharing the parent's sockets, and drops the inherited ones.
    Emptied when settings change (``setting_changed``), so ``override_settings``
    and the ``settings`` fixture get a client for the new values; with
    ``setting`` given, only when that setting changes.
    """

    def __init__(self, *, setting: str | None = None) -> None:
        #: ``(pid, *settings key) -> client``; read by tests, written under :attr:`lock`.
        self.clients: dict[tuple[Any, ...], Any] = {}
        self.lock = threading.Lock()
        self.setting = setting
        setting_changed.connect(self.forget)

    def get(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The client for ``key`` (what makes two clients differ), ``build()`` on first use.

        Whatever ``build`` raises propagates and nothing is cached, so a
        configuration fixed later is not shadowed by its failure.
        """
        full_key = (os.getpid(), *key)
        client = self.clients.get(full_key)
        if client is not None:
            return client
        with self.lock:
            client = self.clients.get(full_key)
            if client is not None:
                return client
            client = build()
            pid = full_key[0]
            for stale in [k for k in self.clients if k[0] != pid]:  # inherited from the parent
                del self.clients[stale]
            self.clients[full_key] = client
            return client

    def forget(self, setting: str | None = None, **kwargs: Any) -> None:
        """Drop every client: settings changed, or a caller asks (no ``setting``).

        A ``setting_changed`` receiver; with :attr:`setting` set, other settings
        (``TEMPLATES``...) leave the clients, which depend on that one only.
        """
        if self.setting is not None and setting not in (None, self.setting):
            return
        with self.lock:
            self.clients.clear()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's clients, and a lock it may have held."""
        self.clients.clear()
        self.lock = threading.Lock()  # another thread of the parent may have held it


def scrub(text: str, message: OTPMessage, *, significant: bool = False) -> str:
    """``text`` without the message's code or phone number, in any common spelling.

    The spellings: E.164, without its ``+``, and the national number (as an
    integer, or with ``significant`` its national significant number, which
    keeps an Italian leading zero); the longest first, so a shorter one never
    leaves part of a longer one. Forms under five digits are left alone: they
    would mask unrelated numbers in the text.
    """
    masked = mask_recipient(message.recipient)
    phone_forms = {message.recipient, message.recipient.lstrip("+")}
    try:
        parsed = phonenumbers.parse(message.recipient)
        if significant:
            phone_forms.add(phonenumbers.national_significant_number(parsed))
        else:
            phone_forms.add(str(parsed.national_number))
    except phonenumbers.NumberParseException:
        pass  # the other spellings are still scrubbed
    for form in sorted(phone_forms, key=len, reverse=True):
        if len(form) >= 5:
            text = text.replace(form, masked)
    if message.code:
        text = text.replace(message.code, "[code]")
    return text


# --- endpoints ---------------------------------------------------------------------------

#: A host name, optionally with a port (tests point backends at a local fake).
HOST_FORMAT = re.compile(r"^[A-Za-z0-9.-]+(?::\d{1,5})?$")


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str


def parse_endpoint(endpoint: str, settings_key: str, expected: str) -> Endpoint:
    """A host name (reached over HTTPS) or an ``http(s)://`` URL -> scheme and host.

    ``ImproperlyConfigured`` otherwise, naming ``CIAM_OTP[settings_key]["ENDPOINT"]``
    and ``expected`` (what the backend accepts). A bare word is a misspelt name,
    not a host: host names have a dot.
    """
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        scheme, rest = "https", endpoint
    scheme = scheme.lower()
    host = rest.rstrip("/")
    if scheme not in ("http", "https"):
        raise ImproperlyConfigured(f"{settings_key} ENDPOINT has an unknown scheme: {endpoint!r}")
    if not host or not HOST_FORMAT.match(host) or (not sep and "." not in host):
        raise ImproperlyConfigured(
            f'{settings_key}["ENDPOINT"] = {endpoint!r} is neither {expected} nor an http(s) URL'
        )
    return Endpoint(scheme, host)
