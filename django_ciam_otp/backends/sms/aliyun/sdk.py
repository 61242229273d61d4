"""The Alibaba Cloud SDK, imported lazily, and one Dysmsapi client per worker process.

The SDK (``alibabacloud-dysmsapi20170525`` on ``alibabacloud-tea-openapi`` and
``darabonba-core``) sends its requests with ``requests``; the sessions (the
connection pools) live in a class attribute of ``darabonba.core.DaraCore``,
one per host. :func:`get_client` keeps one client per configuration and
process id, and a process forked after the parent used the SDK drops the
inherited sessions (:func:`_forget_inherited_sessions`), so a Celery prefork
child never shares its parent's sockets.

Timeouts: ``Config.connect_timeout`` and ``read_timeout`` (milliseconds) go
to ``requests`` as a ``(connect, read)`` pair; :func:`timeouts` splits
``TIMEOUT`` (seconds one API call may take) between them. The SDK retries
only when given ``retry_options`` (this backend gives none: the delivery task
retries), so one call is one request and ``TIMEOUT`` bounds it, DNS aside.
The system check ``ciam_otp.W131`` compares the worst case of one ``send()``
with the delivery task's soft time limit.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

PIP_EXTRA = "django-ciam-otp[aliyun]"
#: ``darabonba/core.py``: ``logging.getLogger('darabonba-core')``, which logs the
#: request line (query string included: the number and the code) when
#: ``DEBUG=sdk`` is in the environment.
SDK_LOGGER_NAME = "darabonba-core"

REGION_FORMAT = re.compile(r"^[a-z]{2,}-[a-z0-9]+(?:-[a-z0-9]+)*$")
HOST_FORMAT = re.compile(r"^[A-Za-z0-9.-]+(?::\d{1,5})?$")
#: Seconds the connection may take, at most (the rest of ``TIMEOUT`` waits for the answer).
CONNECT_TIMEOUT_MAX = 2.0


class _RedactPhoneTraffic(logging.Filter):
    """Drop the SDK's debug records of calls that carry a code or a phone number."""

    MARKERS = ("SendSms", "QuerySendDetails", "PhoneNumber", "TemplateParam")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record we cannot render cannot leak either
            return True
        return not any(marker in text for marker in self.MARKERS)


MODULES = {
    "client": "alibabacloud_dysmsapi20170525.client",
    "models": "alibabacloud_dysmsapi20170525.models",
    "openapi": "alibabacloud_tea_openapi.utils_models",
    "credentials": "alibabacloud_credentials.client",
    "core": "darabonba.core",
}


def import_sdk() -> dict[str, ModuleType]:
    """Import the SDK on first use so the app works without the optional dependency."""
    try:
        modules = {name: importlib.import_module(path) for name, path in MODULES.items()}
    except ImportError as exc:
        raise ImproperlyConfigured(
            "The Alibaba Cloud SMS backend needs the Alibaba Cloud SDK "
            f'(alibabacloud-dysmsapi20170525); install it with: pip install "{PIP_EXTRA}"'
        ) from exc
    sdk_logger = logging.getLogger(SDK_LOGGER_NAME)
    if not any(isinstance(f, _RedactPhoneTraffic) for f in sdk_logger.filters):
        sdk_logger.addFilter(_RedactPhoneTraffic())
    _watch_forks(modules["core"])
    return modules


# --- endpoint, region, timeouts ---------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str


def resolve_endpoint(endpoint: Any) -> Endpoint | None:
    """``ENDPOINT`` -> scheme and host (``None``: the SDK's endpoint for ``REGION``).

    A host name is reached over HTTPS; an ``http(s)://`` URL as written (tests
    point ``http://127.0.0.1:<port>`` at a local server).
    """
    if endpoint is None or endpoint == "":
        return None
    if not isinstance(endpoint, str):
        raise ImproperlyConfigured(f'ALIYUN_SMS["ENDPOINT"] must be a string, not {endpoint!r}')
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        scheme, rest = "https", endpoint
    scheme = scheme.lower()
    host = rest.rstrip("/")
    if scheme not in ("http", "https"):
        raise ImproperlyConfigured(f"ALIYUN_SMS ENDPOINT has an unknown scheme: {endpoint!r}")
    # A bare word is a misspelt name, not a host: host names have a dot.
    if not host or not HOST_FORMAT.match(host) or (not sep and "." not in host):
        raise ImproperlyConfigured(
            f'ALIYUN_SMS["ENDPOINT"] = {endpoint!r} is neither a host name '
            '("dysmsapi.aliyuncs.com") nor an http(s) URL'
        )
    return Endpoint(scheme, host)


def check_region(region: Any) -> str:
    """``REGION`` as the SDK takes it; raise ``ImproperlyConfigured`` when unusable."""
    if not isinstance(region, str) or not REGION_FORMAT.match(region):
        raise ImproperlyConfigured(
            f'ALIYUN_SMS["REGION"] = {region!r} is not a region id such as "cn-hangzhou"'
        )
    return region


