"""A delivery backend that cannot send anything stops the line, for every process at once.

Wrong credentials, an account in arrears, an IP allow-list, an unapproved
template or signature, a clock ten minutes off: no retry and no other token
can succeed until an operator acts. Before this, each token failed on its own
with a WARNING while the site kept answering 200. Now the first such failure
(:class:`~django_ciam_otp.backends.base.BackendMisconfigured`, or
``ImproperlyConfigured`` raised by a backend) *trips* the channel's breaker:

* a record in the shared cache (the rate-limit cache, so every web and worker
  process sees it) for ``BACKEND_PAUSE_SECONDS`` (5 minutes by default);
* while it holds, ``/otp/send`` answers 503 ``temporarily_unavailable`` for
  that channel ("the provider is known down", as the contract says) and
  consumes nothing, and a queued delivery fails at once with its quota given
  back, without calling the provider;
* the signal ``delivery_backend_stopped`` fires and ``ADMINS`` get one mail
  per backend and error code a day; the admin dashboard shows the stop.

With several SMS backends (``SMS_BACKENDS``) each stops on its own: deliveries
fail over to the next, and sends answer 503 only while every SMS backend is
stopped.

When the pause ends the next delivery tries the provider again: fixed, the
line runs; still broken, it stops again (no second mail that day). An
operator who fixed it sooner lifts it with :func:`reset` (the dashboard's
"resume" button). Each process reads the record at most once per
``LOOKUP_CACHE_SECONDS``, so a send costs no extra round trip.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.core.mail import mail_admins
from django.core.signals import setting_changed

from . import counters, signals
from .conf import otp_settings
from .counters.store import counter_cache

logger = logging.getLogger(__name__)

CHANNELS = ("sms", "email")


@dataclass(frozen=True)
class Stop:
    """Why and until when a channel's backend is stopped."""

    channel: str
    backend: str
    code: str
    reason: str
    since: float
    until: float
    #: The backend's name in ``SMS_BACKENDS`` ("tencent"); the email backend is "email".
    name: str = ""

    @property
    def seconds_left(self) -> int:
        return max(1, int(self.until - time.time()) + 1)

    def as_record(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "code": self.code,
            "reason": self.reason,
            "since": self.since,
            "until": self.until,
        }


def _key(channel: str, name: str) -> str:
    return f"ciam_otp:breaker:{channel}:{name}"


def backend_names(channel: str) -> list[str]:
    """The names of ``channel``'s backends (the SMS ones in ``SMS_BACKENDS`` order)."""
    if channel != "sms":
        return [channel]
    from .backends.routing import sms_backends

    try:
        return [entry.name for entry in sms_backends()]
    except Exception:  # noqa: BLE001 - a malformed list is E020's; deliveries fail on their own
        return ["sms"]


# This process's copy: (channel, backend name) -> (read at, Stop or None).
_seen: dict[tuple[str, str], tuple[float, Stop | None]] = {}


def trip(channel: str, backend: str, code: str, reason: str, *, name: str | None = None) -> Stop:
    """Stop backend ``name`` (default: the channel's first) for ``BACKEND_PAUSE_SECONDS``.

    Fires the signal and mails ``ADMINS`` once a day per backend and code.
    """
    name = name or backend_names(channel)[0]
    now = time.time()
    stop = Stop(channel, backend, code or "unknown", reason[:200], now, now + _pause(), name)
    _seen[channel, name] = (time.monotonic(), stop)
    if not counters.cache_is_down():
        try:
            counter_cache().set(_key(channel, name), stop.as_record(), int(_pause()) + 1)
        except Exception:  # noqa: BLE001 - this process stops anyway; others find out themselves
            counters.trip_breaker()
            logger.warning("delivery stop not shared: cache unavailable")
    logger.error(
        "OTP %s delivery stopped for %d s: %s answered %s: %s",
        channel,
        int(_pause()),
        backend,
        stop.code,
        stop.reason,
    )
    signals.delivery_backend_stopped.send(sender=Stop, stop=stop)
    _mail_once(stop)
    return stop


def stopped(channel: str, name: str) -> Stop | None:
    """The stop in force for backend ``name``, as this process last read it (see the module)."""
    now = time.monotonic()
    seen = _seen.get((channel, name))
    if seen is None or now - seen[0] >= float(otp_settings.LOOKUP_CACHE_SECONDS):
        seen = (now, _read(channel, name))
        _seen[channel, name] = seen
    stop = seen[1]
    if stop is None or stop.until <= time.time():
        return None
    return stop


def current(channel: str) -> Stop | None:
    """A stop when *every* backend of ``channel`` is stopped (nothing can send), else ``None``."""
    stops = [stopped(channel, name) for name in backend_names(channel)]
    if not stops or any(stop is None for stop in stops):
        return None
    return stops[0]


def active() -> list[Stop]:
    """Every backend stop in force (the dashboard lists them)."""
    found = (stopped(channel, name) for channel in CHANNELS for name in backend_names(channel))
    return [stop for stop in found if stop is not None]


def reset(channel: str) -> None:
    """Lift the channel's stops now (an operator fixed the cause); others follow within seconds."""
    names = backend_names(channel)
    for name in names:
        _seen.pop((channel, name), None)
    try:
        counter_cache().delete_many([_key(channel, name) for name in names])
    except Exception:  # noqa: BLE001 - it ends by itself when the pause is over
        logger.warning("delivery stop not lifted in the cache: cache unavailable")


def forget_local_copy(**kwargs: Any) -> None:
    """Drop this process's copy (tests; a settings change)."""
    _seen.clear()


setting_changed.connect(forget_local_copy)


def _read(channel: str, name: str) -> Stop | None:
    if counters.cache_is_down():
        return None
    try:
        record = counter_cache().get(_key(channel, name))
    except Exception:  # noqa: BLE001 - an unreadable stop is no stop: sends fail on their own
        counters.trip_breaker()
        return None
    if not isinstance(record, dict):
        return None
    try:
        return Stop(
            channel,
            str(record["backend"]),
            str(record["code"]),
            str(record["reason"]),
            float(record["since"]),
            float(record["until"]),
            name,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _pause() -> float:
    return float(otp_settings.BACKEND_PAUSE_SECONDS)


def _mail_once(stop: Stop) -> None:
    """One mail to ``ADMINS`` per backend and error code a day (the cache says who mailed)."""
    key = f"ciam_otp:breaker-mailed:{stop.channel}:{stop.backend}:{stop.code}"[:250]
    try:
        first = counter_cache().add(key, 1, 86400)
    except Exception:  # noqa: BLE001 - better one mail too many than none
        first = True
    if not first:
        return
    mail_admins(
        f"OTP {stop.channel} delivery through {stop.name} stopped: {stop.code}",
        f"{stop.backend} answered {stop.code}: {stop.reason}\n\n"
        f"No {stop.channel} code can be delivered through {stop.name} until this is fixed. "
        f"For {int(_pause())} s deliveries go to the next backend of their route (sends "
        "answer 503 temporarily_unavailable when every backend is stopped), then the next "
        "delivery tries it again. Fix the configuration (credentials, balance, allow-list, "
        "template, signature, clock), then resume deliveries from the admin dashboard.",
        fail_silently=True,
    )
