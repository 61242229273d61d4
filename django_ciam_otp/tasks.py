"""Celery tasks. Thin: the rules live in ``delivery.py``.

Tasks take ids and a sealed envelope, never model instances or a plain code.
``acks_late`` + ``reject_on_worker_lost`` make a delivery interrupted by a
dying worker run again; ``delivery.deliver`` makes that second run harmless.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task

from . import delivery
from .conf import DELIVERY_TASK_SOFT_TIME_LIMIT, DELIVERY_TASK_TIME_LIMIT, otp_settings
from .models import OTPToken


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


@shared_task(name="django_ciam_otp.purge_otp_tokens", ignore_result=True)
def purge_otp_tokens() -> int:
    """Delete tokens that expired more than ``TOKEN_RETENTION`` ago (for Celery beat).

    First closes deliveries that never ran (tasks Celery dropped after their
    ``expires``), so their quota comes back even before the rows go.
    """
    delivery.expire_stale_deliveries()
    retention = dt.timedelta(seconds=int(otp_settings.TOKEN_RETENTION))
    return OTPToken.objects.purge_expired(older_than=retention)
