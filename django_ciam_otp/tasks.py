"""Celery tasks. Thin: the rules live in ``delivery.py``.

Tasks take ids and a sealed envelope, never model instances or a plain code.
``acks_late`` + ``reject_on_worker_lost`` make a delivery interrupted by a
dying worker run again; ``delivery.deliver`` makes that second run harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import delivery, outbox
from .conf import DELIVERY_TASK_SOFT_TIME_LIMIT, DELIVERY_TASK_TIME_LIMIT, otp_settings
from .exceptions import TemporarilyUnavailable
from .models import OTPToken

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="django_ciam_otp.deliver_otp",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,  # bounded by DELIVERY_MAX_RETRIES and the code's validity
    # A provider call that hangs past its own timeout is interrupted and
    # counts as a transient failure (SoftTimeLimitExceeded is retried). The
    # hard limit stays below DELIVERY_CLAIM_LEASE (25 s): a claim that old
    # belongs to a run that is over.
    soft_time_limit=DELIVERY_TASK_SOFT_TIME_LIMIT,
    time_limit=DELIVERY_TASK_TIME_LIMIT,
)
def deliver_otp(self: Any, token_id: int, envelope: str) -> None:
    if self.request.is_eager:
        # Eager mode (demo, tests) has no broker to hold a countdown.
        delivery.deliver_now(token_id, envelope)
        return
    outcome = delivery.deliver(token_id, envelope, attempt=self.request.retries)
    if outcome is None:
        return
    if not outcome.counts:
        # Waiting out another worker's claim; bounded by the code's validity.
        raise self.retry(countdown=outcome.countdown)
    raise self.retry(countdown=outcome.countdown, max_retries=otp_settings.DELIVERY_MAX_RETRIES)


@shared_task(
    bind=True,
    name="django_ciam_otp.deliver_due",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,  # comes back only while another run's claim on the outbox is live
    soft_time_limit=DELIVERY_TASK_SOFT_TIME_LIMIT,
    time_limit=DELIVERY_TASK_TIME_LIMIT,
)
def deliver_due(self: Any) -> None:
    """Deliver the outbox in batches (``outbox.deliver_due``); published by ``dispatch.wake``.

    A run that stopped for time wakes another at once; retries become tasks of
    their own; a claim another run holds (its worker died) brings this task
    back when the claim runs out.
    """
    run = outbox.deliver_due(
        started=time.monotonic(),
        publish_retry=_publish_retry,
        linger=0.0 if self.request.is_eager else outbox.LINGER_SECONDS,
        call_for_help=(lambda: None) if self.request.is_eager else _call_for_help,
    )
    if run.more:
        try:
            publish(deliver_due, (), "(more in the outbox)")
        except TemporarilyUnavailable:
            outbox.release_wake()  # the next send wakes a run
    elif (
        run.come_back_in is not None
        and not self.request.is_eager
        and outbox.claim_follow_up(run.come_back_in)
    ):
        raise self.retry(countdown=run.come_back_in)


def _call_for_help() -> None:
    """A backlog: another run takes the next batch on another worker (no flag: it is extra)."""
    try:
        publish(deliver_due, (), "(a backlog in the outbox)")
    except TemporarilyUnavailable:
        pass  # logged; this run goes on alone


def _publish_retry(retry: outbox.Retry) -> bool:
    """A retry from the batch task: a ``deliver_otp`` task of its own, as its own retry would be."""
    try:
        publish(
            deliver_otp,
            (retry.token_id, retry.envelope),
            f"({retry.token_id}, '<sealed envelope>')",
            countdown=retry.countdown,
            expires=retry.expires,
            retries=retry.attempt,
        )
    except TemporarilyUnavailable:
        return False  # the token stays in the outbox; the next run tries again
    return True


def publish(task: Any, args: tuple[Any, ...], argsrepr: str, **options: Any) -> None:
    """Publish ``task``; any broker trouble becomes ``TemporarilyUnavailable``.

    ``argsrepr``/``kwargsrepr`` name the arguments for Celery's logs and
    events instead of letting it ``repr()`` them on every publish: cheaper,
    and the envelope (sealed, but still the code) stays out of the logs.
    """
    options = {
        "retry": True,
        "retry_policy": dict(otp_settings.PUBLISH_RETRY_POLICY),
        "argsrepr": argsrepr,
        "kwargsrepr": "{}",
        **options,
    }
    if otp_settings.CELERY_QUEUE:
        options["queue"] = otp_settings.CELERY_QUEUE
    try:
        task.apply_async(args=args, **options)
    except SoftTimeLimitExceeded:
        raise  # the run's time is up, not the broker's
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types for "broker down"
        if task.app.conf.task_always_eager:
            raise  # no broker to fail: a bug in the task surfaces instead of a 503
        logger.error("could not queue OTP delivery %s: %s", argsrepr, type(exc).__name__)
        raise TemporarilyUnavailable() from exc


@shared_task(name="django_ciam_otp.purge_otp_tokens", ignore_result=True)
def purge_otp_tokens() -> int:
    """Delete tokens that expired more than ``TOKEN_RETENTION`` ago (for Celery beat).

    First closes deliveries that never ran (tasks Celery dropped after their
    ``expires``), so their quota comes back even before the rows go.
    """
    delivery.expire_stale_deliveries()
    retention = dt.timedelta(seconds=int(otp_settings.TOKEN_RETENTION))
    return OTPToken.objects.purge_expired(older_than=retention)
