"""The contract's error codes, said in words a person understands.

The pages never show ``error_description`` (written for developers, in
English); each public ``error`` code maps to one translated sentence here.
"""

from __future__ import annotations

from django.utils.functional import Promise
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


def describe(error: OTPError) -> str:
    """One sentence for ``error``, in the active language."""
    if isinstance(error, RateLimited):
        wait = {"wait": wait_text(error.retry_after)}
        if error.code == "sms_rate_limit_exceeded":
            return (
                gettext("Please wait %(wait)s before asking for another code for this number.")
                % wait
            )
        if error.code == "email_rate_limit_exceeded":
            return (
                gettext("Please wait %(wait)s before asking for another code for this address.")
                % wait
            )
        return gettext("Too many requests. Please try again in %(wait)s.") % wait
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
