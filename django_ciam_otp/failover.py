"""Trying a message on each backend of its route until one takes it.

``delivery.py`` claims a token, then hands the message to :func:`offer`,
which walks the route (``backends/routing.py``: ``SMS_BACKENDS`` in order, or
the backends ``SMS_ROUTES`` names for the number) and reports what happened.
The claim is held for the whole walk, so however many backends are tried, one
run owns the token and at most one backend accepts its message: "exactly one
message per code" holds across failover as it does across retries.

What moves the message to the next backend, and what does not:

* a transient failure (timeout, throttling, a provider 5xx): next backend;
  the backend's circuit (``circuit.py``) counts it;
* :class:`~.backends.base.NotDeliverableHere` (this account cannot reach the
  number's region): next backend;
* :class:`~.backends.base.BackendMisconfigured` (credentials, arrears): the
  backend stops (``breaker.py``) and the next one is tried;
* a stopped backend, or one whose circuit is open, is skipped without a call
  (with every backend of the route open, the first is tried anyway: a trial
  beats giving up);
* :class:`~.backends.base.PermanentDeliveryError`: the recipient's own
  failure (the number does not exist), so it would fail everywhere: no
  failover, the delivery fails.

A walk stops early when it has used :data:`WALK_SECONDS`: the delivery task is
interrupted at its soft time limit, and a claim must end well within its
lease, so the rest of the route is left to the retry.

Residual risk, written down: a backend that times out *after* its provider
accepted the message cannot tell; failing over then sends the same code a
second time through the next backend (the same code, so nothing is unlocked;
one SMS too many). A backend that can look before sending again (Tencent's
``CONFIRM_BEFORE_RESEND``) does so on the retry, not across backends.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from . import breaker, circuit
from .backends.base import (
    Accepted,
    BackendMisconfigured,
    BaseBackend,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
)
from .backends.loading import get_backend
from .backends.routing import BackendEntry, route_for
from .conf import DELIVERY_TASK_SOFT_TIME_LIMIT

#: Seconds a walk may take before the rest of the route is left to the retry (well within the
#: task's soft time limit, so a backend's own timeout still fits).
WALK_SECONDS = DELIVERY_TASK_SOFT_TIME_LIMIT / 2


class Result(enum.Enum):
    SENT = "sent"
    #: Worth trying again later: some backend failed transiently, or the walk ran out of time.
    RETRY = "retry"
    #: No backend can ever send it (the recipient's failure, or none can reach it).
    FAILED = "failed"


@dataclass
class Try:
    """One backend's answer, for the token log and the metrics."""

    name: str
    outcome: str  # "sent", "transient", "not_here", "stopped", "permanent", "skipped"
    reason: str = ""
    code: str = ""
    error: BaseException | None = None
    accepted: Accepted | None = None


@dataclass
class Offer:
    """What the walk came to."""

    result: Result
    #: The backend that took the message (``SENT``), or the last one tried.
    backend: str = ""
    accepted: Accepted | None = None
    reason: str = ""
    code: str = ""
    #: The longest wait a transient failure asked for (``retry_after``), if any.
    retry_after: float | None = None
    tries: list[Try] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    name: str
    entry: BackendEntry | None  # None: the email channel's one backend

    def build(self) -> BaseBackend:
        if self.entry is None:
            return get_backend("email", name=self.name)
        return self.entry.build()


def candidates(channel: str, recipient: str, *, after: str = "") -> list[Candidate]:
    """The route's backends in the order to try: stopped ones out, open circuits skipped.

    ``after``: the backend the previous try of this message ended with; a
    retry starts with the one after it, so a walk cut short by
    :data:`WALK_SECONDS` goes on where it stopped (a walk that tried them all
    ended with the last, and starts again from the first).
    """
    if channel != "sms":
        # The channel's one backend: stopped, nothing is sent (see breaker.py).
        return [] if breaker.stopped(channel, channel) else [Candidate(channel, None)]
    route = [Candidate(entry.name, entry) for entry in route_for(recipient)]
    names = [c.name for c in route]
    if after in names:
        start = names.index(after) + 1
        route = route[start:] + route[:start]
    live = [c for c in route if breaker.stopped("sms", c.name) is None]
    usable = [c for c in live if _may_try(c.name)]
    return usable or live[:1]


