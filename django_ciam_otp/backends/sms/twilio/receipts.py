"""Twilio's message status callbacks: authenticated by signature, then read.

Twilio signs each callback with the account's Auth Token: ``X-Twilio-Signature``
is the base64 HMAC-SHA1 of the URL it called followed by the sorted POST
parameters (https://www.twilio.com/docs/usage/webhooks/webhooks-security). The
SDK's ``RequestValidator`` computes it. Nothing in the body decides anything
before the signature is checked: a request without one, or without an Auth
Token to check it with, is refused unread.

The URL must be the one Twilio called (the SDK forgives only a default port). ``STATUS_CALLBACK`` is
that URL when it is set (it is what each message asked Twilio to call); else
the request's own absolute URL, which behind a proxy is only right when Django
knows the public host and scheme (``USE_X_FORWARDED_HOST``,
``SECURE_PROXY_SSL_HEADER``).

Statuses (the Message resource, https://www.twilio.com/docs/messaging/api/message-resource):
``delivered`` and, as failures, ``undelivered`` and ``failed`` are final and
make a receipt. ``queued``, ``accepted``, ``scheduled``, ``sending`` and
``sent`` are steps on the way (Twilio calls again when the message moves on);
``read`` follows ``delivered`` on channels that report it; ``canceled`` only
happens to scheduled messages, which this backend never sends; any other
(``partially_delivered``, statuses Twilio adds later) is not an outcome this
app records. None of these make a receipt.

Twilio sends no time of the outcome with a timezone (``RawDlrDoneDate`` is the
carrier's local minute, of unknown offset), so ``reported_at`` stays ``None``.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.http.multipartparser import MultiPartParserError

from ...base import Receipt, ReceiptMalformed, ReceiptRefused

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger("django_ciam_otp.backends.sms.twilio")

SIGNATURE_HEADER = "X-Twilio-Signature"
#: Present when a Webhook Rule signs with a SharedKey instead of the Auth Token
#: (https://www.twilio.com/docs/usage/webhooks/webhook-shared-keys): not supported.
SHARED_KEY_HEADER = "X-Twilio-Webhooks-Signature-Settings"

DELIVERED = "delivered"
NOT_DELIVERED = frozenset({"undelivered", "failed"})


def authenticate(
    request: HttpRequest, auth_token: str | None, url: str, sdk: dict[str, ModuleType]
) -> None:
    """Raise ``ReceiptRefused`` unless ``request`` carries Twilio's signature for ``url``."""
    if request.method != "POST":
        raise ReceiptRefused("Twilio posts status callbacks")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise ReceiptRefused(f"no {SIGNATURE_HEADER}")
    if not auth_token:
        logger.warning(
            'Twilio status callback refused: TWILIO_SMS["AUTH_TOKEN"] is not set, so its '
            "signature cannot be checked"
        )
        raise ReceiptRefused("no AUTH_TOKEN to check the signature with")
    if request.content_type != "application/x-www-form-urlencoded":
        # Twilio posts forms; anything else (multipart above all, whose files would be
        # spooled to disk) is refused before its body is parsed.
        raise ReceiptRefused("not a form-encoded body")
    try:
        params = request.POST
    except MultiPartParserError:
        raise ReceiptRefused("a body that cannot be read, so cannot be checked") from None
    validator = sdk["request_validator"].RequestValidator(str(auth_token))
    if not validator.validate(url, params, signature):
        if request.headers.get(SHARED_KEY_HEADER):
            logger.warning(
                "Twilio status callback refused: it is signed with a Webhook SharedKey, "
                "which this backend does not check; sign the receipts URL with the Auth Token"
            )
        raise ReceiptRefused("invalid signature")


def read(request: HttpRequest) -> list[Receipt]:
    """The receipt in an authentic callback's form (none for an intermediate status)."""
    form: Any = request.POST
    message_id = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not message_id or not status:
        raise ReceiptMalformed("no MessageSid or MessageStatus")
    if status == DELIVERED:
        return [Receipt(message_id=message_id, delivered=True, status=status)]
    if status in NOT_DELIVERED:
        error_code = (form.get("ErrorCode") or "").strip()
        return [Receipt(message_id=message_id, delivered=False, status=error_code or status)]
    return []
