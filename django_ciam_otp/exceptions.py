"""Errors of the contract, raised by the flows and turned into JSON by the views.

Each class carries the public ``error`` code, the HTTP status and an optional
description, so the Python API (``send_otp``/``verify_otp``) and the HTTP API
report the same failure the same way.
"""

from __future__ import annotations

from typing import Any


class OTPError(Exception):
    """Base class: ``code`` is the public ``error`` value of SPEC.md."""

    code: str = "invalid_request"
    status: int = 400
    default_description: str | None = None

    def __init__(self, description: str | None = None, **extra: Any) -> None:
        self.description = description if description is not None else self.default_description
        self.extra = extra
        super().__init__(self.description or self.code)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code}
        if self.description:
            body["error_description"] = self.description
        body.update(self.extra)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, description={self.description!r})"


class InvalidClient(OTPError):
    code = "invalid_client"
    status = 401
    default_description = "Client authentication failed."


class InvalidRequest(OTPError):
    code = "invalid_request"


class InvalidAuthSource(OTPError):
    code = "invalid_auth_source"


class MalformedPhoneNumber(OTPError):
    code = "malformed_phone_number"


class MalformedEmail(OTPError):
    code = "malformed_email"


class InvalidEmail(OTPError):
    code = "invalid_email"


class PhoneNumberIsUsed(OTPError):
    code = "phone_number_is_used"


class EmailIsUsed(OTPError):
    code = "email_is_used"


class RateLimited(OTPError):
    """A limit was hit; ``retry_after`` seconds tell when to try again."""

    def __init__(self, retry_after: int, description: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(description, retry_after=self.retry_after)


class SMSRateLimitExceeded(RateLimited):
    code = "sms_rate_limit_exceeded"
    default_description = "SMS rate limit exceeded for same phone number"


class EmailRateLimitExceeded(RateLimited):
    code = "email_rate_limit_exceeded"
    default_description = "Email rate limit exceeded for same email address"


class RateLimitExceeded(RateLimited):
    code = "rate_limit_exceeded"
    status = 429
    default_description = "Too many requests. Please slow down."


class InsufficientSMSQuota(OTPError):
    code = "insufficient_sms_quota"


class InsufficientEmailQuota(OTPError):
    code = "insufficient_email_quota"


class TemporarilyUnavailable(OTPError):
    code = "temporarily_unavailable"
    status = 503
    default_description = "Failed to send OTP. Please try again later."


class InvalidOTPToken(OTPError):
    code = "invalid_otp_token"
    default_description = "The otp_token is unknown, expired or was issued for another request."


class InvalidOTP(OTPError):
    code = "invalid_otp"
    default_description = "The verification code is wrong."


class OTPExpired(OTPError):
    code = "otp_expired"
    default_description = "The verification code has expired. Request a new one."


class TooManyAttempts(OTPError):
    code = "too_many_attempts"
    default_description = "Too many wrong codes. Request a new one later."


class DeliveryFailed(InvalidOTPToken):
    """The code could not be delivered for good; verification says so plainly.

    It keeps the public ``invalid_otp_token`` code (the contract has no other
    for it) and explains itself in ``error_description``.
    """

    default_description = "The verification code could not be delivered. Request a new one."
