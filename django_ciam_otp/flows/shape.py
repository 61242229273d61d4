"""Step 1 of a send or a verification: the arguments' shape, before any look-up.

Every string is checked to be text that can be stored and hashed (JSON's
``"\\ud800"`` decodes to a lone surrogate, which no database, cache or hash
takes as UTF-8), so no later step can fail with a 500 on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidRequest
from ..models import OTPToken, Usage
from ..validators import Recipient, normalize_email, normalize_phone_number

USAGES = frozenset(Usage.values)
LANGUAGE_MAX_LENGTH = OTPToken._meta.get_field("language").max_length or 16
#: Longer than any token this package issues; refused before hashing.
OTP_TOKEN_MAX_LENGTH = 512


@dataclass(frozen=True)
class SendRequest:
    """A send's arguments, checked and normalised."""

    usage: str
    recipient: Recipient
    auth_source_id: str | None
    language: str | None


@dataclass(frozen=True)
class VerifyRequest:
    """A verification's arguments, checked and normalised."""

    otp_token: str
    otp: str
    usage: str
    recipient: Recipient


def text(name: str, value: Any) -> str:
    """``value`` when it is text that can be stored and hashed, else ``InvalidRequest``."""
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"'{name}' is not valid Unicode text.") from None
    return value


def optional_text(name: str, value: Any) -> str | None:
    return None if value is None else text(name, value)


def parse_usage(usage: Any) -> str:
    name = optional_text("usage", usage)
    if name is None:
        return Usage.LOGIN
    if name not in USAGES:
        raise InvalidRequest(
            "'usage' must be one of login, signup, update_userinfo, reset_password."
        )
    return name


def parse_recipient(phone_number: Any, email: Any) -> Recipient:
    """Exactly one of the two, in its canonical form (E.164, or the email's)."""
    phone_number = optional_text("phone_number", phone_number)
    email = optional_text("email", email)
    if (phone_number is None) == (email is None):
        raise InvalidRequest("Give exactly one of 'phone_number' and 'email'.")
    if phone_number is not None:
        return normalize_phone_number(phone_number)
    assert email is not None
    return normalize_email(email)


def parse_send(
    *,
    usage: Any,
    phone_number: Any,
    email: Any,
    auth_source_id: Any,
    language: Any,
) -> SendRequest:
    """The contract's order: every field's shape first, the recipient's content last."""
    usage = parse_usage(usage)
    auth_source_id = optional_text("auth_source_id", auth_source_id) or None
    language = optional_text("language", language)
    if language is not None and len(language) > LANGUAGE_MAX_LENGTH:
        raise InvalidRequest(f"'language' must be a language code ({LANGUAGE_MAX_LENGTH} chars).")
    optional_text("phone_number", phone_number)
    optional_text("email", email)
    if (phone_number is None) == (email is None):
        raise InvalidRequest("Give exactly one of 'phone_number' and 'email'.")
    if usage == Usage.LOGIN and auth_source_id is None:
        raise InvalidRequest("'auth_source_id' is required for usage=login.")
    return SendRequest(usage, parse_recipient(phone_number, email), auth_source_id, language)


def parse_verify(
    *, otp_token: Any, otp: Any, usage: Any, phone_number: Any, email: Any
) -> VerifyRequest:
    if not isinstance(otp_token, str) or not otp_token or len(otp_token) > OTP_TOKEN_MAX_LENGTH:
        raise InvalidRequest("'otp_token' must be a non-empty string.")
    if not isinstance(otp, str) or not otp:
        raise InvalidRequest("'otp' must be a non-empty string.")
    text("otp_token", otp_token)
    text("otp", otp)
    usage = parse_usage(usage)
    return VerifyRequest(otp_token, otp, usage, parse_recipient(phone_number, email))
