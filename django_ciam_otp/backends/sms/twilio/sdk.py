"""Twilio's Python SDK, imported on first use, and one REST client per worker process.

The SDK is an optional dependency (``pip install "django-ciam-otp[twilio]"``),
so nothing here imports it at module level: the app, its checks and its docs
build run without it, and a site that uses another provider never loads it.

Things the SDK does that a caller must know:

* ``Client`` falls back to ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``,
  ``TWILIO_REGION`` and ``TWILIO_EDGE`` from the environment for anything passed
  as ``None``. The client is built with an environment of its own, so the
  settings are the only source: a variable left in a container cannot silently
  send through another account or region.
* ``TwilioHttpClient`` passes its one ``timeout`` to ``requests`` as is, which
  bounds the connection and then, again, the wait for the answer: one call can
  take up to twice ``TIMEOUT`` (DNS resolution aside). It makes one request per
  call (no retries of its own), so the delivery task's retries are the only ones.
* A refused request raises ``TwilioRestException`` (or ``TwilioServiceException``
  for RFC 9457 answers) carrying the HTTP status and Twilio's code, but not the
  answer's headers; ``Retry-After`` is noted here by a ``requests`` response
  hook, per thread, for the backend to read (:func:`last_retry_after`).
"""

from __future__ import annotations

import datetime as dt
import threading
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..sdk_support import ClientCache, import_modules

PIP_EXTRA = "django-ciam-otp[twilio]"


MODULES = {
    "rest": "twilio.rest",
    "http_client": "twilio.http.http_client",
    "exceptions": "twilio.base.exceptions",
    "request_validator": "twilio.request_validator",
}


def import_sdk() -> dict[str, ModuleType]:
    """The SDK's modules; ``ImproperlyConfigured`` naming the pip extra when it is missing."""
    return import_modules(
        MODULES, needs="The Twilio SMS backend needs Twilio's Python SDK", pip_extra=PIP_EXTRA
    )


def check_timeout(value: Any) -> float:
    """``TIMEOUT`` as seconds; ``ImproperlyConfigured`` unless a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ImproperlyConfigured(
            f'TWILIO_SMS["TIMEOUT"] must be a positive number of seconds, not {value!r}'
        )
    return float(value)


# --- Retry-After, which TwilioRestException does not carry -----------------------------

_answers = threading.local()


def _note_retry_after(response: Any, *args: Any, **kwargs: Any) -> Any:
    """A ``requests`` response hook: keep this thread's last ``Retry-After``."""
    _answers.retry_after = response.headers.get("Retry-After")
    return response


def forget_retry_after() -> None:
    """Called before each API call, so an old answer's header is never read for a new one."""
    _answers.retry_after = None


def last_retry_after(now: dt.datetime | None = None) -> float | None:
    """Seconds the last answer on this thread asked to wait (``Retry-After``), if it said.

    The header is either seconds or an HTTP date (RFC 9110, 10.2.3).
    """
    value = getattr(_answers, "retry_after", None)
    if not value:
        return None
    value = str(value).strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


# --- one client per process ----------------------------------------------------------------

CLIENTS = ClientCache()
#: Drop every cached client (settings changed; tests).
forget_clients = CLIENTS.forget


def credentials(config: dict[str, Any]) -> tuple[str, str]:
    """``(username, password)`` for the API: the API key when one is set, else the account.

    ``ImproperlyConfigured`` when neither is complete, naming what is missing
    (never a value).
    """
    account_sid = config.get("ACCOUNT_SID")
    if not account_sid:
        raise ImproperlyConfigured('TWILIO_SMS["ACCOUNT_SID"] is not set')
    key_sid, key_secret = config.get("API_KEY_SID"), config.get("API_KEY_SECRET")
    if key_sid or key_secret:
        if not (key_sid and key_secret):
            missing = "API_KEY_SECRET" if key_sid else "API_KEY_SID"
            raise ImproperlyConfigured(f'TWILIO_SMS["{missing}"] is not set (half an API key)')
        return str(key_sid), str(key_secret)
    if not config.get("AUTH_TOKEN"):
        raise ImproperlyConfigured(
            "TWILIO_SMS needs AUTH_TOKEN, or API_KEY_SID and API_KEY_SECRET, to call the API"
        )
    return str(account_sid), str(config["AUTH_TOKEN"])


def client_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two clients different (:class:`ClientCache` adds the process id)."""
    return (
        config.get("ACCOUNT_SID"),
        config.get("AUTH_TOKEN"),
        config.get("API_KEY_SID"),
        config.get("API_KEY_SECRET"),
        config.get("REGION"),
        config.get("EDGE"),
        config.get("TIMEOUT"),
    )


def get_client(config: dict[str, Any], sdk: dict[str, ModuleType]) -> Any:
    """The ``twilio.rest.Client`` of this process for ``config``, built on first use.

    One per process and configuration, so its ``requests`` session (and the
    TLS connection in it) is reused from one message to the next; a forked
    worker drops the ones it inherited.
    """
    return CLIENTS.get(client_key(config), lambda: build_client(config, sdk))


def build_client(config: dict[str, Any], sdk: dict[str, ModuleType]) -> Any:
    """A new ``twilio.rest.Client`` for ``config``, reading nothing from the environment."""
    username, password = credentials(config)
    http_client = sdk["http_client"].TwilioHttpClient(
        timeout=check_timeout(config.get("TIMEOUT")),
        request_hooks={"response": [_note_retry_after]},
    )
    region, edge = config.get("REGION") or "", config.get("EDGE") or ""
    return sdk["rest"].Client(
        username,
        password,
        account_sid=str(config["ACCOUNT_SID"]),
        region=region or None,
        edge=edge or None,
        http_client=http_client,
        # Not os.environ: see the module's docstring. Non-empty, or the SDK
        # would fall back to os.environ after all.
        environment={"TWILIO_REGION": region, "TWILIO_EDGE": edge},
        user_agent_extensions=["django-ciam-otp"],
    )
