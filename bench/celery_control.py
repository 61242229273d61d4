"""Talk to the bench's Celery worker through its broker (ping, pause and resume a queue)."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery


@lru_cache(maxsize=4)
def control_app(broker_url: str) -> Celery:
    app = Celery("bench-control", broker=broker_url)
    app.conf.broker_connection_retry_on_startup = True
    return app


def ping(broker_url: str, worker: str, timeout: float = 0.5) -> bool:
    try:
        replies = control_app(broker_url).control.ping(destination=[worker], timeout=timeout)
    except Exception:  # noqa: BLE001 - broker not up yet
        return False
    return bool(replies)


def cancel_consumer(broker_url: str, worker: str, queue: str = "celery") -> None:
    control_app(broker_url).control.cancel_consumer(
        queue, destination=[worker], reply=True, timeout=5
    )


def add_consumer(broker_url: str, worker: str, queue: str = "celery") -> None:
    control_app(broker_url).control.add_consumer(queue, destination=[worker], reply=True, timeout=5)
