"""Email backend that delivers through Django's own email framework.

Sites already configure ``EMAIL_BACKEND`` (SMTP, django-anymail, the console or
file backends in development), so codes go out the same way as every other
email the site sends; this backend only builds the message and classifies
failures. The subject, text and HTML bodies come from templates that sites can
override (see :mod:`django_ciam_otp.rendering`).
"""

from __future__ import annotations

import smtplib
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.utils import DNS_NAME

from ... import rendering
from ..base import BaseBackend, OTPMessage, PermanentDeliveryError, TransientDeliveryError
from ..settings import backend_setting


class EmailBackend(BaseBackend):
    """Send the code as a text email with an HTML alternative.

    Options (keyword arguments): ``from_email`` overrides
    ``CIAM_OTP["EMAIL_FROM"]`` / ``DEFAULT_FROM_EMAIL``; ``email_backend`` is a
    dotted path to a Django email backend to use instead of ``EMAIL_BACKEND``
    (e.g. a transactional provider for codes only).

    Returns the ``Message-ID`` header it set, the one id every email backend
    and mail server keeps, so a bounce or a server log line can be matched to
    the token.
    """

    def __init__(self, *, email_backend: str | None = None, **kwargs: Any) -> None:
        self.from_email: str | None = backend_setting(
            "from_email", backend=self, kwargs=kwargs, setting="EMAIL_FROM", default=None
        )
        super().__init__(**kwargs)
        self.email_backend = email_backend

    def get_from_email(self) -> str:
        """``from_email`` or ``CIAM_OTP["EMAIL_FROM"]`` (read at construction), else Django's."""
        return self.from_email or settings.DEFAULT_FROM_EMAIL

    def build_message(self, message: OTPMessage) -> EmailMultiAlternatives:
        subject, text, html = rendering.render_email(message)
        # Django's cached host name, as Django uses itself: make_msgid() alone
        # would look the FQDN up in DNS on every message.
        message_id = make_msgid(domain=str(DNS_NAME))
        email = EmailMultiAlternatives(
            subject=subject,
            body=text,
            from_email=self.get_from_email(),
            to=[message.recipient],
            headers={
                "Message-ID": message_id,
                # RFC 3834: no out-of-office or vacation replies to a code.
                "Auto-Submitted": "auto-generated",
            },
            # None lets Django pick its configured backend (EMAIL_BACKEND, or
            # MAILERS on Django >= 6.1, where get_connection() is deprecated).
            connection=(
                get_connection(self.email_backend, fail_silently=False)
                if self.email_backend
                else None
            ),
        )
        email.attach_alternative(html, "text/html")
        return email

    def describe(self) -> str:
        """This backend, the Django email backend behind it and, for SMTP, its host and port."""
        path = self.email_backend or str(getattr(settings, "EMAIL_BACKEND", "") or "")
        where = f"{super().describe()} via {path}"
        if "smtp" in path.lower():
            host = getattr(settings, "EMAIL_HOST", "")
            port = getattr(settings, "EMAIL_PORT", "")
            where += f" ({host}:{port})"
        return where

    def send(self, message: OTPMessage) -> str:
        email = self.build_message(message)
        try:
            sent = email.send(fail_silently=False)
        except Exception as exc:
            raise classify_error(exc) from exc
        if sent == 0:
            # Django's backends return how many messages went out; 0 means the
            # backend swallowed a failure (e.g. a third-party one ignoring
            # fail_silently). Retrying is the safe guess.
            raise TransientDeliveryError("email backend reported that nothing was sent")
        return str(email.extra_headers["Message-ID"])


def _is_permanent_smtp_code(code: int | None) -> bool:
    """SMTP reply classes (RFC 5321 4.2.1): 5yz is permanent, 4yz is transient."""
    return code is not None and 500 <= code < 600


def classify_error(exc: BaseException) -> PermanentDeliveryError | TransientDeliveryError:
    """Map an exception from an email backend to a delivery error.

    Permanent only when the server said so (a 5xx reply), when credentials or
    server features are wrong, or when the message itself is invalid; anything
    else (connection refused, timeouts, disconnects, 4xx replies such as
    greylisting) is worth a retry. Reasons never include the message body.
    """
    name = type(exc).__name__
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = ", ".join(str(code) for code in codes)
        if codes and all(_is_permanent_smtp_code(code) for code in codes):
            return PermanentDeliveryError(
                f"recipient refused by mail server ({detail})", provider_code=str(codes[0])
            )
        return TransientDeliveryError(
            f"recipient temporarily refused by mail server ({detail})",
            provider_code=str(codes[0]) if codes else None,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return PermanentDeliveryError(
            f"mail server rejected the credentials ({exc.smtp_code})",
            provider_code=str(exc.smtp_code),
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        # SMTPSenderRefused, SMTPDataError, SMTPHeloError, SMTPConnectError ...
        label = "sender refused" if isinstance(exc, smtplib.SMTPSenderRefused) else name
        error: type[PermanentDeliveryError] | type[TransientDeliveryError] = (
            PermanentDeliveryError
            if _is_permanent_smtp_code(exc.smtp_code)
            else TransientDeliveryError
        )
        return error(f"{label} ({exc.smtp_code})", provider_code=str(exc.smtp_code))
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"mail server does not support a required feature: {exc}")
    if isinstance(exc, (smtplib.SMTPException, OSError)):
        # Disconnects, connection refused, DNS failures, timeouts (all OSErrors).
        return TransientDeliveryError(f"could not reach the mail server ({name})")
    if isinstance(exc, ValueError):
        # BadHeaderError and invalid addresses: the same message fails again.
        return PermanentDeliveryError(f"message could not be built ({name})")
    return TransientDeliveryError(f"email backend failed ({name})")
