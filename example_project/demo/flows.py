"""What the pages keep in the session between "send a code" and "enter the code".

The ``otp_token`` never travels through the browser: it stays in the
server-side session, with the recipient it was sent to, so a page can only
verify the code it sent. Each flow (sign-up, code login, reset, change email,
change phone) has its own slot, so starting one does not disturb another.
Every rule (limits, expiry, attempts, is-used, no enumeration) stays in
:func:`django_ciam_otp.send_otp` and :func:`django_ciam_otp.verify_otp`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.translation import get_language

from django_ciam_otp import send_otp
from django_ciam_otp.backends.auth import site_client
from django_ciam_otp.exceptions import InvalidClient, RateLimited
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

    def recipient_kwargs(self) -> dict[str, str]:
        return {"phone_number" if self.channel == Channel.SMS else "email": self.recipient}

    def wait(self) -> int:
        """Seconds until a new code may be asked for (the service's ``retry_after``)."""
        return max(0, math.ceil(self.resend_at - time.time()))


def client() -> OTPClient:
    """The site's own OTP client (``CIAM_OTP["SITE_CLIENT_ID"]``), or ``InvalidClient``."""
    found = site_client()
    if found is None:
        raise InvalidClient("CIAM_OTP['SITE_CLIENT_ID'] names no enabled client.")
    return found


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
    pending = PendingCode(
        usage=usage,
        channel=channel,
        recipient=recipient,
        otp_token=result.otp_token,
        masked=result.token.recipient_masked,
        resend_at=time.time() + result.retry_after,
        auth_source_id=auth_source_id,
        user_id=user_id,
        next_url=next_url,
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
        pending.resend_at = time.time() + exc.retry_after
        _store(request, flow, asdict(pending))
        raise


def pending_code(request: HttpRequest, flow: str) -> PendingCode | None:
    data = _slots(request).get(flow)
    if not isinstance(data, dict):
        return None
    try:
        return PendingCode(**data)
    except TypeError:  # a session written by an older version of this page
        return None


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
