"""Auth sources, API clients, quotas and one-time-code tokens.

Nothing secret is stored in the clear: client secrets, otp_tokens, codes and
recipients are kept as keyed hashes (see ``crypto.py``); the admin sees a
masked recipient only.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import crypto, identity
from .managers import (
    EPOCH,
    BlockedPrefixQuerySet,
    DeliveryStatus,
    OTPClientQuerySet,
    OTPTokenQuerySet,
    QuotaPeriod,
    QuotaQuerySet,
    RecipientThrottleQuerySet,
    TokenStatus,
    period_start_for,
)

__all__ = [
    "AuthSource",
    "BlockedPrefix",
    "Channel",
    "DeliveryStatus",
    "OTPClient",
    "OTPToken",
    "Quota",
    "QuotaPeriod",
    "RecipientThrottle",
    "TestRecipient",
    "TokenStatus",
    "Usage",
    "period_start_for",
]


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")


class Usage(models.TextChoices):
    LOGIN = "login", _("Log in")
    SIGNUP = "signup", _("Sign up")
    UPDATE_USERINFO = "update_userinfo", _("Update user information")
    RESET_PASSWORD = "reset_password", _("Reset password")


CODE_LENGTH_MIN, CODE_LENGTH_MAX = 4, 10
CODE_VALIDITY_MIN, CODE_VALIDITY_MAX = 10, 3600


class AuthSource(models.Model):
    """A configured way to log in by code: its channel, code length and code validity."""

    id = models.CharField(
        _("ID"),
        primary_key=True,
        max_length=64,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9_.\-]+$",
                _("Use letters, digits, underscores, dots and hyphens only."),
            )
        ],
        help_text=_("Public identifier that API callers send as auth_source_id."),
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    code_length = models.PositiveSmallIntegerField(
        _("code length"),
        default=6,
        validators=[MinValueValidator(CODE_LENGTH_MIN), MaxValueValidator(CODE_LENGTH_MAX)],
        help_text=_(
            "Digits in each code, 4 to 10. Below 6 is weak (NIST SP 800-63B asks ≥ 20 bits)."
        ),
    )
    code_validity = models.PositiveIntegerField(
        _("code validity (seconds)"),
        default=60,
        validators=[MinValueValidator(CODE_VALIDITY_MIN), MaxValueValidator(CODE_VALIDITY_MAX)],
        help_text=_("How long a code can be used after it is sent."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("auth source")
        verbose_name_plural = _("auth sources")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code_length__gte=CODE_LENGTH_MIN, code_length__lte=CODE_LENGTH_MAX),
                name="ciam_otp_authsource_code_length_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    code_validity__gte=CODE_VALIDITY_MIN, code_validity__lte=CODE_VALIDITY_MAX
                ),
                name="ciam_otp_authsource_code_validity_range",
            ),
        ]

    def __str__(self) -> str:
        return self.id


class OTPClient(models.Model):
    """An API client that authenticates with HTTP Basic (client_id, client_secret).

    Django REST framework sets ``request.user`` to the authenticated client, so
    it answers the two questions DRF asks of a user.
    """

    name = models.CharField(_("name"), max_length=100)
    client_id = models.CharField(_("client ID"), max_length=255, unique=True)
    secret_hash = models.CharField(_("secret hash"), max_length=64, editable=False)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    secret_rotated_at = models.DateTimeField(_("secret set"), null=True, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    objects = OTPClientQuerySet.as_manager()

    is_authenticated = True
    is_anonymous = False

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name or self.client_id

    def set_secret(self, raw_secret: str | None = None) -> str:
        """Store a new secret's hash and return the raw secret, which is not kept."""
        raw = raw_secret if raw_secret is not None else crypto.new_client_secret()
        self.secret_hash = crypto.keyed_hash(crypto.PURPOSE_CLIENT_SECRET, raw)
        self.secret_rotated_at = timezone.now()
        return raw

    def check_secret(self, raw_secret: str) -> bool:
        return crypto.hash_matches(crypto.PURPOSE_CLIENT_SECRET, raw_secret, self.secret_hash)


