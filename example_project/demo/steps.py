"""Double submits: one request per session at a time, and a second identical submit continues.

People double-click, and browsers resend a form when the network hiccups.
The second request must not undo or contradict the first: it waits until
the first has been answered (:func:`lock`, a lock per session in the
cache, held until Django has sent the response, so the session the first
request saved is the one the second reads), then each page follows the
flow's state — a code just sent for the same address goes to the code
page, a verified step moves on.

Logging in changes the session key (Django's defence against session
fixation), so a second submit of a log-in step arrives with a session that no
longer exists, or (sent after the first answer) with the new one, where the
step is already over. The first request leaves a short-lived :class:`Done`
record under both keys; the second continues from it only when it proves the
same thing the first did — the same code (kept as a keyed hash) or the
password the new account now has — so a stolen or planted old session key
alone gets nothing.

With a cache that other processes do not share (the local-memory default),
the lock only covers one process; the library's own rules (a code verifies
once, an address has one account) still hold everywhere.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.crypto import constant_time_compare, salted_hmac

from . import flows

logger = logging.getLogger(__name__)

#: A lock outlives no request; this is only for a process that died holding it.
LOCK_SECONDS = 30
#: How long a second request waits for the first before going ahead anyway.
WAIT_SECONDS = 15
POLL_SECONDS = 0.05
#: How long the second submit of a log-in step may still continue the first.
DONE_SECONDS = 60


def session_tag(request: HttpRequest) -> str | None:
    """A name for the request's session that does not reveal its key (cache keys are visible)."""
    key = request.session.session_key
    return (
        salted_hmac("example_project.demo.steps", key, algorithm="sha256").hexdigest()
        if key
        else None
    )


def _acquire(tag: str) -> Callable[[], None]:
    """Wait for the session's lock; return what releases it."""
    name, owner = f"demo:lock:{tag}", secrets.token_hex(8)
    deadline = time.monotonic() + WAIT_SECONDS
    try:
        while not cache.add(name, owner, LOCK_SECONDS):
            if time.monotonic() > deadline:
                logger.warning("demo step lock not released in %ss; going ahead", WAIT_SECONDS)
                return lambda: None
            time.sleep(POLL_SECONDS)
    except Exception:  # noqa: BLE001 - cache clients raise many types for "down"
        logger.warning("demo step lock skipped: cache unavailable", exc_info=True)
        return lambda: None

    def release() -> None:
        try:
            if cache.get(name) == owner:
                cache.delete(name)
        except Exception:  # noqa: BLE001
            logger.warning("demo step lock not released: cache unavailable", exc_info=True)

    return release


def no_lock() -> None:
    """What :func:`lock` returns when there is nothing to hold."""


def lock(request: HttpRequest) -> Callable[[], None]:
    """Wait until no other request of this session holds the lock, take it, return its release.

    Call it before anything reads the session, and release it with
    :func:`release_when_sent`: the next request of the same session then sees
    everything this one did, its saved session included.
    """
    tag = session_tag(request)
    request.demo_session_tag = tag  # type: ignore[attr-defined]  # for Done records
    if tag is None:  # no session yet: nothing another request could share
        return no_lock
    return _acquire(tag)


def release_when_sent(response: HttpResponse, release: Callable[[], None]) -> None:
    """Release once the server has sent ``response`` (after the session middleware saved).

    Django calls a response's resource closers from ``HttpResponse.close()``,
    which the WSGI server (and the test client) calls when the response is out.
    """
    if release is not no_lock:
        response._resource_closers.append(release)


@dataclass
class Done:
    """What a finished log-in step did, for its second submit (see the module docstring)."""

    to: str
    message: str = ""
    user_id: Any = None
    backend: str = ""
    code: str = ""  # flows.code_proof() of the code that finished the step
    password: bool = False  # the second submit must give the user's (new) password
    log_in: bool = False  # the first submit logged the user in

    def proven_by(self, request: HttpRequest, code: str | None = None) -> Any | None:
        """The user (or ``True`` without one) when ``request`` proves what the first did."""
        user = None
        if self.user_id is not None:
            user = get_user_model()._default_manager.filter(pk=self.user_id).first()
            if user is None:
                return None
        if self.code:
            if code is None or not constant_time_compare(self.code, flows.code_proof(code)):
                return None
        if self.password:
            first = request.POST.get("new_password1", "")
            if user is None or not first or first != request.POST.get("new_password2"):
                return None
            if not user.check_password(first):
                return None
        return user or True


def _key(tag: str, flow: str) -> str:
    return f"demo:done:{tag}:{flow}"


def remember(request: HttpRequest, flow: str, done: Done) -> None:
    """Keep ``done`` for a second submit, whichever session key it comes with.

    The key this request came with (a second submit sent before the answer to
    the first arrived), and the one it leaves with when logging in changed it
    (a second submit sent after).
    """
    tags = {getattr(request, "demo_session_tag", None), session_tag(request)} - {None}
    try:
        for tag in tags:
            cache.set(_key(tag, flow), asdict(done), DONE_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("demo step record not kept: cache unavailable", exc_info=True)


def recall(request: HttpRequest, flow: str) -> Done | None:
    tag = getattr(request, "demo_session_tag", None)
    if tag is None or request.method != "POST":
        return None
    try:
        data = cache.get(_key(tag, flow))
    except Exception:  # noqa: BLE001
        return None
    return Done(**data) if isinstance(data, dict) else None


def replay(request: HttpRequest, done: Done, user: Any) -> HttpResponse:
    """Answer a second submit as the first was answered: logged in, told, sent on."""
    if done.log_in and not (request.user.is_authenticated and request.user.pk == done.user_id):
        login(request, user, backend=done.backend)
    if done.message:
        add_once(request, done.message)
    return redirect(done.to)


def add_once(request: HttpRequest, text: str) -> None:
    """A success message, unless the first submit's is still waiting to be shown."""
    storage = messages.get_messages(request)
    already = any(str(message) == text for message in storage)
    storage.used = False  # looking is not showing: keep them for the next page
    if not already:
        messages.success(request, text)
