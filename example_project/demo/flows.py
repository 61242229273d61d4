"""What the pages keep in the session between "send a code" and "enter the code".

The ``otp_token`` never travels through the browser: it stays in the
server-side session, with the recipient it was sent to, so a page can only
verify the code it sent. Each flow (sign-up, code login, reset, change email,
change phone) has its own slot, so starting one does not disturb another.
Every rule (limits, expiry, attempts, is-used, no enumeration) stays in
:func:`django_ciam_otp.send_otp` and :func:`django_ciam_otp.verify_otp`;
this module only remembers what the person was told (the code's length and
validity, when a new code may be asked for, that a code is used up).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import get_language

from django_ciam_otp import send_otp
from django_ciam_otp.backends.auth import site_client
from django_ciam_otp.exceptions import InvalidClient, RateLimited
from django_ciam_otp.identity import canonical
from django_ciam_otp.models import Channel, OTPClient

SESSION_KEY = "demo_otp"
#: How long a verified sign-up or reset may take to choose its password.
VERIFIED_FOR = 600


@dataclass
class PendingCode:
    """A code sent for one flow, waiting to be entered."""

    usage: str
    channel: str
    recipient: str  # as typed; verify_otp normalises it the same way send_otp did
    otp_token: str
    masked: str
    resend_at: float
    auth_source_id: str | None = None
    user_id: int | None = None
    next_url: str = ""
    #: The recipient's canonical form (django_ciam_otp.identity): "the same recipient".
    key: str = ""
    #: Digits of the code (0: any length, for a test recipient's fixed code).
    code_length: int = 6
    #: Seconds the code is valid, as the auth source (or the default) says.
    code_validity: int = 60
    #: When the otp_token stops being usable (epoch seconds).
    expires_at: float = 0.0
    #: The error code that used the code up ("" while it can still be entered).
    dead: str = ""
    #: A keyed hash of the last wrong code and what the person was told about it:
    #: the same wrong code again (a double submit) costs no second attempt.
    tried: str = ""
    tried_message: str = ""

    def recipient_kwargs(self) -> dict[str, str]:
        return {"phone_number" if self.channel == Channel.SMS else "email": self.recipient}

    def wait(self) -> int:
        """Seconds until a new code may be asked for (the service's ``retry_after``)."""
        return max(0, math.ceil(self.resend_at - time.time()))

    def is_for(self, channel: str, key: str | None, user_id: int | None) -> bool:
        """Whether this code went to ``key`` (canonical form) for the same person."""
        return (
            key is not None
            and self.channel == channel
            and constant_time_compare(self.key, key)
            and self.user_id == user_id
        )

    def alive(self) -> bool:
        """The otp_token can still be verified (its code may still be wrong or expired)."""
        return time.time() < self.expires_at

    @property
    def ref(self) -> str:
        """Names this code in a form without revealing its otp_token (see ``VerifyCodeView``)."""
        return code_proof(f"token:{self.otp_token}")[:16]


def client() -> OTPClient:
    """The site's own OTP client (``CIAM_OTP["SITE_CLIENT_ID"]``), or ``InvalidClient``."""
    found = site_client()
    if found is None:
        raise InvalidClient("CIAM_OTP['SITE_CLIENT_ID'] names no enabled client.")
    return found


def start(request: HttpRequest) -> None:
    """Give a first-time visitor a session now, before the first submit.

    Two submits of one form (a double click) then carry the same session
    cookie, so the second can see what the first did (:mod:`.steps`).
    """
    if request.session.session_key is None:
        _slots(request)
        request.session.modified = True


def _slots(request: HttpRequest) -> dict[str, Any]:
    return request.session.setdefault(SESSION_KEY, {})


def _store(request: HttpRequest, name: str, value: Any) -> None:
    _slots(request)[name] = value
    request.session.modified = True


def send_code(
    request: HttpRequest,
    flow: str,
    *,
    usage: str,
    channel: str,
    recipient: str,
    auth_source_id: str | None = None,
    user_id: int | None = None,
    next_url: str = "",
) -> PendingCode:
    """Send a code with :func:`send_otp` and remember it for ``flow``; errors propagate."""
    key = "phone_number" if channel == Channel.SMS else "email"
    result = send_otp(
        client(),
        usage=usage,
        auth_source_id=auth_source_id,
        request=request,
        language=get_language(),
        **{key: recipient},
    )
    token = result.token
    now = time.time()
    pending = PendingCode(
        usage=usage,
        channel=channel,
        recipient=recipient,
        otp_token=result.otp_token,
        masked=token.recipient_masked,
        resend_at=now + result.retry_after,
        auth_source_id=auth_source_id,
        user_id=user_id,
        next_url=next_url,
        key=canonical(channel, recipient) or "",
        # A test recipient's fixed code may have another length than the policy's.
        code_length=0 if token.is_test else token.code_length,
        code_validity=round((token.code_expires_at - token.created_at).total_seconds()),
        expires_at=token.expires_at.timestamp(),
    )
    _store(request, flow, asdict(pending))
    return pending


def resend_code(request: HttpRequest, flow: str, pending: PendingCode) -> PendingCode:
    """Send a new code to the same recipient; a refusal keeps the old code usable."""
    try:
        return send_code(
            request,
            flow,
            usage=pending.usage,
            channel=pending.channel,
            recipient=pending.recipient,
            auth_source_id=pending.auth_source_id,
            user_id=pending.user_id,
            next_url=pending.next_url,
        )
    except RateLimited as exc:
        refused(request, flow, pending, exc)
        raise


def refused(request: HttpRequest, flow: str, pending: PendingCode, exc: RateLimited) -> None:
    """A new code was refused: the old one stays, and the wait the service gave is kept."""
    pending.resend_at = time.time() + exc.retry_after
    _store(request, flow, asdict(pending))


def pending_code(request: HttpRequest, flow: str) -> PendingCode | None:
    data = _slots(request).get(flow)
    if not isinstance(data, dict):
        return None
    try:
        return PendingCode(**data)
    except TypeError:  # a session written by an older version of this page
        return None


def code_proof(code: str) -> str:
    """A keyed hash of a code, to recognise it again without keeping it."""
    return salted_hmac("example_project.demo.flows.code", code, algorithm="sha256").hexdigest()


def note_wrong_code(
    request: HttpRequest, flow: str, pending: PendingCode, code: str, message: str
) -> None:
    pending.tried, pending.tried_message = code_proof(code), message
    _store(request, flow, asdict(pending))


def repeats_wrong_code(pending: PendingCode, code: str) -> bool:
    return bool(pending.tried) and constant_time_compare(pending.tried, code_proof(code))


def mark_dead(request: HttpRequest, flow: str, pending: PendingCode, error_code: str) -> None:
    """The code can no longer be entered (attempts used up, expired): only a new one helps."""
    pending.dead = error_code
    pending.tried = pending.tried_message = ""
    _store(request, flow, asdict(pending))


def forget(request: HttpRequest, *flows: str) -> None:
    slots = _slots(request)
    for flow in flows:
        slots.pop(flow, None)
        slots.pop(f"{flow}:verified", None)
    request.session.modified = True


def mark_verified(request: HttpRequest, flow: str, channel: str, recipient: str) -> None:
    """The code was right: remember the normalised recipient for the next step only."""
    slots = _slots(request)
    slots.pop(flow, None)
    slots[f"{flow}:verified"] = {"channel": channel, "recipient": recipient, "at": time.time()}
    request.session.modified = True


def verified_recipient(request: HttpRequest, flow: str) -> tuple[str, str] | None:
    """``(channel, recipient)`` verified for ``flow`` in the last ``VERIFIED_FOR`` seconds."""
    data = _slots(request).get(f"{flow}:verified")
    if not isinstance(data, dict) or time.time() - data.get("at", 0) > VERIFIED_FOR:
        return None
    return data["channel"], data["recipient"]
