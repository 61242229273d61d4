"""OpenTelemetry spans for send, deliver and verify, free when they are off.

:func:`span` is the only way the package makes a span, so what may go into
one is decided here: attribute names come from :data:`ATTRIBUTES` (each
written ``ciam_otp.<name>``), which holds no name for a code, a recipient or
a secret, and any other name is refused. A trace leaves the site for a
collector and a vendor; a code or an address must not go with it.

Whether spans are made is decided once per process (``CIAM_OTP["TRACING"]``
and whether opentelemetry-api can be imported) and again after
``setting_changed``. Without an SDK configured by the site, opentelemetry-api
makes non-recording spans itself, at the cost of a few calls.

A refusal (an :class:`~django_ciam_otp.exceptions.OTPError`) is an answer,
not a failure of the service: its span ends with ``ciam_otp.outcome`` set to
the public error code and its status left unset. Any other exception sets
the status to ``ERROR`` and is recorded as an ``exception`` event with its
type and stack frames, not its message (which may quote an address).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

from django.core.signals import setting_changed

from .conf import SETTINGS_NAME, otp_settings
from .exceptions import OTPError

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["ATTRIBUTES", "Span", "annotate", "annotate_current", "decide", "enabled", "span"]

#: The attributes a span may carry (as ``ciam_otp.<name>``): what happened and
#: to which configured thing, never to whom.
ATTRIBUTES = frozenset(
    {
        "channel",  # sms | email
        "usage",  # login | signup | update_userinfo | reset_password
        "client_id",  # the API client's configured id
        "auth_source_id",
        "token_id",  # the token row's primary key (not the otp_token)
        "backend",  # the configured backend's name
        "attempt",  # a delivery's try, from 0
        "outcome",  # queued, suppressed, test, verified, sent, …, or the public error code
    }
)
PREFIX = "ciam_otp."
TRACER_NAME = "django_ciam_otp"

Attribute = str | bool | int | float


class Span(Protocol):
    """What :func:`span` yields: an OpenTelemetry span, or a stand-in that ignores everything."""

    def set_attribute(self, key: str, value: Attribute) -> None: ...

    def is_recording(self) -> bool: ...


class _NoSpan:
    def set_attribute(self, key: str, value: Attribute) -> None:
        return None

    def is_recording(self) -> bool:
        return False


_NO_SPAN = nullcontext(_NoSpan())
_decided = False
_tracer: Tracer | None = None


def _decide() -> Tracer | None:
    global _decided, _tracer
    tracer = None
    if otp_settings.TRACING:
        try:
            from opentelemetry import trace
        except ImportError:
            pass
        else:
            from . import __version__

            # A proxy until the site sets its tracer provider, then the real one.
            tracer = trace.get_tracer(TRACER_NAME, __version__)
    _tracer, _decided = tracer, True
    return tracer


def decide() -> bool:
    """Decide again now (after a test changed what the decision reads)."""
    return _decide() is not None


def enabled() -> bool:
    """Whether :func:`span` makes OpenTelemetry spans (deciding on the first question)."""
    return (_tracer if _decided else _decide()) is not None


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _decided
    if setting == SETTINGS_NAME:
        _decided = False


setting_changed.connect(_forget)


def _check(attributes: dict[str, Attribute | None]) -> None:
    """Refuse a name outside :data:`ATTRIBUTES`, tracing on or off (so tests catch it)."""
    if not attributes.keys() <= ATTRIBUTES:
        unknown = sorted(attributes.keys() - ATTRIBUTES)
        raise ValueError(
            f"span attributes {unknown} are not among {sorted(ATTRIBUTES)}: "
            "codes, recipients and secrets never go into a span"
        )


def _named(attributes: dict[str, Attribute | None]) -> dict[str, Attribute]:
    """``{"ciam_otp.<name>": value}``, ``None`` values left out."""
    return {PREFIX + key: value for key, value in attributes.items() if value is not None}


def span(name: str, **attributes: Attribute | None) -> AbstractContextManager[Span]:
    """A span named ``name`` around the ``with`` block, the current one inside it.

    ``attributes`` are names of :data:`ATTRIBUTES` (``None`` values are left
    out); more can be added inside with :func:`annotate`. Off (no
    opentelemetry-api, or ``TRACING`` is ``False``): a shared no-op context.
    """
    _check(attributes)
    tracer = _tracer if _decided else _decide()
    if tracer is None:
        return _NO_SPAN
    return _recording(tracer, name, _named(attributes))


def annotate(current: Span, **attributes: Attribute | None) -> None:
    """Add attributes known only once the work is done (``outcome``, ``token_id``, …)."""
    _check(attributes)
    if current.is_recording():
        for key, value in _named(attributes).items():
            current.set_attribute(key, value)


def annotate_current(**attributes: Attribute | None) -> None:
    """:func:`annotate` the current span: for a step that learns something inside another's span."""
    _check(attributes)
    if (_tracer if _decided else _decide()) is None:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(_named(attributes))


@contextmanager
def _recording(tracer: Tracer, name: str, attributes: dict[str, Attribute]) -> Iterator[Span]:
    from opentelemetry.trace import Status, StatusCode

    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except OTPError as refusal:
            current.set_attribute(PREFIX + "outcome", refusal.code)
            raise
        except Exception as error:
            kind = f"{type(error).__module__}.{type(error).__qualname__}"
            # Not record_exception(): it copies the message, and a provider SDK's
            # message may quote the phone number. The type and frames are enough.
            current.add_event(
                "exception",
                {
                    "exception.type": kind,
                    "exception.stacktrace": "".join(traceback.format_tb(error.__traceback__)),
                },
            )
            current.set_status(Status(StatusCode.ERROR, kind))
            raise