class Quota(models.Model):
    """How many messages a client (or the whole site, ``client=None``) may send on a channel.

    Consumption is one conditional UPDATE (``Quota.objects.consume()``), never
    a read followed by a write, so concurrent sends can not over-send.
    """

    client = models.ForeignKey(
        OTPClient,
        verbose_name=_("client"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quotas",
        help_text=_("Leave empty for a site-wide quota."),
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    limit = models.PositiveBigIntegerField(_("limit"))
    period = models.CharField(
        _("period"), max_length=8, choices=QuotaPeriod.choices, default=QuotaPeriod.NONE
    )
    used = models.PositiveBigIntegerField(_("used"), default=0)
    period_start = models.DateTimeField(_("period start"), default=EPOCH)
    #: Highest alarm threshold (percent) already reported in ``alarm_period_start``'s period.
    alarm_level = models.PositiveSmallIntegerField(_("alarm level"), default=0, editable=False)
    alarm_period_start = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = QuotaQuerySet.as_manager()

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")
        constraints = [
            models.UniqueConstraint(
                fields=["client", "channel"],
                condition=Q(client__isnull=False),
                name="ciam_otp_quota_one_per_client_channel",
            ),
            models.UniqueConstraint(
                fields=["channel"],
                condition=Q(client__isnull=True),
                name="ciam_otp_quota_one_sitewide_per_channel",
            ),
        ]

    def __str__(self) -> str:
        who = self.client or _("site-wide")
        return f"{who} · {self.get_channel_display()}"

    def has_rolled_over(self, now: dt.datetime | None = None) -> bool:
        """Whether this row's period is over, so its ``used`` no longer counts.

        The row-by-row form of ``managers.rolled_over`` (the SQL one).
        """
        return self.period_start < period_start_for(self.period, now)

    @property
    def current_used(self) -> int:
        """``used`` as it counts now: zero once the period has rolled over."""
        return 0 if self.has_rolled_over() else self.used

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.current_used)


class OTPToken(models.Model):
    """One issued code.

    The otp_token, the code and the recipient are stored only as keyed hashes.
    ``status`` says whether the code can still be verified, ``delivery_status``
    what happened to its message; ``OTPToken.objects`` moves both
    (``docs/token-states.md``).
    """

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    client = models.ForeignKey(
        OTPClient, verbose_name=_("client"), on_delete=models.CASCADE, related_name="tokens"
    )
    auth_source = models.ForeignKey(
        AuthSource,
        verbose_name=_("auth source"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tokens",
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    usage = models.CharField(_("usage"), max_length=16, choices=Usage.choices)
    recipient_hash = models.CharField(max_length=64, editable=False)
    recipient_masked = models.CharField(_("recipient"), max_length=64)
    code_hash = models.CharField(max_length=64, editable=False)
    code_length = models.PositiveSmallIntegerField(_("code length"))
    code_expires_at = models.DateTimeField(_("code expires"))
    expires_at = models.DateTimeField(_("token expires"))
    status = models.CharField(
        _("status"), max_length=12, choices=TokenStatus.choices, default=TokenStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    delivery_status = models.CharField(
        _("delivery"), max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    delivery_attempts = models.PositiveSmallIntegerField(_("delivery attempts"), default=0)
    provider_message_id = models.CharField(_("provider message ID"), max_length=128, blank=True)
    #: The name (in ``SMS_BACKENDS``) of the backend that took the message (receipts are
    #: matched by it and ``provider_message_id``), or that failed it for good; while a retry
    #: is queued, the backend it starts with ("": the route's first).
    delivery_backend = models.CharField(_("delivered by"), max_length=64, blank=True)
    delivery_error = models.CharField(_("delivery error"), max_length=200, blank=True)
    #: The provider's error code of the last failed try (what a retry may need to know).
    delivery_error_code = models.CharField(
        _("delivery error code"), max_length=64, blank=True, editable=False
    )
    #: Billed units (SMS segments) and billed region, as the provider reported them.
    fee = models.PositiveSmallIntegerField(_("billed units"), null=True, blank=True)
    billed_region = models.CharField(_("billed region"), max_length=8, blank=True)
    quota_consumed = models.BooleanField(_("quota consumed"), default=False)
    is_test = models.BooleanField(_("test recipient"), default=False)
    language = models.CharField(_("language"), max_length=16, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivery_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: The sealed message (code and address, ``crypto.seal``) while the token waits in the
    #: outbox for a batch delivery (``outbox.deliver_due``); emptied by the statement that
    #: records the outcome, or when the delivery moves to a task of its own (a retry).
    delivery_envelope = models.TextField(blank=True, default="", editable=False)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    #: When the delivery receipt came (``delivered`` or ``undelivered``).
    receipt_at = models.DateTimeField(_("receipt"), null=True, blank=True)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)

    objects = OTPTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("OTP token")
        verbose_name_plural = _("OTP tokens")
        ordering = ["-created_at"]
        indexes = [
            # Resends supersede the pending tokens of one (client, recipient, usage).
            models.Index(
                fields=["client", "recipient_hash", "usage"],
                condition=Q(status="pending"),
                name="ciam_otp_token_pending_idx",
            ),
            models.Index(fields=["expires_at"], name="ciam_otp_token_expires_idx"),
            models.Index(fields=["created_at"], name="ciam_otp_token_created_idx"),
            models.Index(fields=["recipient_hash"], name="ciam_otp_token_recipient_idx"),
            # Delivery receipts name the message by the provider's id (Tencent's SerialNo).
            models.Index(
                fields=["provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="ciam_otp_token_message_idx",
            ),
            # The outbox: the few tokens whose sealed message waits for a batch delivery.
            models.Index(
                fields=["id"],
                condition=~Q(delivery_envelope=""),
                name="ciam_otp_token_outbox_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_usage_display()} · {self.recipient_masked}"


class RecipientThrottle(models.Model):
    """Consecutive failed verifications of one recipient, across resends.

    NIST SP 800-63B 5.2.2 caps them at 100.
    """

    recipient_hash = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RecipientThrottleQuerySet.as_manager()

    class Meta:
        verbose_name = _("recipient throttle")
        verbose_name_plural = _("recipient throttles")

    def __str__(self) -> str:
        return f"{self.recipient_hash[:12]}… ({self.failures})"


class TestRecipient(models.Model):
    """A phone number or address with a fixed code, for app-store reviewers and QA.

    Never sent to a provider, never counted against a quota. The fixed code is
    kept readable on purpose (admins hand it to reviewers); it is not a secret
    of any real user. Refused by a deploy check (``check --deploy``, E009) unless
    ``ALLOW_TEST_RECIPIENTS_IN_PRODUCTION`` is set.
    """

    __test__ = False  # not a pytest test class, despite the name

    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    recipient = models.CharField(
        _("recipient"),
        max_length=254,
        unique=True,
        help_text=_("Phone number or email address; stored in normalised form."),
    )
    code = models.CharField(
        _("fixed code"),
        max_length=10,
        validators=[RegexValidator(r"^[0-9]{4,10}$", _("4 to 10 digits."))],
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("test recipient")
        verbose_name_plural = _("test recipients")
        ordering = ["recipient"]

    def __str__(self) -> str:
        return self.recipient

    def clean(self) -> None:
        """Refuse an address that belongs to an account.

        A test recipient's fixed code is public (reviewers, QA): on an
        account's address it would log anyone in as that account. Sends and
        verifications check again, for accounts created after this row.
        """
        if not self.channel or not self.recipient:
            return
        key = identity.canonical(self.channel, self.recipient)
        if key is not None and identity.is_used(self.channel, key):
            raise ValidationError(
                {"recipient": _("This address belongs to an account; test codes cannot use it.")}
            )


class BlockedPrefix(models.Model):
    """A phone number prefix refused for a while because its codes are sent but never verified."""

    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    sends = models.PositiveIntegerField(_("sends in window"), default=0)
    verifications = models.PositiveIntegerField(_("verifications in window"), default=0)
    blocked_until = models.DateTimeField(_("blocked until"))
    created_at = models.DateTimeField(_("blocked at"), default=timezone.now)

    objects = BlockedPrefixQuerySet.as_manager()

    class Meta:
        verbose_name = _("blocked prefix")
        verbose_name_plural = _("blocked prefixes")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["blocked_until"], name="ciam_otp_prefix_until_idx")]

    def __str__(self) -> str:
        return f"+{self.prefix}…"

    @property
    def is_active(self) -> bool:
        return self.blocked_until > timezone.now()
