"""Prometheus metrics: one function per event, free when they are off.

The flows, the delivery task and the receipts view call these functions and
nothing else of Prometheus: whether anything is recorded is decided here,
once per process (``CIAM_OTP["METRICS"]`` and whether prometheus-client can
be imported) and again after ``setting_changed``. Until then nothing imports
prometheus-client; once decided off, a call is a global read and a
comparison. The metric names, labels and how to scrape them: ``docs/metrics.md``.

Every label value must come from a fixed set (``metrics.labels``) or from
names the site's admins configured (backend names): never from input.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed

from ..conf import SETTINGS_NAME, otp_settings

if TYPE_CHECKING:
    from .instruments import Instruments

__all__ = [
    "decide",
    "delivery",
    "enabled",
    "receipt",
    "send_accepted",
    "send_refused",
    "verification",
]

#: The environment variable prometheus-client's multiprocess mode reads.
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

_decided = False
_instruments: Instruments | None = None


def _decide() -> Instruments | None:
    """Record or not, from now on; the metrics are created (and registered) on the first yes."""
    global _decided, _instruments
    instruments = None
    if otp_settings.METRICS:
        try:
            import prometheus_client  # noqa: F401 - the metrics' one optional dependency
        except ImportError:
            pass
        else:
            from .instruments import INSTRUMENTS

            instruments = INSTRUMENTS
            if os.environ.get(MULTIPROC_DIR):
                from .celery import connect

                connect()
    _instruments, _decided = instruments, True
    return instruments


def decide() -> bool:
    """Decide now whether to record (the app's ``ready()`` does, so series exist at once)."""
    return _decide() is not None


def enabled() -> bool:
    """Whether calls record, deciding on the first question."""
    return (_instruments if _decided else _decide()) is not None


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _decided
    if setting == SETTINGS_NAME:
        _decided = False


setting_changed.connect(_forget)


def send_accepted(channel: str, usage: str, outcome: str) -> None:
    """A send answered 200: ``outcome`` is ``queued``, ``suppressed`` or ``test``."""
    on = _instruments if _decided else _decide()
    if on is not None:
        on.sends.labels(channel, usage, outcome).inc()


def send_refused(reason: str) -> None:
    """A send refused: ``reason`` is the answer's public error code (``OTPError.code``)."""
    on = _instruments if _decided else _decide()
    if on is not None:
        on.refusals.labels(reason).inc()


def delivery(backend: str, channel: str, outcome: str, latency: float | None = None) -> None:
    """A delivery attempt ended: ``sent``, ``failed``, ``retry``, ``failover`` or ``expired``.

    ``latency`` (seconds from queued to accepted by the provider) is observed
    for ``sent`` only: the other outcomes' durations say nothing about how
    long people wait for a code.
    """
    on = _instruments if _decided else _decide()
    if on is not None:
        on.deliveries.labels(backend, channel, outcome).inc()
        if latency is not None and outcome == "sent":
            on.delivery_latency.labels(backend).observe(max(0.0, latency))


def receipt(backend: str, outcome: str, latency: float | None = None) -> None:
    """A provider's receipt: ``delivered``, ``undelivered``, ``unknown``, ``repeated``,
    ``refused`` or ``malformed``.

    ``latency`` (seconds from accepted by the provider to the receipt) is
    observed for ``delivered`` and ``undelivered`` only: the others are not
    news about a message.
    """
    on = _instruments if _decided else _decide()
    if on is not None:
        on.receipts.labels(backend, outcome).inc()
        if latency is not None and outcome in ("delivered", "undelivered"):
            on.receipt_latency.labels(backend).observe(max(0.0, latency))


def verification(outcome: str) -> None:
    """A verification's answer: ``verified`` or the public error code."""
    on = _instruments if _decided else _decide()
    if on is not None:
        on.verifications.labels(outcome).inc()
