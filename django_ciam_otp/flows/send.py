"""Sending a code: :func:`send_otp`, the contract's checks in order, as named steps.

Checks run in the contract's order (SPEC.md section 2): shape, recipient,
auth source, is-used, rate limit, quota — so a refused request consumes no
quota. Each step is a function in the module named for it: ``shape``,
``policy``, ``eligibility``, ``counting``, ``issuing`` and ``enqueue`` (the
hand-off to delivery, which ``issuing.issue`` runs inside its transaction so
that a broker failure rolls the token and its quota back). Whichever step
answers, the send is counted once in the metrics and traced as one span
(``_observed``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec

from django.http import HttpRequest

from .. import crypto, metrics, signals, tracing
from ..clients import require_client
from ..exceptions import OTPError
from ..metrics.labels import SERVER_ERROR
from ..models import DeliveryStatus, OTPClient, OTPToken
from . import counting, eligibility, issuing, policy, shape

P = ParamSpec("P")


@dataclass(frozen=True)
class SendResult:
    """What a successful send returns: the opaque ``otp_token`` and when to allow the next send."""

    otp_token: str
    retry_after: int
    token: OTPToken

    def as_dict(self) -> dict[str, Any]:
        return {"otp_token": self.otp_token, "retry_after": self.retry_after}


def _observed(send: Callable[P, SendResult]) -> Callable[P, SendResult]:
    """Count every send once and trace it as one span, whichever step answered.

    Refusals are raised by many steps, so they are counted here, where all of
    them pass, by their public code (an unexpected exception as
    ``server_error``). What is recorded is read from the outcome, never from
    the arguments, so every label value is from a fixed set.
    """

    @functools.wraps(send)
    def send_observed(*args: P.args, **kwargs: P.kwargs) -> SendResult:
        with tracing.span("ciam_otp.send") as current:
            try:
                result = send(*args, **kwargs)
            except OTPError as refusal:
                metrics.send_refused(refusal.code)
                raise
            except Exception:
                metrics.send_refused(SERVER_ERROR)
                raise
            token = result.token
            outcome = (
                "test"
                if token.is_test
                else "suppressed"
                if token.delivery_status == DeliveryStatus.SUPPRESSED
                else "queued"
            )
            metrics.send_accepted(token.channel, token.usage, outcome)
            tracing.annotate(
                current, auth_source_id=token.auth_source_id, token_id=token.pk, outcome=outcome
            )
        return result

    return send_observed


@_observed
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
    tracing.annotate_current(
        client_id=client.client_id, channel=ask.recipient.channel, usage=ask.usage
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
