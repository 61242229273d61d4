"""The metric objects, created and registered once per process on first import.

Only :mod:`django_ciam_otp.metrics` imports this module, and only once it has
decided to record (``METRICS`` on and prometheus-client importable), so a site
without prometheus-client never imports it. Python runs a module once, which
is the guard against registering twice in ``prometheus_client.REGISTRY``:
registering there is what lets django-prometheus's ``/metrics`` (or any other
exporter of the default registry) show them with no work from the site.

Label sets whose every value is known here are created at zero up front, so
the series exist from the first scrape and ``rate()`` sees the first event
(Prometheus' instrumentation guide: "avoid missing metrics").
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Histogram

from ..exceptions import (
    EmailIsUsed,
    EmailRateLimitExceeded,
    InsufficientEmailQuota,
    InsufficientSMSQuota,
    InvalidAuthSource,
    InvalidClient,
    InvalidEmail,
    InvalidOTP,
    InvalidOTPToken,
    InvalidRequest,
    MalformedEmail,
    MalformedPhoneNumber,
    OTPExpired,
    PhoneNumberIsUsed,
    RateLimitExceeded,
    SMSRateLimitExceeded,
    TemporarilyUnavailable,
    TooManyAttempts,
)
from .collectors import DatabaseCollector
from .labels import CHANNELS, SEND_OUTCOMES, SERVER_ERROR, USAGES, VERIFIED

#: Queued → accepted by the provider: an API call, or a retry's backoff on top.
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60)
#: Accepted → the provider's receipt: seconds when all is well, an hour when not.
RECEIPT_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)

#: The codes a send can be refused with (and ``server_error``): created at zero.
SEND_REFUSALS = tuple(
    error.code
    for error in (
        InvalidClient,
        InvalidRequest,
        InvalidAuthSource,
        MalformedPhoneNumber,
        MalformedEmail,
        InvalidEmail,
        PhoneNumberIsUsed,
        EmailIsUsed,
        SMSRateLimitExceeded,
        EmailRateLimitExceeded,
        RateLimitExceeded,
        InsufficientSMSQuota,
        InsufficientEmailQuota,
        TemporarilyUnavailable,
    )
) + (SERVER_ERROR,)
#: A verification's answers: created at zero.
VERIFY_OUTCOMES = (VERIFIED, SERVER_ERROR) + tuple(
    error.code
    for error in (
        InvalidClient,
        InvalidRequest,
        MalformedPhoneNumber,
        MalformedEmail,
        InvalidOTPToken,
        InvalidOTP,
        OTPExpired,
        TooManyAttempts,
    )
)


@dataclass(frozen=True)
class Instruments:
    sends: Counter
    refusals: Counter
    deliveries: Counter
    delivery_latency: Histogram
    receipts: Counter
    receipt_latency: Histogram
    verifications: Counter


def _create() -> Instruments:
    made = Instruments(
        sends=Counter(
            "ciam_otp_sends",
            "Sends accepted (a 200 answer), by channel, usage and outcome "
            "(queued for delivery, suppressed reset for nobody, test recipient).",
            ["channel", "usage", "outcome"],
        ),
        refusals=Counter(
            "ciam_otp_send_refusals",
            "Sends refused, by the public error code of the answer.",
            ["reason"],
        ),
        deliveries=Counter(
            "ciam_otp_deliveries",
            "Delivery attempts' outcomes (sent, failed, retry, failover, expired).",
            ["backend", "channel", "outcome"],
        ),
        delivery_latency=Histogram(
            "ciam_otp_delivery_latency_seconds",
            "Seconds from queued to accepted by the provider, for sent messages.",
            ["backend"],
            buckets=DELIVERY_BUCKETS,
        ),
        receipts=Counter(
            "ciam_otp_receipts",
            "Delivery receipts (status callbacks) received, by outcome.",
            ["backend", "outcome"],
        ),
        receipt_latency=Histogram(
            "ciam_otp_receipt_latency_seconds",
            "Seconds from accepted by the provider to its delivered/undelivered receipt.",
            ["backend"],
            buckets=RECEIPT_BUCKETS,
        ),
        verifications=Counter(
            "ciam_otp_verifications",
            "Verifications, by outcome: verified or the public error code of the answer.",
            ["outcome"],
        ),
    )
    for channel in CHANNELS:
        for usage in USAGES:
            for outcome in SEND_OUTCOMES:
                made.sends.labels(channel, usage, outcome)
    for reason in SEND_REFUSALS:
        made.refusals.labels(reason)
    for outcome in VERIFY_OUTCOMES:
        made.verifications.labels(outcome)
    REGISTRY.register(DatabaseCollector())
    return made


INSTRUMENTS = _create()
