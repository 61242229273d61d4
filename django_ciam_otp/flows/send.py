"""Sending a code: :func:`send_otp`, the contract's checks in order, as named steps.

Checks run in the contract's order (SPEC.md section 2): shape, recipient,
auth source, is-used, rate limit, quota — so a refused request consumes no
quota. Each step is a function in the module named for it: ``shape``,
``policy``, ``eligibility``, ``counting``, ``issuing`` and ``enqueue`` (the
hand-off to delivery, which ``issuing.issue`` runs inside its transaction so
that a broker failure rolls the token and its quota back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from .. import crypto, signals
from ..clients import require_client
from ..models import OTPClient, OTPToken
from . import counting, eligibility, issuing, policy, shape


@dataclass(frozen=True)
class SendResult:
    """What a successful send returns: the opaque ``otp_token`` and when to allow the next send."""

    otp_token: str
    retry_after: int
    token: OTPToken

    def as_dict(self) -> dict[str, Any]:
        return {"otp_token": self.otp_token, "retry_after": self.retry_after}


def send_otp(
    client: OTPClient | str | None = None,
    *,
    usage: str | None = None,
    phone_number: str | None = None,
    email: str | None = None,
    auth_source_id: str | None = None,
    request: HttpRequest | None = None,
    language: str | None = None,
) -> SendResult:
    """Issue a code for ``phone_number`` or ``email`` and queue its delivery.

    ``client`` is the API client the code is sent for (an ``OTPClient`` or a
    client_id); ``None`` means the site's own (``CIAM_OTP["SITE_CLIENT_ID"]``),
    and ``ImproperlyConfigured`` says how to set it up when there is none.

    Raises an :class:`~django_ciam_otp.exceptions.OTPError` subclass for every
    refusal of the contract. ``request`` (optional) feeds the per-IP limit.

    Inside an outer ``transaction.atomic`` block (``ATOMIC_REQUESTS``) the
    delivery task is published before this returns, not at the outer commit,
    so a broker outage is still answered with ``TemporarilyUnavailable`` and
    leaves nothing behind; the worker waits for the outer commit.
    """
    client = require_client(client)
    ask = shape.parse_send(
        usage=usage,
        phone_number=phone_number,
        email=email,
        auth_source_id=auth_source_id,
        language=language,
    )
    rules = policy.code_policy(ask.auth_source_id, ask.recipient.channel)
    policy.require_channel_up(ask.recipient.channel)
    who = eligibility.decide(client, ask, request)
    recipient_hash = crypto.hash_recipient(ask.recipient.key)
    charge = counting.count(request, client, ask, who, recipient_hash)
    new = issuing.new_token(client, ask, rules, who, recipient_hash)
    issuing.issue(new, client, who, charge)
    counting.record(ask, client, who, charge)
    signals.otp_sent.send(
        sender=OTPToken,
        token=new.token,
        client=client,
        usage=ask.usage,
        channel=ask.recipient.channel,
        recipient_masked=new.token.recipient_masked,
        suppressed=who.suppressed,
    )
    return SendResult(otp_token=new.raw_token, retry_after=charge.retry_after, token=new.token)
