"""The contract's error codes, said in words a person understands.

The pages never show ``error_description`` (written for developers, in
English); each public ``error`` code maps to one translated sentence here.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_ciam_otp.exceptions import DeliveryFailed, InvalidOTP, OTPError, RateLimited

SITE_NOT_READY = _("This site is not set up to send codes yet. Please try again later.")

MESSAGES: dict[str, str | Promise] = {
    "invalid_client": SITE_NOT_READY,
    "invalid_request": _("Please check what you entered and try again."),
    "malformed_phone_number": _("Enter a mainland China mobile number, for example 136 1234 5678."),
    "malformed_email": _("Enter a valid email address, for example name@example.com."),
    "invalid_email": _("We cannot send email to this address. Please use another one."),
    "invalid_auth_source": _("Logging in with a code is not set up on this site yet."),
    "phone_number_is_used": _("This mobile number already belongs to an account."),
    "email_is_used": _("This email address already belongs to an account."),
    "insufficient_sms_quota": _(
        "We cannot send text messages at the moment. Please use your email address or try "
        "again later."
    ),
    "insufficient_email_quota": _(
        "We cannot send emails at the moment. Please use your mobile number or try again later."
    ),
    "temporarily_unavailable": _(
        "We could not send the code just now. Please try again in a minute."
    ),
    "invalid_otp_token": _("This code can no longer be used. Please ask for a new code."),
    "otp_expired": _("This code has expired. Please ask for a new code."),
    "too_many_attempts": _("Too many wrong codes. Please ask for a new code, or try again later."),
}

GENERIC = _("Something went wrong. Please try again.")


def wait_text(seconds: int) -> str:
    """``27 seconds``, ``3 minutes``, ``2 hours``: a wait rounded up to one unit."""
    seconds = max(1, int(seconds))
    if seconds < 120:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    minutes = -(-seconds // 60)
    if minutes < 120:
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    hours = -(-minutes // 60)
    return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}


def _wait_template(code: str) -> str:
    if code == "sms_rate_limit_exceeded":
        return gettext("Please wait %(wait)s before asking for another code for this number.")
    if code == "email_rate_limit_exceeded":
        return gettext("Please wait %(wait)s before asking for another code for this address.")
    return gettext("Too many requests. Please try again in %(wait)s.")


def live_wait(seconds: int) -> SafeString:
    """``wait_text(seconds)`` in a span that demo.js counts down (``{% countdown_units %}``)."""
    return format_html(
        '<span class="countdown" data-countdown="{}">{}</span>', seconds, wait_text(seconds)
    )


def wait_sentence(code: str, seconds: int) -> SafeString:
    """A rate limit's sentence whose wait counts down in the page (no frozen number)."""
    return mark_safe(escape(_wait_template(code)) % {"wait": live_wait(seconds)})  # noqa: S308


def validity_text(seconds: int) -> str:
    """``1 minute``, ``90 seconds``, ``5 minutes``: how long a code is valid."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds // 60
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    return wait_text(seconds)


def code_help(length: int, validity: int) -> str:
    """What the code box expects, from the auth source: "6-digit code, valid for 1 minute."."""
    valid = validity_text(validity)
    if not length:
        return gettext("The code in the message, valid for %(valid)s.") % {"valid": valid}
    return gettext("%(length)d-digit code, valid for %(valid)s.") % {
        "length": length,
        "valid": valid,
    }


#: Why a code can no longer be entered (flows.PendingCode.dead), said to the person.
DEAD_CODES = {"invalid_otp", "too_many_attempts", "otp_expired", "invalid_otp_token"}


def dead_code(error: OTPError) -> str | None:
    """The error code when ``error`` means the code cannot be entered again, else ``None``."""
    if isinstance(error, DeliveryFailed):
        return "delivery_failed"
    if isinstance(error, InvalidOTP):
        left = error.extra.get("attempts_remaining")
        return "invalid_otp" if isinstance(left, int) and left <= 0 else None
    return error.code if error.code in DEAD_CODES else None


def dead_sentence(code: str) -> str:
    if code == "delivery_failed":
        return gettext("We could not deliver this code. Please ask for a new one.")
    if code == "invalid_otp":
        return gettext("That code is not right. Please ask for a new code.")
    return str(MESSAGES.get(code, GENERIC))


def describe(error: OTPError) -> str:
    """One sentence for ``error``, in the active language."""
    if isinstance(error, RateLimited):
        return _wait_template(error.code) % {"wait": wait_text(error.retry_after)}
    if isinstance(error, InvalidOTP):
        left = error.extra.get("attempts_remaining")
        if isinstance(left, int) and left > 0:
            return ngettext(
                "That code is not right. You can try %(n)d more time.",
                "That code is not right. You can try %(n)d more times.",
                left,
            ) % {"n": left}
        return gettext("That code is not right. Please ask for a new code.")
    if isinstance(error, DeliveryFailed):
        return gettext("We could not deliver this code. Please ask for a new one.")
    return str(MESSAGES.get(error.code, GENERIC))
