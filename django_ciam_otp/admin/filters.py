"""List filters of the app's admin pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import Quota


class QuotaScopeFilter(admin.SimpleListFilter):
    title = _("scope")
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
        return [("site", _("Site-wide")), ("client", _("Per client"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Quota]) -> QuerySet[Quota]:
        if self.value() == "site":
            return queryset.filter(client__isnull=True)
        if self.value() == "client":
            return queryset.filter(client__isnull=False)
        return queryset