def _may_try(name: str) -> bool:
    state = circuit.state(name)
    if state == circuit.HALF_OPEN:
        return circuit.claim_trial(name)
    return state != circuit.OPEN


def offer(
    message: OTPMessage,
    *,
    report_failure: Callable[[BaseBackend | None, str, BaseException], str],
    after: str = "",
) -> Offer:
    """Walk the route until a backend takes ``message``; what happened (see the module).

    ``after``: where the previous try ended (see :func:`candidates`).
    """
    try:
        route = candidates(message.channel, message.recipient, after=after)
    except ImproperlyConfigured as exc:  # SMS_BACKENDS / SMS_ROUTES malformed: E020, E021
        return Offer(Result.FAILED, reason=f"not sent: {exc}")
    if not route:
        return Offer(Result.FAILED, reason="not sent: every backend of its route is stopped")
    started = time.monotonic()
    tries: list[Try] = []
    retry = False
    wait: float | None = None
    for candidate in route:
        if tries and time.monotonic() - started >= WALK_SECONDS:
            retry = True  # the rest of the route is the retry's
            break
        attempt = _try(candidate, message, report_failure)
        tries.append(attempt)
        if attempt.outcome == "sent":
            if message.channel == "sms":
                circuit.record_success(candidate.name)
            return Offer(
                Result.SENT,
                backend=candidate.name,
                accepted=attempt.accepted,
                tries=tries,
            )
        if attempt.outcome == "permanent":
            return _last(Result.FAILED, tries, wait)
        if attempt.outcome == "transient":
            retry = True
            asked = getattr(attempt.error, "retry_after", None)
            if asked is not None:
                wait = max(wait or 0.0, float(asked))
            if message.channel == "sms":
                circuit.record_failure(candidate.name)
    return _last(Result.RETRY if retry else Result.FAILED, tries, wait)


def _try(
    candidate: Candidate,
    message: OTPMessage,
    report_failure: Callable[[BaseBackend | None, str, BaseException], str],
) -> Try:
    backend: BaseBackend | None = None
    try:
        backend = candidate.build()
        sent = backend.send(message)
    except (BackendMisconfigured, ImproperlyConfigured, ImportError) as exc:
        # ImportError: a path in SMS_BACKENDS that cannot be imported (E020) stops that backend.
        where = report_failure(backend, message.channel, exc)
        code = getattr(exc, "provider_code", None) or type(exc).__name__
        reason = getattr(exc, "reason", None) or str(exc)
        breaker.trip(message.channel, where, code, reason, name=candidate.name)
        return Try(candidate.name, "stopped", reason, code, exc)
    except NotDeliverableHere as exc:
        report_failure(backend, message.channel, exc)
        return Try(candidate.name, "not_here", exc.reason, exc.provider_code or "", exc)
    except PermanentDeliveryError as exc:
        report_failure(backend, message.channel, exc)
        return Try(candidate.name, "permanent", exc.reason, exc.provider_code or "", exc)
    except Exception as exc:  # noqa: BLE001 - every other failure is worth a retry
        report_failure(backend, message.channel, exc)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        code = getattr(exc, "provider_code", None) or type(exc).__name__
        return Try(candidate.name, "transient", reason, code, exc)
    accepted = sent if isinstance(sent, Accepted) else Accepted(sent or "")
    return Try(candidate.name, "sent", accepted=accepted)


def _last(result: Result, tries: list[Try], wait: float | None) -> Offer:
    """The offer for a walk that ended without a send: the last try's reason names it."""
    last = tries[-1] if tries else Try("", "skipped", "no backend tried")
    reason = last.reason
    if len(tries) > 1:
        reason = "; ".join(f"{t.name}: {t.reason}" for t in tries)
    return Offer(
        result, backend=last.name, reason=reason, code=last.code, retry_after=wait, tries=tries
    )
