"""The token log: read-only, searched by an exact recipient's keyed hash, never by pattern."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .. import crypto
from ..exceptions import OTPError
from ..models import OTPToken
from ..validators import normalize_email, normalize_phone_number
from .dashboard import TokenLogDashboard

TOKEN_FIELDS = ("created_at", "recipient_masked", "usage", "channel", "client", "auth_source")
TOKEN_CODE_FIELDS = (
    "status",
    "attempts",
    "code_length",
    "code_expires_at",
    "expires_at",
    "verified_at",
)
TOKEN_DELIVERY_FIELDS = (
    "delivery_status",
    "delivery_backend",
    "delivery_attempts",
    "provider_message_id",
    "fee",
    "billed_region",
    "delivery_error",
    "sent_at",
    "receipt_at",
    "quota_consumed",
    "language",
)


class BackendFilter(admin.SimpleListFilter):
    """The configured backends by name: no ``SELECT DISTINCT`` over the whole token log."""

    title = _("delivered by")
    parameter_name = "delivery_backend__exact"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[OTPToken]
    ) -> list[tuple[str, str]]:
        from ..backends.routing import sms_backends

        try:
            names = [entry.name for entry in sms_backends()]
        except Exception:  # noqa: BLE001 - E020 reports a malformed list; email still filters
            names = []
        return [(name, name) for name in [*names, "email"]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OTPToken]) -> QuerySet[OTPToken]:
        value = self.value()
        return queryset.filter(delivery_backend=value) if value else queryset


@admin.register(OTPToken)
class OTPTokenAdmin(TokenLogDashboard):
    """Read-only: tokens are written by the send and verify flows and deleted by the purge."""

    list_display = (
        "created_at",
        "recipient_masked",
        "usage",
        "channel",
        "client",
        "auth_source",
        "status",
        "attempts",
        "delivery_status",
        "delivery_backend",
        "provider_message_id",
        "fee",
        "expires_at",
    )
    list_filter = (
        "status",
        "delivery_status",
        BackendFilter,
        ("fee", admin.EmptyFieldListFilter),
        "channel",
        "usage",
        "client",
        ("created_at", admin.DateFieldListFilter),
        "auth_source",
    )
    list_select_related = ("client", "auth_source")
    # Enables the search box; get_search_results() decides what a term matches.
    search_fields = ("recipient_masked",)
    search_help_text = _(
        "An exact phone number or email address, in any written form (it is normalised), "
        "or a provider message ID."
    )
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": TOKEN_FIELDS}),
        (_("Code"), {"fields": TOKEN_CODE_FIELDS}),
        (_("Delivery"), {"fields": TOKEN_DELIVERY_FIELDS}),
    )
    # Only these: the hashes (token, code, recipient) are never shown.
    readonly_fields = TOKEN_FIELDS + TOKEN_CODE_FIELDS + TOKEN_DELIVERY_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OTPToken | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OTPToken | None = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OTPToken], search_term: str
    ) -> tuple[QuerySet[OTPToken], bool]:
        """An exact recipient, matched by its keyed hash, never by a pattern over recipients."""
        term = search_term.strip()
        if not term:
            return queryset, False
        key = recipient_key(term)
        if key is not None:
            return queryset.filter(recipient_hash=crypto.hash_recipient(key)), False
        return queryset.filter(provider_message_id=term), False


def recipient_key(text: str) -> str | None:
    """The normalised key of a phone number or email address, or ``None`` if it is neither."""
    for normalise in (normalize_phone_number, normalize_email):
        try:
            return normalise(text).key
        except OTPError:
            continue
    return None
