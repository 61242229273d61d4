"""Post/redirect/get for failed submits too: the errors wait in the session for the next GET.

A page that answers a failed POST in place leaves a POST in the history:
Back or Reload then asks "Confirm Form Resubmission" and may send the form
again. Every form of the demo therefore answers a POST with a redirect; a
failed one first keeps what the next GET needs to show it again — the
errors, and the values of the fields named in ``keep`` (never a password or
a code). A wait ("Please wait 27 seconds") is kept as its end, so the GET
shows what is left of it, not what was left at the POST.
"""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorDict
from django.http import HttpRequest

from .errors import wait_sentence

SESSION_KEY = "demo_form"


class WaitError(ValidationError):
    """ "Please wait N seconds…": the sentence is rebuilt from ``until`` whenever it is shown."""

    def __init__(self, code: str, until: float) -> None:
        self.until = until
        super().__init__(wait_sentence(code, max(1, round(until - time.time()))), code=code)


def _serialise(errors: ErrorDict) -> dict[str, list[dict[str, Any]]]:
    kept: dict[str, list[dict[str, Any]]] = {}
    for field, items in errors.as_data().items():
        kept[field] = [
            {"code": e.code, "until": e.until}
            if isinstance(e, WaitError)
            else {"message": " ".join(e.messages)}
            for e in items
        ]
    return kept


def stash(
    request: HttpRequest,
    *,
    path: str,
    errors: dict[str, list[dict[str, Any]]],
    data: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Keep errors (``{field: [{"message": ...} | {"code": ..., "until": ...}]}``) for ``path``."""
    request.session[SESSION_KEY] = {
        "path": path,
        "errors": errors,
        "data": data or {},
        "extra": extra or {},
    }


def stash_form(request: HttpRequest, form: forms.Form, keep: tuple[str, ...] = ()) -> None:
    """Keep a failed form's errors and the values of ``keep`` for the page the POST came to."""
    data = {name: form.data.get(name, "") for name in keep if isinstance(form.data.get(name), str)}
    stash(request, path=request.get_full_path(), errors=_serialise(form.errors), data=data)


def pop(request: HttpRequest) -> dict[str, Any] | None:
    """What a failed POST kept for this page (once), or ``None``."""
    kept = request.session.get(SESSION_KEY)
    if not isinstance(kept, dict) or kept.get("path") != request.get_full_path():
        return None
    del request.session[SESSION_KEY]
    return kept


def show_errors(form: forms.Form, errors: dict[str, list[dict[str, Any]]]) -> None:
    """Put kept errors on an unbound form, as if it had just failed validation.

    A wait that is over by now is not shown.
    """
    form.cleaned_data = {}  # add_error() expects a validated form
    for field, items in errors.items():
        name = None if field == "__all__" else field
        if name is not None and name not in form.fields:
            continue
        for item in items:
            if "until" in item:
                if item["until"] > time.time():
                    form.add_error(name, WaitError(item["code"], item["until"]))
            else:
                form.add_error(name, item.get("message", ""))


def focus_first_error(form: forms.Form) -> None:
    """Put the page's focus (``autofocus``) on the first invalid field.

    A screen reader then reads the field with its error (``aria-describedby``).
    With errors of the whole form only, their banner takes the focus instead
    (``form.focus_banner``, see ``_form_errors.html``).
    """
    if not form.errors:
        return
    invalid = [name for name in form.fields if name in form.errors]
    for field in form.fields.values():
        field.widget.attrs.pop("autofocus", None)
    if invalid:
        form.fields[invalid[0]].widget.attrs["autofocus"] = True
    form.focus_banner = not invalid  # type: ignore[attr-defined]
