"""Quotas: limits per client and channel, their usage this period, top-up and reset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..forms import QuotaForm, TopUpForm
from ..models import Quota, QuotaPeriod
from . import quota_periods
from .base import ChangedFieldsOnlyAdmin, confirm_response
from .filters import QuotaScopeFilter


def usage_bar(used: int, limit: int) -> str:
    """A native ``<meter>``: amber above 75 %, red above 90 % of the limit."""
    percent = 100.0 if limit <= 0 else min(100.0, 100.0 * used / limit)
    label = f"{percent:.0f}%"
    return format_html(
        '<meter class="ciam-otp-usage" min="0" max="100" low="75" high="90" optimum="0" '
        'value="{}" title="{}">{}</meter> <span class="ciam-otp-usage-label">{}</span>',
        f"{percent:.1f}",
        label,
        label,
        label,
    )


@admin.register(Quota)
class QuotaAdmin(ChangedFieldsOnlyAdmin):
    form = QuotaForm
    list_display = (
        "scope",
        "channel",
        "period",
        "limit",
        "used_now",
        "remaining_now",
        "usage",
        "period_began",
    )
    list_filter = (QuotaScopeFilter, "channel", "period", "client")
    list_select_related = ("client",)
    search_fields = ("client__name", "=client__client_id")
    ordering = ("client__name", "channel")
    actions = ("top_up", "reset_period")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Quota]:
        return quota_periods.for_display(super().get_queryset(request))

    def get_fields(self, request: HttpRequest, obj: Quota | None = None) -> list[Any]:
        fields = ["client", "channel", "limit", "period"]
        if obj is None:
            return fields
        return fields + ["used_now", "remaining_now", "usage", "period_began", "updated_at"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: Quota | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        # A quota belongs to one client and channel; moving it would carry its usage along.
        return (
            "client",
            "channel",
            "used_now",
            "remaining_now",
            "usage",
            "period_began",
            "updated_at",
        )

    def formfield_for_dbfield(
        self, db_field: models.Field[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "client" and formfield is not None:
            # Creating a client in a popup would close the popup over its one-time secret.
            formfield.widget.can_add_related = False
        return formfield

    @admin.display(description=_("client"), ordering="client__name")
    def scope(self, obj: Quota) -> str:
        if obj.client is None:
            return format_html("<strong>{}</strong>", gettext("Site-wide"))
        return str(obj.client)

    @admin.display(description=_("used this period"))
    def used_now(self, obj: Quota) -> int:
        return quota_periods.used_this_period(obj)

    @admin.display(description=_("remaining"))
    def remaining_now(self, obj: Quota) -> int:
        return quota_periods.remaining_this_period(obj)

    @admin.display(description=_("usage"))
    def usage(self, obj: Quota) -> str:
        return usage_bar(quota_periods.used_this_period(obj), obj.limit)

    @admin.display(description=_("period began"), ordering="period_start")
    def period_began(self, obj: Quota) -> Any:
        # A quota without reset has no period; its stored start is a placeholder.
        if obj.period == QuotaPeriod.NONE:
            return "–"
        return obj.period_start

    def save_model(
        self, request: HttpRequest, obj: Quota, form: forms.ModelForm, change: bool
    ) -> None:
        if not change:
            obj.period_start = quota_periods.first_period_start(obj.period)
        super().save_model(request, obj, form, change)

    # -- top up ------------------------------------------------------------------------

    def _apply_top_up(self, request: HttpRequest, quotas: Sequence[Quota], amount: int) -> None:
        Quota.objects.filter(pk__in=[q.pk for q in quotas]).top_up(amount)
        for quota in quotas:
            self.log_change(
                request, quota, gettext("Topped up by %(amount)d.") % {"amount": amount}
            )
        self.message_user(
            request,
            ngettext(
                "Added %(amount)d messages to %(count)d quota.",
                "Added %(amount)d messages to each of %(count)d quotas.",
                len(quotas),
            )
            % {"amount": amount, "count": len(quotas)},
            messages.SUCCESS,
        )

    def _top_up_page(
        self, request: HttpRequest, quotas: Sequence[Quota], form: TopUpForm, action: str | None
    ) -> TemplateResponse:
        return confirm_response(
            self,
            request,
            title=gettext("Top up quotas"),
            message=gettext(
                "How many messages should be added to the limit of each of these quotas?"
            ),
            objects=quotas,
            submit_label=gettext("Top up"),
            action=action,
            form=form,
        )

    @admin.action(description=_("Top up the selected quotas"), permissions=["change"])
    def top_up(self, request: HttpRequest, queryset: QuerySet[Quota]) -> TemplateResponse | None:
        quotas = list(queryset.select_related("client"))
        form = TopUpForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_valid():
            self._apply_top_up(request, quotas, form.cleaned_data["amount"])
            return None
        return self._top_up_page(request, quotas, form, "top_up")

    def top_up_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        quota = self.get_object(request, unquote(object_id))
        if quota is None:
            raise Http404
        if not self.has_change_permission(request, quota):
            raise PermissionDenied
        form = TopUpForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            self._apply_top_up(request, [quota], form.cleaned_data["amount"])
            return self.response_post_save_change(request, quota)
        return self._top_up_page(request, [quota], form, None)

    # -- reset period -----------------------------------------------------------------

    @admin.action(description=_("Reset the usage of the selected quotas"), permissions=["change"])
    def reset_period(
        self, request: HttpRequest, queryset: QuerySet[Quota]
    ) -> TemplateResponse | None:
        quotas = list(queryset.select_related("client"))
        if request.POST.get("post") != "yes":
            return confirm_response(
                self,
                request,
                title=gettext("Reset quota usage?"),
                message=gettext(
                    "Usage of these quotas goes back to zero and a new period starts now."
                ),
                objects=quotas,
                submit_label=gettext("Yes, reset"),
                action="reset_period",
                warning=True,
            )
        quota_periods.start_new_period(Quota.objects.filter(pk__in=[q.pk for q in quotas]))
        for quota in quotas:
            self.log_change(request, quota, gettext("Reset the usage."))
        self.message_user(
            request,
            ngettext("Reset %(count)d quota.", "Reset %(count)d quotas.", len(quotas))
            % {"count": len(quotas)},
            messages.SUCCESS,
        )
        return None

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/top-up/",
                self.admin_site.admin_view(self.top_up_view),
                name="ciam_otp_quota_top_up",
            )
        ]
        return custom + super().get_urls()
