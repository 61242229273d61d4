"""boto3, imported lazily, and one SNS client per worker process and configuration.

A botocore client holds a connection pool and its resolved credentials, and
building one reads the shared config files and may ask the instance metadata
service for a role: per message that is a TLS handshake and possibly an IMDS
round trip. :func:`get_client` keeps one per configuration *and process id*,
so a Celery prefork child builds its own instead of sharing the parent's
sockets. Clients are thread-safe; the ``boto3.session.Session`` each is built
from is not, so it is built under a lock and then dropped.

Timeouts and retries: botocore's own retries are off (``total_max_attempts``
1): the delivery task retries with backoff and keeps the bookkeeping, and one
call is one request that ``TIMEOUT`` bounds, split by :func:`timeouts` into
connect and read timeouts (DNS resolution and credential lookups aside). The
system check ``ciam_otp.W141`` compares the worst case of one ``send()`` with
the delivery task's soft time limit, which interrupts anything longer.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ....conf import SETTINGS_NAME

PIP_EXTRA = "django-ciam-otp[sns]"
#: Seconds the connection may take, at most (the rest of ``TIMEOUT`` waits for the answer).
CONNECT_TIMEOUT_MAX = 2.0
#: The SDK's part of the User-Agent, so AWS-side logs (CloudTrail) tell these calls apart.
USER_AGENT_EXTRA = "django-ciam-otp"


@dataclass(frozen=True)
class SDK:
    """The parts of boto3 and botocore the backend uses (typed ``Any``: boto3 ships no types)."""

    session: ModuleType  # boto3.session
    config: ModuleType  # botocore.config
    exceptions: ModuleType  # botocore.exceptions


class _RedactPhoneTraffic(logging.Filter):
    """Drop botocore's debug records that carry a code or a phone number.

    ``botocore.endpoint`` logs each request's parameters (``Making request for
    OperationModel(name=Publish) with params: {...}``: the text with the code,
    and the number), and ``botocore.parsers`` each answer's body, where an SNS
    error may quote the number ("Invalid parameter: PhoneNumber Reason: +1...").
    """

    MARKERS = (
        "OperationModel(name=Publish)",
        "OperationModel(name=CheckIfPhoneNumberIsOptedOut)",
        "sns.amazonaws.com/doc/",  # the XML namespace of every SNS answer
    )

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record we cannot render cannot leak either
            return True
        return not any(marker in text for marker in self.MARKERS)


#: The loggers whose records can hold a request or answer body (filters do not propagate).
REDACTED_LOGGERS = ("botocore.endpoint", "botocore.parsers")


def import_sdk() -> SDK:
    """Import boto3 on first use so the app works without the optional dependency."""
    try:
        sdk = SDK(
            session=importlib.import_module("boto3.session"),
            config=importlib.import_module("botocore.config"),
            exceptions=importlib.import_module("botocore.exceptions"),
        )
    except ImportError as exc:
        raise ImproperlyConfigured(
            f'The AWS SNS SMS backend needs boto3; install it with: pip install "{PIP_EXTRA}"'
        ) from exc
    for name in REDACTED_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactPhoneTraffic) for f in sdk_logger.filters):
            sdk_logger.addFilter(_RedactPhoneTraffic())
    return sdk


def timeouts(total: Any) -> tuple[float, float]:
    """``TIMEOUT`` (seconds for one API call) -> ``(connect, read)`` for botocore."""
    if isinstance(total, bool) or not isinstance(total, int | float) or total <= 0:
        raise ImproperlyConfigured(
            f'SNS_SMS["TIMEOUT"] must be a positive number of seconds, not {total!r}'
        )
    connect = min(CONNECT_TIMEOUT_MAX, total / 2)
    return connect, total - connect


def session_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``boto3.session.Session``: what is unset is left to boto3's chain."""
    names = {
        "ACCESS_KEY_ID": "aws_access_key_id",
        "SECRET_ACCESS_KEY": "aws_secret_access_key",
        "SESSION_TOKEN": "aws_session_token",
        "REGION": "region_name",
        "PROFILE": "profile_name",
    }
    return {argument: config[key] for key, argument in names.items() if config.get(key)}


def resolve_region(config: dict[str, Any], sdk: SDK) -> str | None:
    """The region a client would use: ``REGION``, else the environment's or the profile's.

    Reads environment variables and the shared config files only, no network.
    ``ProfileNotFound`` (botocore) propagates.
    """
    arguments = {k: v for k, v in session_arguments(config).items() if k != "aws_session_token"}
    region = sdk.session.Session(**arguments).region_name
    return str(region) if region else None


# --- one client per process ---------------------------------------------------------------

_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def client_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two clients different, and this process's id."""
    return (
        os.getpid(),
        config.get("REGION"),
        config.get("ACCESS_KEY_ID"),
        config.get("SECRET_ACCESS_KEY"),
        config.get("SESSION_TOKEN"),
        config.get("PROFILE"),
        config.get("ENDPOINT_URL"),
        config.get("TIMEOUT"),
    )


def build_client(config: dict[str, Any], sdk: SDK) -> Any:
    """A new SNS client for ``config``; botocore's exceptions propagate (no region...)."""
    connect, read = timeouts(config.get("TIMEOUT"))
    client_config = sdk.config.Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": 1},
        user_agent_extra=USER_AGENT_EXTRA,
    )
    session = sdk.session.Session(**session_arguments(config))
    return session.client(
        "sns", endpoint_url=config.get("ENDPOINT_URL") or None, config=client_config
    )


def get_client(config: dict[str, Any], sdk: SDK) -> Any:
    """The SNS client of this process for ``config``, built on first use.

    A configuration no client can be built with (no region, an unknown
    profile, half a key pair, a bad endpoint URL) raises; nothing is cached then.
    """
    key = client_key(config)
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
        client = build_client(config, sdk)
        pid = key[0]
        for stale in [k for k in _clients if k[0] != pid]:  # inherited from the parent
            del _clients[stale]
        _clients[key] = client
        return client


def forget_clients(setting: str | None = None, **kwargs: Any) -> None:
    """Drop every cached client: ``CIAM_OTP`` changed, or a caller asks (no ``setting``).

    Other settings (``TEMPLATES``...) leave them: a client depends on
    ``CIAM_OTP`` and the environment only.
    """
    if setting not in (None, SETTINGS_NAME):
        return
    with _lock:
        _clients.clear()


setting_changed.connect(forget_clients)
