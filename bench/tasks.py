"""A Celery task that does nothing: the floor a delivery task is compared with."""

from celery import shared_task


@shared_task(name="bench.noop", acks_late=True, ignore_result=True)
def noop(token_id: int, envelope: str) -> None:
    """Same signature and options as ``deliver_otp``; no work."""
    return None
