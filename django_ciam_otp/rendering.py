"""Message text for SMS and email, from templates that sites can override.

Rendering happens in the worker, in the language the request asked for
(stored on the token), so a Chinese user gets a Chinese text.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import translation

from .backends.base import OTPMessage
from .conf import otp_settings


def render_sms_text(message: OTPMessage) -> str:
    """The SMS text: the code, what it is for, how long it is valid.

    With ``SMS_WEBOTP_DOMAIN`` set, a last line ``@<domain> #<code>`` follows
    (the WebOTP format, https://wicg.github.io/sms-one-time-codes/): templates
    get the domain as ``webotp_domain``.
    """
    context = {**message.template_context(), "webotp_domain": otp_settings.SMS_WEBOTP_DOMAIN}
    with translation.override(message.language or None):
        return render_to_string(
            [f"django_ciam_otp/sms/{message.usage}.txt", "django_ciam_otp/sms/message.txt"],
            context,
        ).strip()


def render_email(message: OTPMessage) -> tuple[str, str, str]:
    """``(subject, text body, HTML body)`` for an email code."""
    context = message.template_context()
    with translation.override(message.language or None):
        subject = render_to_string(
            [
                f"django_ciam_otp/email/{message.usage}_subject.txt",
                "django_ciam_otp/email/subject.txt",
            ],
            context,
        )
        text = render_to_string(
            [f"django_ciam_otp/email/{message.usage}.txt", "django_ciam_otp/email/message.txt"],
            context,
        )
        html = render_to_string(
            [f"django_ciam_otp/email/{message.usage}.html", "django_ciam_otp/email/message.html"],
            context,
        )
    return " ".join(subject.split()), text, html
