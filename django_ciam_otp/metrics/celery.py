"""Celery prefork children in prometheus-client's multiprocess mode.

Each prefork child writes its metrics to its own files in
``PROMETHEUS_MULTIPROC_DIR``; prometheus-client asks to be told when a process
ends (``mark_process_dead``) so the files of a dead process stop counting in
"live" gauges. This package keeps no such gauge today, so the call is
bookkeeping for the site's own and for whatever comes next; it is cheap.

:mod:`django_ciam_otp.metrics` connects :func:`mark_process_dead` to Celery's
``worker_process_shutdown`` by itself when ``PROMETHEUS_MULTIPROC_DIR`` is set
and metrics are on, so a worker needs no configuration. Connecting it again
(from a site's own ``celery.py``) is harmless: the signal keeps one receiver
per ``dispatch_uid``.
"""

from __future__ import annotations

import os
from typing import Any

from celery.signals import worker_process_shutdown

DISPATCH_UID = "django_ciam_otp.metrics.celery.mark_process_dead"


def mark_process_dead(sender: Any = None, pid: int | None = None, **kwargs: Any) -> None:
    """``worker_process_shutdown`` receiver: forget the ending child's live gauges."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid if pid is not None else os.getpid(), path)


def connect() -> None:
    """Hook :func:`mark_process_dead` to ``worker_process_shutdown`` (once, whoever asks)."""
    worker_process_shutdown.connect(mark_process_dead, weak=False, dispatch_uid=DISPATCH_UID)
