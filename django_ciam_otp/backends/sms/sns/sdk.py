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

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ....conf import SETTINGS_NAME
from ..sdk_support import ClientCache, import_modules, redact_sdk_loggers, split_timeout

PIP_EXTRA = "django-ciam-otp[sns]"
#: The SDK's part of the User-Agent, so AWS-side logs (CloudTrail) tell these calls apart.
USER_AGENT_EXTRA = "django-ciam-otp"


@dataclass(frozen=True)
class SDK:
    """The parts of boto3 and botocore the backend uses (typed ``Any``: boto3 ships no types)."""

    session: ModuleType  # boto3.session
    config: ModuleType  # botocore.config
    exceptions: ModuleType  # botocore.exceptions


#: What botocore's DEBUG records that carry a code or a phone number hold.
#: ``botocore.endpoint`` logs each request's parameters (``Making request for
#: OperationModel(name=Publish) with params: {...}``: the text with the code,
#: and the number), and ``botocore.parsers`` each answer's body, where an SNS
#: error may quote the number ("Invalid parameter: PhoneNumber Reason: +1...").
REDACTED_MARKERS = (
    "OperationModel(name=Publish)",
    "OperationModel(name=CheckIfPhoneNumberIsOptedOut)",
    "sns.amazonaws.com/doc/",  # the XML namespace of every SNS answer
)
#: The loggers whose records can hold a request or answer body (filters do not propagate).
REDACTED_LOGGERS = ("botocore.endpoint", "botocore.parsers")

MODULES = {
    "session": "boto3.session",
    "config": "botocore.config",
    "exceptions": "botocore.exceptions",
}


def import_sdk() -> SDK:
    """Import boto3 on first use so the app works without the optional dependency."""
    sdk = SDK(
        **import_modules(MODULES, needs="The AWS SNS SMS backend needs boto3", pip_extra=PIP_EXTRA)
    )
    redact_sdk_loggers(REDACTED_LOGGERS, REDACTED_MARKERS)
    return sdk


def timeouts(total: Any) -> tuple[float, float]:
    """``TIMEOUT`` (seconds for one API call) -> ``(connect, read)`` for botocore."""
    return split_timeout(total, "SNS_SMS")


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

#: Emptied when ``CIAM_OTP`` changes only: other settings (``TEMPLATES``...)
#: leave the clients, which depend on ``CIAM_OTP`` and the environment only.
CLIENTS = ClientCache(setting=SETTINGS_NAME)
#: Drop every cached client: ``CIAM_OTP`` changed, or a caller asks (no ``setting``).
forget_clients = CLIENTS.forget


def client_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two clients different (:class:`ClientCache` adds the process id)."""
    return (
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
    return CLIENTS.get(client_key(config), lambda: build_client(config, sdk))
