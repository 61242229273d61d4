"""Verifying a code: :func:`verify_otp`; a correct code is consumed exactly once.

Every refusal of a well-formed verification sends ``otp_verification_failed``
from one place (:func:`verify_otp`'s ``except``), whichever check refused.
Every verification, well-formed or not, is counted once in the metrics and
traced as one span (``_observed``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, ParamSpec

from django.db import transaction
from django.utils import timezone

from .. import abuse, crypto, identity, metrics, ratelimits, signals, tracing
from ..clients import require_client
from ..conf import otp_settings
from ..exceptions import (
    DeliveryFailed,
    InvalidOTP,
    InvalidOTPToken,
    OTPError,
    OTPExpired,
    TooManyAttempts,
)
from ..metrics.labels import SERVER_ERROR, VERIFIED
from ..models import (
    Channel,
    DeliveryStatus,
    OTPClient,
    OTPToken,
    RecipientThrottle,
    TokenStatus,
)
from . import shape

P = ParamSpec("P")


@dataclass(frozen=True)
class VerifyResult:
    """A verified code: what it was for and for whom."""

    usage: str
    channel: str
    recipient: str
    token: OTPToken

    def as_dict(self) -> dict[str, Any]:
        key = "phone_number" if self.channel == Channel.SMS else "email"
        return {"verified": True, "usage": self.usage, key: self.recipient}


def _observed(verify: Callable[P, VerifyResult]) -> Callable[P, VerifyResult]:
    """Count every verification once (``verified`` or the public error code) and trace it.

    Here rather than in :func:`verify_otp`'s ``except``: the arguments' shape
    and the client are refused before that ``try``, and count too.
    """

    @functools.wraps(verify)
    def verify_observed(*args: P.args, **kwargs: P.kwargs) -> VerifyResult:
        with tracing.span("ciam_otp.verify") as current:
            try:
                result = verify(*args, **kwargs)
            except OTPError as refusal:
                metrics.verification(refusal.code)
                raise
            except Exception:
                metrics.verification(SERVER_ERROR)
                raise
            metrics.verification(VERIFIED)
            tracing.annotate(current, token_id=result.token.pk, outcome=VERIFIED)
        return result

    return verify_observed


@_observed
def verify_otp(
    client: OTPClient | str | None,
    otp_token: str,
    otp: str,
    *,
    phone_number: str | None = None,
    email: str | None = None,
    usage: str | None = None,
) -> VerifyResult:
    """Check ``otp`` for ``otp_token``; a correct code is consumed exactly once.

    Order of answers: the token must exist, belong to this client, recipient
    and usage, and be pending (``invalid_otp_token``); then the recipient must
    not be locked out and the token not out of attempts (``too_many_attempts``);
    then the code must be within its validity (``otp_expired``) and equal
    (``invalid_otp``). Wrong codes count against the token and the recipient.
    ``client`` as for :func:`send_otp` (``None``: the site's own).
    """
    client = require_client(client)
    ask = shape.parse_verify(
        otp_token=otp_token, otp=otp, usage=usage, phone_number=phone_number, email=email
    )
    tracing.annotate_current(
        client_id=client.client_id, channel=ask.recipient.channel, usage=ask.usage
    )
    recipient_hash = crypto.hash_recipient(ask.recipient.key)
    now = timezone.now()
    token: OTPToken | None = None
    try:
        token = _find_token(client, ask, recipient_hash, now)
        _require_usable(token, ask, recipient_hash, now)
        _require_code(token, ask.otp, recipient_hash, now)
        _consume(token, recipient_hash, now)
    except OTPError as error:
        signals.otp_verification_failed.send(
            sender=OTPToken, token=token, error=error.code, recipient_hash=recipient_hash
        )
        raise
    _after_success(client, ask, token)
    return VerifyResult(
        usage=ask.usage, channel=ask.recipient.channel, recipient=ask.recipient.key, token=token
    )


def _find_token(
    client: OTPClient, ask: shape.VerifyRequest, recipient_hash: str, now: dt.datetime
) -> OTPToken:
    """The token, if it is this client's, this recipient's and this usage's, and not expired."""
    token = (
        OTPToken.objects.filter(token_hash=crypto.hash_token(ask.otp_token))
        .with_newer_flag()
        .first()
    )
    if (
        token is None
        or token.client_id != client.pk
        or not crypto.constant_time_equals(token.recipient_hash, recipient_hash)
        or token.usage != ask.usage
        or now >= token.expires_at
    ):
        raise InvalidOTPToken()
    return token


#: Deliveries that never reached the phone: a verify answers as for a failed delivery.
UNREACHED = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)