def timeouts(total: Any) -> tuple[float, float]:
    """``TIMEOUT`` (seconds for one API call) -> ``(connect, read)`` seconds."""
    if isinstance(total, bool) or not isinstance(total, int | float) or total <= 0:
        raise ImproperlyConfigured(
            f'ALIYUN_SMS["TIMEOUT"] must be a positive number of seconds, not {total!r}'
        )
    connect = min(CONNECT_TIMEOUT_MAX, total / 2)
    return connect, total - connect


# --- credentials ---------------------------------------------------------------------------

CREDENTIAL_MODES = ("static", "default")


def credential_mode(config: dict[str, Any]) -> str:
    """``"static"``, ``"default"`` or a dotted path, from ``CREDENTIALS`` (``None``: decide).

    ``None`` means static keys when ``ACCESS_KEY_ID`` or ``ACCESS_KEY_SECRET``
    is set, else the SDK's default chain, as boto3 does for AWS.
    """
    mode = config.get("CREDENTIALS")
    if mode is None:
        keys = config.get("ACCESS_KEY_ID") or config.get("ACCESS_KEY_SECRET")
        return "static" if keys else "default"
    return str(mode)


def credential_options(config: dict[str, Any], sdk: dict[str, ModuleType]) -> dict[str, Any]:
    """The ``Config`` keyword arguments that carry the credentials.

    ``"default"`` is ``alibabacloud_credentials``' ``DefaultCredentialsProvider``
    (a dependency of the SDK, nothing more to install): environment
    (``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` / ``_SECURITY_TOKEN``), an
    OIDC role (ACK RRSA), the profile files, then the ECS instance RAM role.
    A dotted path names a callable taking no argument and returning a
    credentials ``Client`` or a credentials provider (STS, RAM role ARN...);
    role credentials refresh themselves before they expire.
    """
    mode = credential_mode(config)
    if mode == "static":
        return {
            "access_key_id": config.get("ACCESS_KEY_ID"),
            "access_key_secret": config.get("ACCESS_KEY_SECRET"),
        }
    client_class = sdk["credentials"].Client
    if mode == "default":
        return {"credential": client_class()}
    made = import_string(mode)()
    if not hasattr(made, "get_credential") and hasattr(made, "get_credentials"):
        made = client_class(provider=made)  # an ICredentialsProvider
    return {"credential": made}


# --- one client per process ---------------------------------------------------------------

_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()
_fork_hook_installed = False


def client_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two clients different, and this process's id."""
    return (
        os.getpid(),
        config.get("CREDENTIALS"),
        config.get("ACCESS_KEY_ID"),
        config.get("ACCESS_KEY_SECRET"),
        config.get("REGION"),
        config.get("ENDPOINT"),
        config.get("TIMEOUT"),
    )


def get_client(config: dict[str, Any], sdk: dict[str, ModuleType]) -> Any:
    """The Dysmsapi ``Client`` of this process for ``config``, built on first use.

    Raises ``ImproperlyConfigured`` for a bad region, endpoint or timeout, and
    whatever a credential factory raises; neither is cached.
    """
    key = client_key(config)
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
        region = check_region(config.get("REGION"))
        endpoint = resolve_endpoint(config.get("ENDPOINT"))
        connect, read = timeouts(config.get("TIMEOUT"))
        options: dict[str, Any] = {
            "region_id": region,
            "connect_timeout": round(connect * 1000),  # milliseconds
            "read_timeout": round(read * 1000),
            **credential_options(config, sdk),
        }
        if endpoint is not None:
            options.update(endpoint=endpoint.host, protocol=endpoint.scheme)
        client = sdk["client"].Client(sdk["openapi"].Config(**options))
        pid = key[0]
        for stale in [k for k in _clients if k[0] != pid]:  # inherited from the parent
            del _clients[stale]
        _clients[key] = client
        return client


def forget_clients(**kwargs: Any) -> None:
    """Drop every cached client (settings changed; tests that change the environment)."""
    with _lock:
        _clients.clear()


def _watch_forks(core: ModuleType) -> None:
    """After a fork, drop the sessions (and their sockets) the child inherited."""
    global _fork_hook_installed
    if _fork_hook_installed or not hasattr(os, "register_at_fork"):
        return
    _fork_hook_installed = True
    os.register_at_fork(after_in_child=lambda: _forget_inherited_sessions(core))


def _forget_inherited_sessions(core: ModuleType) -> None:
    global _lock
    sessions = getattr(getattr(core, "DaraCore", None), "_sessions", None)
    if isinstance(sessions, dict):
        sessions.clear()
    _clients.clear()
    _lock = threading.Lock()  # another thread of the parent may have held it


setting_changed.connect(forget_clients)
