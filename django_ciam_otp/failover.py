"""Trying a message on each backend of its route until one takes it.

``delivery.py`` claims a token, then hands the message to :func:`offer`,
which walks the route (``backends/routing.py``: ``SMS_BACKENDS`` in order, or
the backends ``SMS_ROUTES`` names for the number) and reports what happened.
The claim is held for the whole walk, so however many backends are tried, one
run owns the token.

What moves the message to the next backend, and what does not:

* a transient failure after which the provider surely has *not* taken the
  message (a refused connection, throttling, an answer that says no): next
  backend; the backend's circuit (``circuit.py``) counts it;
* :class:`~.backends.base.NotDeliverableHere` (this account cannot reach the
  number's region, or cannot send this code): next backend;
* :class:`~.backends.base.BackendMisconfigured` (credentials, arrears), or a
  backend that cannot be built: the backend stops (``breaker.py``) and the
  next one is tried;
* a stopped backend, or one whose circuit is open, is skipped without a call
  (with every backend of the route open, the first is tried anyway: a trial
  beats giving up); of a half-open backend, only the delivery that claims its
  one trial calls it;
* :class:`~.backends.base.PermanentDeliveryError`: the recipient's own
  failure (the number does not exist), so it would fail everywhere: no
  failover, the delivery fails.

What stops the walk and leaves the message to a retry *of the same backend*:
a transient failure after which the provider may have taken the message
(``unclear``: a read timeout, a connection lost mid-call, a gateway 5xx, the
task's soft time limit, an exception a backend did not classify), and a limit
on the recipient's number (``recipient_scoped``). Handing such a code to the
next backend could make it a second message; the same backend may look
before sending again (Tencent's and Alibaba's ``CONFIRM_BEFORE_RESEND``), and
once its circuit opens, the retry skips it. So one code is one message through
failover, except where a backend without such a look times out after its
provider accepted (it is retried, and may send it twice: the same code).

The walk starts a backend only while that backend's worst case
(:meth:`~.backends.base.BaseBackend.worst_case_seconds`) still fits in the
delivery task's soft time limit, less :data:`MARGIN`; otherwise the retry goes
on where the walk stopped (``Offer.resume``).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ImproperlyConfigured

from . import breaker, circuit
from .backends.base import (
    Accepted,
    BackendMisconfigured,
    BaseBackend,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from .backends.loading import get_backend
from .backends.routing import BackendEntry, route_for
from .conf import DELIVERY_TASK_SOFT_TIME_LIMIT

#: Seconds a walk keeps free below the task's soft time limit (recording the outcome).
MARGIN = 2.0
#: The worst case assumed for a backend that does not say (``worst_case_seconds``).
DEFAULT_WORST_CASE = 5.0
#: Seconds a walk may use in all: a backend is started only if its worst case ends by then.
WALK_SECONDS = DELIVERY_TASK_SOFT_TIME_LIMIT - MARGIN

ReportFailure = Callable[[BaseBackend | None, str, BaseException], str]


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
    outcome: str  # "sent", "transient", "not_here", "stopped", "permanent"
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
    #: Seconds the retry should wait at least (a provider's ``retry_after``), if any.
    retry_after: float | None = None
    #: Where the retry starts: this backend's name ("" = the route's first).
    resume: str = ""
    tries: list[Try] = field(default_factory=list)
    #: Nothing was tried: the first backend's worst case no longer fits the task's time.
    out_of_time: bool = False


@dataclass(frozen=True)
class Candidate:
    name: str
    entry: BackendEntry | None  # None: the email channel's one backend

    def build(self) -> BaseBackend:
        if self.entry is None:
            return get_backend("email", name=self.name)
        return self.entry.build()


def candidates(channel: str, recipient: str, *, start: str = "") -> list[Candidate]:
    """The route's backends in the order to try, from ``start`` on (wrapping round);
    stopped ones and open circuits out (all open: the first is kept)."""
    if channel != "sms":
        # The channel's one backend: stopped, nothing is sent (see breaker.py).
        return [] if breaker.stopped(channel, channel) else [Candidate(channel, None)]
    route = [Candidate(entry.name, entry) for entry in route_for(recipient)]
    names = [c.name for c in route]
    if start in names:
        route = route[names.index(start) :] + route[: names.index(start)]
    live = [c for c in route if breaker.stopped("sms", c.name) is None]
    usable = [c for c in live if circuit.state(c.name) != circuit.OPEN]
    return usable or live[:1]


def offer(
    message: OTPMessage, *, report_failure: ReportFailure, start: str = "", elapsed: float = 0.0
) -> Offer:
    """Walk the route until a backend takes ``message``; what happened (see the module).

    ``elapsed``: seconds of the task's time already used (a batch's earlier
    messages). Then even the first backend is started only if it fits; if it
    does not, nothing is tried (``out_of_time``).
    """
    try:
        route = candidates(message.channel, message.recipient, start=start)
    except ImproperlyConfigured as exc:  # SMS_BACKENDS / SMS_ROUTES malformed: E020, E021
        return Offer(Result.FAILED, reason=f"not sent: {exc}")
    if not route:
        return Offer(Result.FAILED, reason="not sent: every backend of its route is stopped")
    started = time.monotonic() - elapsed
    tries: list[Try] = []
    waits: list[float | None] = []
    for candidate in route:
        sms = message.channel == "sms"
        backend, built = _build(candidate)
        if (tries or elapsed) and not _fits(backend, time.monotonic() - started):
            if not tries:
                return Offer(Result.RETRY, reason="out of time", out_of_time=True)
            return _last(Result.RETRY, tries, waits, resume=candidate.name)
        # After the time check: a half-open backend's one trial is claimed only to be made.
        if sms and circuit.state(candidate.name) == circuit.HALF_OPEN:
            if not circuit.claim_trial(candidate.name):
                continue  # another delivery makes this backend's one trial
        attempt = _try(candidate, backend, built, message, report_failure)
        tries.append(attempt)
        if attempt.outcome == "sent":
            if sms:
                circuit.record_success(candidate.name)
            return Offer(
                Result.SENT, backend=candidate.name, accepted=attempt.accepted, tries=tries
            )
        if attempt.outcome == "permanent":
            return _last(Result.FAILED, tries, waits)
        if attempt.outcome != "transient":
            continue
        error = attempt.error
        scoped = isinstance(error, TransientDeliveryError) and error.recipient_scoped
        interrupted = isinstance(error, SoftTimeLimitExceeded)
        if sms and not (scoped or interrupted):
            circuit.record_failure(candidate.name)
        waits.append(getattr(error, "retry_after", None))
        if scoped or interrupted or _unclear(error):
            # The retry goes to this backend again: see the module.
            return _last(Result.RETRY, tries, waits[-1:], resume=candidate.name)
    if not tries:  # every usable backend was another delivery's trial
        return Offer(Result.RETRY, reason="waiting for a backend's trial", retry_after=1.0)
    retry = any(t.outcome == "transient" for t in tries)
    return _last(Result.RETRY if retry else Result.FAILED, tries, waits)


def _unclear(error: BaseException | None) -> bool:
    """Whether the provider may have taken the message despite ``error``."""
    if isinstance(error, TransientDeliveryError):
        return error.unclear
    return True  # not classified by its backend: assume the worst


def _fits(backend: BaseBackend | None, elapsed: float) -> bool:
    """Whether a try of ``backend`` surely ends within the walk's time."""
    worst = getattr(backend, "worst_case_seconds", lambda: None)() or DEFAULT_WORST_CASE
    return elapsed + float(worst) <= WALK_SECONDS


def _build(candidate: Candidate) -> tuple[BaseBackend | None, BaseException | None]:
    try:
        return candidate.build(), None
    except Exception as exc:  # noqa: BLE001 - _try reports it as this backend's failure
        return None, exc


def _try(
    candidate: Candidate,
    backend: BaseBackend | None,
    built: BaseException | None,
    message: OTPMessage,
    report_failure: ReportFailure,
) -> Try:
    try:
        if built is not None:
            raise built
        assert backend is not None  # noqa: S101 - _build returns one or the other
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


def _last(
    result: Result, tries: list[Try], waits: list[float | None], *, resume: str = ""
) -> Offer:
    """The offer for a walk that ended without a send: the tries' reasons name it.

    The retry waits as long as a backend asked, but one backend's long wait does
    not hold up the others: with a failure that named no wait, none.
    """
    last = tries[-1]
    reason = last.reason
    if len(tries) > 1:
        reason = "; ".join(f"{t.name}: {t.reason}" for t in tries)
    wait = None if not waits or None in waits else min(w for w in waits if w is not None)
    return Offer(
        result,
        backend=last.name,
        reason=reason,
        code=last.code,
        retry_after=wait,
        resume=resume,
        tries=tries,
    )