def _require_usable(
    token: OTPToken, ask: shape.VerifyRequest, recipient_hash: str, now: dt.datetime
) -> None:
    if token.status == TokenStatus.FAILED or token.delivery_status in UNREACHED:
        raise DeliveryFailed()
    if token.status == TokenStatus.LOCKED:
        raise TooManyAttempts()
    if token.status != TokenStatus.PENDING or token.has_newer:  # type: ignore[attr-defined]
        raise InvalidOTPToken()
    if token.is_test and identity.is_used(ask.recipient.channel, ask.recipient.key):
        # A test recipient's public fixed code never proves control of an account.
        raise InvalidOTPToken("This code was issued to a test recipient that is now an account's.")
    if RecipientThrottle.objects.is_locked(recipient_hash, now):
        raise TooManyAttempts("Too many wrong codes for this recipient. Try again later.")
    if now >= token.code_expires_at:
        raise OTPExpired()


def _require_code(token: OTPToken, otp: str, recipient_hash: str, now: dt.datetime) -> None:
    code = otp.strip()
    if not crypto.constant_time_equals(crypto.hash_code(token.token_hash, code), token.code_hash):
        _record_wrong_code(token, recipient_hash, now)


def _consume(token: OTPToken, recipient_hash: str, now: dt.datetime) -> None:
    max_attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    if not OTPToken.objects.mark_verified(token.pk, now=now, max_attempts=max_attempts):
        raise InvalidOTPToken()  # another request used it (or the last attempt) first
    RecipientThrottle.objects.reset(recipient_hash)
    token.status = TokenStatus.VERIFIED
    token.verified_at = now


def _after_success(client: OTPClient, ask: shape.VerifyRequest, token: OTPToken) -> None:
    recipient = ask.recipient
    # The person proved the address: sends spent on it by others no longer count.
    ratelimits.clear_recipient(
        recipient.channel,
        crypto.hash_recipient(identity.rate_limit_key(recipient.channel, recipient.key)),
        ask.usage,
        client.pk,
    )
    if not token.is_test:
        abuse.record_verification(
            abuse.phone_prefix(recipient.key) if recipient.channel == Channel.SMS else None,
            client.pk,
        )
    signals.otp_verified.send(
        sender=OTPToken,
        token=token,
        client=client,
        usage=ask.usage,
        channel=recipient.channel,
        recipient_masked=token.recipient_masked,
    )


def _record_wrong_code(token: OTPToken, recipient_hash: str, now: dt.datetime) -> NoReturn:
    """Count a wrong code against the token and the recipient, then refuse."""
    max_attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    with transaction.atomic():
        if not OTPToken.objects.count_wrong_attempt(token.pk, max_attempts=max_attempts):
            raise TooManyAttempts()
        RecipientThrottle.objects.count_failure(
            recipient_hash,
            now=now,
            max_failures=otp_settings.MAX_RECIPIENT_FAILURES,
            lockout=dt.timedelta(seconds=otp_settings.RECIPIENT_LOCKOUT_SECONDS),
        )
    remaining = max(0, max_attempts - (token.attempts + 1))
    raise InvalidOTP(attempts_remaining=remaining)
