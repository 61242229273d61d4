"""How a code leaves the request: a Celery task, or delivered inline.

``CIAM_OTP["DELIVERY"]`` chooses. ``"celery"`` publishes a task (the
production mode: the request never waits for a provider, retries back off on
a worker). ``"inline"`` delivers in the request's process right after the
send's transaction commits, retrying transient failures in place: a site with
no Celery app, no broker and no Redis still gets working codes. ``None``
(the default) picks ``"celery"`` when the site has configured a Celery app of
its own, else ``"inline"`` — a site that never set up Celery must not find
its sends failing with 503 because Celery's fallback app tried to reach
RabbitMQ on localhost. ``manage.py check --deploy`` warns about inline
delivery (W014) and errors when ``"celery"`` has no app or broker (E011).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from .conf import otp_settings
from .exceptions import TemporarilyUnavailable

if TYPE_CHECKING:
    from celery import Celery

    from .models import OTPToken

logger = logging.getLogger(__name__)

CELERY = "celery"
INLINE = "inline"
MODES = (CELERY, INLINE)


def celery_app() -> Celery | None:
    """The Celery app the site configured, or ``None`` when there is only Celery's fallback.

    Celery hands out a fallback app named ``"default"`` (no fix-ups, AMQP on
    localhost, Django settings never read) whenever no app was created; the
    usual ``proj/celery.py`` creates one, and Celery's Django fix-up makes it
    the app of every thread.
    """
    from celery import current_app

    app: Celery = current_app._get_current_object()
    return None if is_fallback(app) else app


def is_fallback(app: Celery) -> bool:
    """Whether ``app`` is the app Celery makes up when none was created."""
    return app.main == "default" and not app.fixups


def delivery_mode() -> str:
    """``"celery"`` or ``"inline"``: the ``DELIVERY`` setting, or chosen as the module says."""
    configured = otp_settings.DELIVERY
    if configured in MODES:
        return str(configured)
    return CELERY if celery_app() is not None else INLINE


def publish(token: OTPToken, envelope: str) -> None:
    """Publish a delivery task of its own for ``token`` (``tasks.publish``: any broker
    trouble becomes ``TemporarilyUnavailable``); the task expires with the code."""
    from .tasks import deliver_otp
    from .tasks import publish as publish_task

    publish_task(
        deliver_otp,
        (token.pk, envelope),
        f"({token.pk}, '<sealed envelope>')",
        expires=token.code_expires_at,
    )


def wake(token: OTPToken, flag_until: float = 0.0) -> None:
    """After an outbox token committed: make sure a run of the batch task will take it.

    Does nothing before ``flag_until`` (``time.monotonic()``), until when the
    flag the send's count read is certain to exist (``counting.wake_flag_until``):
    a run's last look comes after the flag is gone or
    replaced (``outbox``, "the flag's rule"), so after this commit; under load
    most sends skip the ``SET NX`` this way. Otherwise publishes
    ``deliver_due`` only when no run is pending (``outbox.claim_wake``).
    Broker trouble raises ``TemporarilyUnavailable`` like :func:`publish`, and
    clears the flag so the next send tries the broker again.
    """
    if time.monotonic() < flag_until:
        return  # the flag outlives this commit: a run's last look will find this token
    from . import outbox, tasks

    if not outbox.claim_wake():
        return  # a pending run's last look will find this token
    try:
        # No ``expires``: a late run still delivers the codes that are still valid.
        tasks.publish(tasks.deliver_due, (), f"(woken by token {token.pk})")
    except TemporarilyUnavailable:
        # A DEL, not a hand-over: this flag's run never comes, so the sends that found it
        # are left to the next wake-up or the beat's sweep, as before sends could skip.
        outbox.release_wake()
        raise


#: This process's delivery thread for ``DELIVERY = "inline"`` (made on first use).
_inline: ThreadPoolExecutor | None = None
_inline_lock = threading.Lock()
_inline_pending: list[Future[None]] = []


def deliver_inline(token: OTPToken, envelope: str) -> None:
    """Deliver in this process, after the answer (``DELIVERY = "inline"``); never raises.

    On a thread of this process, not in the request: a request that waited
    for the provider would answer a real ``reset_password`` 100 ms later than
    one for an address without an account (which sends nothing), and the
    difference would say who has an account. A failure is recorded on the
    token and logged like a worker's. Pending deliveries finish before the
    process exits; :func:`wait_for_inline_deliveries` waits for them.
    """
    global _inline
    with _inline_lock:
        if _inline is None:
            _inline = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ciam-otp-delivery")
        future = _inline.submit(_deliver_in_thread, token.pk, envelope)
        _inline_pending[:] = [f for f in _inline_pending if not f.done()] + [future]


def wait_for_inline_deliveries(timeout: float | None = 30) -> None:
    """Block until every inline delivery queued so far has finished (tests, scripts)."""
    with _inline_lock:
        pending = list(_inline_pending)
    wait(pending, timeout=timeout)


def _deliver_in_thread(token_id: int, envelope: str) -> None:
    from django.db import close_old_connections, connections

    from .delivery import deliver_now

    close_old_connections()
    try:
        deliver_now(token_id, envelope)
    except Exception:  # noqa: BLE001 - see deliver_inline
        logger.exception("OTP delivery (inline) failed unexpectedly: token %s", token_id)
    finally:
        connections.close_all()  # this thread's own connections
