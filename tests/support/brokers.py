"""A stand-in for a Celery task whose broker is down."""

from __future__ import annotations

from typing import Any

from kombu.exceptions import OperationalError


class DeadBroker:
    """Stands in for a task: publishing fails as with a dead broker (not eager)."""

    class app:  # noqa: N801 - mirrors task.app.conf.task_always_eager
        class conf:  # noqa: N801
            task_always_eager = False

    @staticmethod
    def apply_async(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")
