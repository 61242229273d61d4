"""Prefixes the conversion monitor blocked, and lifting a block early."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import abuse
from ..models import BlockedPrefix


@admin.register(BlockedPrefix)
class BlockedPrefixAdmin(admin.ModelAdmin):
    """Prefixes the conversion monitor blocked; admins can lift a block early."""

    list_display = ("display_prefix", "active", "blocked_until", "sends", "verifications", "reason")
    list_filter = (("blocked_until", admin.DateFieldListFilter),)
    search_fields = ("prefix",)
    readonly_fields = ("prefix", "reason", "sends", "verifications", "blocked_until", "created_at")
    actions = ("unblock",)

    @admin.display(description=_("prefix"), ordering="prefix")
    def display_prefix(self, obj: BlockedPrefix) -> str:
        return f"+{obj.prefix}…"

    @admin.display(description=_("active"), boolean=True)
    def active(self, obj: BlockedPrefix) -> bool:
        return obj.is_active

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Unblock the selected prefixes now"), permissions=["change"])
    def unblock(self, request: HttpRequest, queryset: QuerySet[BlockedPrefix]) -> None:
        lifted = sum(abuse.unblock_prefix(p) for p in queryset.values_list("prefix", flat=True))
        self.message_user(
            request,
            ngettext("%(count)d prefix unblocked.", "%(count)d prefixes unblocked.", lifted)
            % {"count": lifted},
            messages.SUCCESS,
        )
