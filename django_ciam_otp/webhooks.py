"""``/otp/receipts/<name>/``: delivery receipts posted by SMS providers.

Each configured SMS backend that reads its provider's status callbacks
(``receives_receipts``) has a receipts URL named after it in ``SMS_BACKENDS``
(``/otp/receipts/twilio/``). The backend authenticates the request as its
provider documents (Twilio's ``X-Twilio-Signature``, a shared secret in the
URL for providers that sign nothing) *before* anything in the body is read:
anything else is answered 403 and changes nothing. An authentic receipt moves
the matching token (by the backend's name and the provider's message id
stored at send time) from ``sent`` to ``delivered`` or ``undelivered``, once:
a repeated receipt (a provider's retry, a replay) finds it moved and changes
nothing, and a receipt for an id nobody sent is acknowledged and ignored (a
provider retries whatever it is not acknowledged). An undelivered code answers
a verify as a failed delivery does (``invalid_otp_token``, "could not be
delivered"). Its quota is *not* given back: the provider billed the message,
and traffic that ends undelivered (pumping to dead numbers) is exactly what
quotas must keep capping.

Before any backend sees a request, bodies that no provider sends are refused
unread: multipart (its file parts would be spooled to disk before a signature
could be checked) and anything over :data:`MAX_BODY_BYTES`.
A receipt that arrives before the worker recorded the send (within
milliseconds of it) is "unknown" and ignored: providers report seconds later.

The signal ``otp_delivery_receipt`` fires for each receipt that moved a token.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import metrics, signals
from .backends.base import Receipt, ReceiptMalformed, ReceiptRefused
from .backends.routing import backend_named
from .models import OTPToken
from .views import ERROR_CONTENT_TYPE

logger = logging.getLogger(__name__)


#: The largest receipts body taken: Tencent's and Alibaba's batches stay well below it.
MAX_BODY_BYTES = 2 * 1024 * 1024

#: Messages this process logged once (a backend that cannot be built, per name).
_LOGGED: set[str] = set()


def _log_once(key: str, text: str, *args: object) -> None:
    if key not in _LOGGED:
        _LOGGED.add(key)
        logger.error(text + " (logged once per process)", *args)


def _error(status: int, error: str, description: str) -> JsonResponse:
    return JsonResponse(
        {"error": error, "error_description": description},
        status=status,
        content_type=ERROR_CONTENT_TYPE,
    )


@csrf_exempt  # providers authenticate with signatures or a shared secret, never cookies
def receipts(request: HttpRequest, backend: str) -> HttpResponse:
    """Take a provider's delivery receipts for the SMS backend called ``backend``."""
    if request.method != "POST":
        response = _error(405, "invalid_request", "Use POST.")
        response["Allow"] = "POST"
        return response
    if (request.content_type or "").startswith("multipart/"):
        return _error(415, "invalid_request", "Receipts are JSON or form-encoded.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_BODY_BYTES + 1
    if length > MAX_BODY_BYTES:
        return _error(413, "invalid_request", "The body is too large.")
    try:
        entry = backend_named(backend)
        instance = entry.build() if entry is not None else None
    except (ImproperlyConfigured, ImportError) as exc:  # the provider retries once it is fixed
        _log_once(f"build:{backend}", "Delivery receipts for %s not taken: %s", backend, exc)
        return _error(503, "temporarily_unavailable", "This backend is not configured.")
    if instance is None or not instance.receives_receipts:
        return _error(404, "invalid_request", "No SMS backend of that name takes receipts.")
    try:
        found = instance.parse_receipts(request)
    except ReceiptRefused as exc:  # counted; logged at INFO: anyone can send these
        logger.info("Delivery receipt for %s refused: %s", backend, exc)
        metrics.receipt(backend, "refused")
        return _error(403, "access_denied", "Not a receipt from this backend's provider.")
    except ReceiptMalformed as exc:
        metrics.receipt(backend, "malformed")
        return _error(400, "invalid_request", f"Unreadable receipt: {exc}"[:200])
    for receipt in found:
        record(backend, receipt)
    return instance.receipts_response(request, found)


def record(backend: str, receipt: Receipt) -> str:
    """Apply one authentic receipt; its outcome (``delivered``, ``undelivered``, ``repeated``,
    ``unknown``)."""
    now = timezone.now()
    outcome, token = OTPToken.objects.record_receipt(
        backend=backend,
        message_id=receipt.message_id,
        delivered=receipt.delivered,
        status=receipt.status,
        now=now,
    )
    latency = None
    if outcome in ("delivered", "undelivered") and token is not None and token.sent_at:
        latency = max(0.0, ((receipt.reported_at or now) - token.sent_at).total_seconds())
    metrics.receipt(backend, outcome, latency)
    if token is None or outcome == "repeated":
        return outcome
    if outcome == "undelivered":
        logger.warning(
            "OTP undelivered: token %s through %s: %s", token.pk, backend, receipt.status
        )
    signals.otp_delivery_receipt.send(
        sender=OTPToken, token=token, delivered=receipt.delivered, status=receipt.status
    )
    return outcome
