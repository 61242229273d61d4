"""Every label value the metrics take, from fixed sets: a series per value, so none is free text.

Prometheus keeps one series per distinct label set for as long as it is
scraped; a label fed from input (a phone number, an error message) would
grow without bound. Channels, usages and error codes are the package's
own; backend names and client ids are what the site's admins configured.
"""

from __future__ import annotations

from ..models import Channel, Usage

CHANNELS = tuple(Channel.values)
USAGES = tuple(Usage.values)

#: ``ciam_otp_sends_total{outcome}``: queued for delivery, a reset for nobody, a test recipient.
SEND_OUTCOMES = ("queued", "suppressed", "test")
#: ``ciam_otp_deliveries_total{outcome}``.
DELIVERY_OUTCOMES = ("sent", "failed", "retry", "failover", "expired")
#: ``ciam_otp_receipts_total{outcome}``.
RECEIPT_OUTCOMES = ("delivered", "undelivered", "unknown", "repeated", "refused", "malformed")
#: ``ciam_otp_verifications_total{outcome}`` for a correct code (else the error code).
VERIFIED = "verified"
#: The reason or outcome of a call that ended in an unexpected exception (the HTTP
#: views answer it with ``{"error": "server_error"}`` and status 500).
SERVER_ERROR = "server_error"
#: ``ciam_otp_quota_*{client}`` of a site-wide quota (one with no client).
SITE_WIDE = "*"
