"""The parts of the provider backends' system checks that are the same rule for each.

Each provider's ``checks`` module owns its ids and its messages (docs/checks.md
lists them); what they share is how a settings dict is read, what counts as
an unknown key, and how the worst case of one delivery is held against the
delivery task's soft time limit. One copy of each here, so the four backends
cannot drift apart on them.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from ...conf import DELIVERY_TASK_SOFT_TIME_LIMIT
from ..loading import configured_backends
from ..settings import settings_section


def backend_configured(settings_key: str) -> bool:
    """Whether a backend reading ``CIAM_OTP[settings_key]`` is one of the site's backends.

    Told by the settings key, so a ``checks`` module need not import its
    backend (which imports it for its ``check()``); subclasses count too.
    """
    return any(cls.settings_key == settings_key for cls in configured_backends())


def merged_section(settings_key: str, defaults: dict[str, Any]) -> Any:
    """``CIAM_OTP[settings_key]`` over ``defaults``; as written when it is not a dict.

    What the backend would run with, so each check reads one value per key;
    a section that is not a dict is returned as is for the check to report.
    """
    section = settings_section(settings_key)
    return {**defaults, **section} if isinstance(section, dict) else section


def unknown_keys(section: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """``["unknown keys A, B"]`` for keys ``defaults`` does not have (``[]`` for none).

    A misspelt key would otherwise be ignored silently and its default used.
    """
    unknown = sorted(map(str, set(section) - set(defaults)))
    return [f"unknown keys {', '.join(unknown)}"] if unknown else []


def soft_time_limit() -> float | None:
    """The delivery task's soft time limit as Celery runs it (``task_annotations`` included).

    Looked up by name in Celery's registry, not imported: ``tasks`` imports
    ``delivery``, which loads the backends. Before the task is registered, its default.
    """
    from celery import current_app

    task = current_app.tasks.get("django_ciam_otp.deliver_otp")
    limit = getattr(task, "soft_time_limit", None) if task else DELIVERY_TASK_SOFT_TIME_LIMIT
    return float(limit) if limit else None


def time_budget(
    where: str,
    timeout: Any,
    *,
    worst: float,
    calls: int,
    check_id: str,
    spent: str | None = None,
) -> list[checks.CheckMessage]:
    """The warning when ``worst`` seconds of one delivery reach the soft time limit less 1 s.

    Celery interrupts a task at its soft time limit, so a slow answer must
    time out first, with a second to spare for the bookkeeping. ``worst`` is
    ``TIMEOUT`` times ``calls`` (API calls, or for an SDK that applies one
    timeout to connecting and again to reading, those two); ``spent`` says
    how, by default "one delivery can take ... (N API call(s))".
    """
    limit = soft_time_limit()
    if limit is None or worst < limit - 1:
        return []
    spent = spent or f"one delivery can take {worst:g} s ({calls} API call(s))"
    return [
        checks.Warning(
            f'{where}["TIMEOUT"] = {timeout}: {spent}, not below the delivery task\'s soft '
            f"time limit ({limit:g} s) less a second, so a slow answer is cut off by Celery "
            "instead of timing out.",
            hint=f"Use a TIMEOUT below {(limit - 1) / calls:g} s.",
            id=check_id,
        )
    ]


def worst_case_seconds(timeout: Any, calls: int) -> float | None:
    """A backend's ``worst_case_seconds()``: ``TIMEOUT`` times ``calls``; ``None`` when unset."""
    return float(timeout or 0) * calls or None
