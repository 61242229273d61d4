"""The Alibaba Cloud SDK, imported lazily, and one Dysmsapi client per worker process.

The SDK (``alibabacloud-dysmsapi20170525`` on ``alibabacloud-tea-openapi`` and
``darabonba-core``) sends its requests with ``requests``; the sessions (the
connection pools) live in a class attribute of ``darabonba.core.DaraCore``,
one per host. :func:`get_client` keeps one client per configuration and
process id (:class:`~django_ciam_otp.backends.sms.sdk_support.ClientCache`),
and a process forked after the parent used the SDK drops the inherited
sessions (:func:`_forget_inherited_sessions`), so a Celery prefork child never
shares its parent's sockets.

Timeouts: ``Config.connect_timeout`` and ``read_timeout`` (milliseconds) go
to ``requests`` as a ``(connect, read)`` pair; :func:`timeouts` splits
``TIMEOUT`` (seconds one API call may take) between them. The SDK retries
only when given ``retry_options`` (this backend gives none: the delivery task
retries), so one call is one request and ``TIMEOUT`` bounds it, DNS aside.
The system check ``ciam_otp.W131`` compares the worst case of one ``send()``
with the delivery task's soft time limit.
"""

from __future__ import annotations

import os
import re
from types import ModuleType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..sdk_support import (
    ClientCache,
    Endpoint,
    import_modules,
    parse_endpoint,
    redact_sdk_loggers,
    split_timeout,
)

PIP_EXTRA = "django-ciam-otp[aliyun]"
#: ``darabonba/core.py``: ``logging.getLogger('darabonba-core')``, which logs the
#: request line (query string included: the number and the code) when
#: ``DEBUG=sdk`` is in the environment.
SDK_LOGGER_NAME = "darabonba-core"

REGION_FORMAT = re.compile(r"^[a-z]{2,}-[a-z0-9]+(?:-[a-z0-9]+)*$")

#: What the SDK's DEBUG records of calls carrying a code or a phone number hold.
REDACTED_MARKERS = ("SendSms", "QuerySendDetails", "PhoneNumber", "TemplateParam")


MODULES = {
    "client": "alibabacloud_dysmsapi20170525.client",
    "models": "alibabacloud_dysmsapi20170525.models",
    "openapi": "alibabacloud_tea_openapi.utils_models",
    "credentials": "alibabacloud_credentials.client",
    "core": "darabonba.core",
}


def import_sdk() -> dict[str, ModuleType]:
    """Import the SDK on first use so the app works without the optional dependency."""
    modules = import_modules(
        MODULES,
        needs="The Alibaba Cloud SMS backend needs the Alibaba Cloud SDK "
        "(alibabacloud-dysmsapi20170525)",
        pip_extra=PIP_EXTRA,
    )
    redact_sdk_loggers([SDK_LOGGER_NAME], REDACTED_MARKERS)
    _watch_forks(modules["core"])
    return modules


# --- endpoint, region, timeouts ---------------------------------------------------------


def resolve_endpoint(endpoint: Any) -> Endpoint | None:
    """``ENDPOINT`` -> scheme and host (``None``: the SDK's endpoint for ``REGION``).

    A host name is reached over HTTPS; an ``http(s)://`` URL as written (tests
    point ``http://127.0.0.1:<port>`` at a local server).
    """
    if endpoint is None or endpoint == "":
        return None
    if not isinstance(endpoint, str):
        raise ImproperlyConfigured(f'ALIYUN_SMS["ENDPOINT"] must be a string, not {endpoint!r}')
    return parse_endpoint(endpoint, "ALIYUN_SMS", 'a host name ("dysmsapi.aliyuncs.com")')


def check_region(region: Any) -> str:
    """``REGION`` as the SDK takes it; raise ``ImproperlyConfigured`` when unusable."""
    if not isinstance(region, str) or not REGION_FORMAT.match(region):
        raise ImproperlyConfigured(
            f'ALIYUN_SMS["REGION"] = {region!r} is not a region id such as "cn-hangzhou"'
        )
    return region


def timeouts(total: Any) -> tuple[float, float]:
    """``TIMEOUT`` (seconds for one API call) -> ``(connect, read)`` seconds."""
    return split_timeout(total, "ALIYUN_SMS")


# --- credentials ---------------------------------------------------------------------------


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

CLIENTS = ClientCache()
#: Drop every cached client (settings changed; tests that change the environment).
forget_clients = CLIENTS.forget
_fork_hook_installed = False


def client_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two clients different (:class:`ClientCache` adds the process id)."""
    return (
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
    return CLIENTS.get(client_key(config), lambda: build_client(config, sdk))


def build_client(config: dict[str, Any], sdk: dict[str, ModuleType]) -> Any:
    """A new Dysmsapi ``Client`` for ``config``."""
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
    return sdk["client"].Client(sdk["openapi"].Config(**options))


def _watch_forks(core: ModuleType) -> None:
    """After a fork, drop the sessions (and their sockets) the child inherited."""
    global _fork_hook_installed
    if _fork_hook_installed or not hasattr(os, "register_at_fork"):
        return
    _fork_hook_installed = True
    os.register_at_fork(after_in_child=lambda: _forget_inherited_sessions(core))


def _forget_inherited_sessions(core: ModuleType) -> None:
    sessions = getattr(getattr(core, "DaraCore", None), "_sessions", None)
    if isinstance(sessions, dict):
        sessions.clear()
    CLIENTS.forget_after_fork()
