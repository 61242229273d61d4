"""Celery tasks. Thin: the rules live in ``delivery.py``.

Tasks take ids and a sealed envelope, never model instances or a plain code.
``acks_late`` + ``reject_on_worker_lost`` make a delivery interrupted by a
dying worker run again; ``delivery.deliver`` makes that second run harmless.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import delivery
from .conf import otp_settings


@shared_task(
    bind=True,
    name="django_ciam_otp.deliver_otp",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,  # bounded by DELIVERY_MAX_RETRIES and the code's validity
)
def deliver_otp(self: Any, token_id: int, envelope: str) -> None:
    attempt = self.request.retries
    outcome = delivery.deliver(token_id, envelope, attempt=attempt)
    if self.request.is_eager:
        # Eager mode (demo, tests) has no broker to hold a countdown: retry in place.
        while outcome is not None:
            attempt += 1
            outcome = delivery.deliver(token_id, envelope, attempt=attempt)
        return
    if outcome is not None:
        raise self.retry(countdown=outcome.countdown, max_retries=otp_settings.DELIVERY_MAX_RETRIES)


@shared_task(name="django_ciam_otp.purge_otp_tokens", ignore_result=True)
def purge_otp_tokens() -> int:
    """Delete expired tokens (for Celery beat)."""
    from .services import purge_expired_tokens

    return purge_expired_tokens()
