"""Signals for auditing. None of them ever carries a code or a plain recipient.

``otp_sent(sender, token, client, usage, channel, recipient_masked, suppressed)``
    after a token was stored and its delivery queued; ``suppressed`` is true for
    a ``reset_password`` to a recipient with no account (nothing is sent).
``otp_verified(sender, token, client, usage, channel, recipient_masked)``
    after a code was accepted (and consumed).
``otp_verification_failed(sender, token, error, recipient_hash)``
    after a refused verification; ``error`` is the public error code and
    ``token`` is ``None`` when no matching token was found.
``otp_delivery_failed(sender, token, reason)``
    when a delivery failed for good (its quota has been given back).
``otp_delivery_receipt(sender, token, delivered, status)``
    when a provider's delivery receipt moved a token's delivery to
    ``delivered`` (``delivered=True``) or ``undelivered`` (the code can no
    longer be verified; its quota stays used: the provider billed it);
    ``status`` is the provider's own code. Repeated receipts do not fire it again.
``prefix_blocked(sender, blocked_prefix, stats)``
    when the conversion monitor blocks a phone number prefix; ``stats`` has
    ``sends``, ``verifications`` and ``ratio`` over the window.
``quota_threshold_reached(sender, quota, percent, used, limit)``
    once per period when a quota reaches one of ``QUOTA_ALARM_THRESHOLDS``.
``pumping_mode_changed(sender, tightened, reason, signals)``
    when the site-wide view (``sitewide.py``) tightens sends to unproven
    prefixes, or ends that mode; ``signals`` holds the window's counts.
``delivery_backend_stopped(sender, stop)``
    when a backend answered that it cannot send anything until an operator
    acts (credentials, arrears, template…); ``stop`` is a
    :class:`~django_ciam_otp.breaker.Stop` (channel, backend, code, reason, until).
"""

from django.dispatch import Signal

otp_sent = Signal()
otp_verified = Signal()
otp_verification_failed = Signal()
otp_delivery_failed = Signal()
otp_delivery_receipt = Signal()
prefix_blocked = Signal()
quota_threshold_reached = Signal()
delivery_backend_stopped = Signal()
pumping_mode_changed = Signal()
