"""What every admin page of the app shares: partial saves, confirmation pages, enable/disable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import snapshots

ADMIN_CSS = "django_ciam_otp/admin/ciam_otp_admin.css"
CONFIRM_TEMPLATE = "django_ciam_otp/admin/confirm_action.html"


class ChangedFieldsOnlyAdmin(admin.ModelAdmin):
    """On change, ``UPDATE`` only the columns the form changed (plus ``auto_now`` ones).

    A plain ``obj.save()`` writes every column with the values read when the
    form was shown, silently undoing whatever happened meanwhile.
    """

    def save_model(
        self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool
    ) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        concrete = {f.name: f for f in obj._meta.concrete_fields}
        names = [name for name in form.changed_data if name in concrete]
        if not names:
            return
        names += [
            n for n, f in concrete.items() if getattr(f, "auto_now", False) and n not in names
        ]
        obj.save(update_fields=names)


def admin_url(modeladmin: admin.ModelAdmin, name: str, *args: Any) -> str:
    """``reverse`` in the admin site serving ``modeladmin`` (sites other than the default work)."""
    return reverse(f"admin:{name}", args=args, current_app=modeladmin.admin_site.name)


def confirm_response(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    title: str,
    message: str,
    objects: Sequence[Any],
    submit_label: str,
    action: str | None,
    form: forms.Form | None = None,
    warning: bool = False,
) -> TemplateResponse:
    """The intermediate page of an action (``action`` set) or an object tool (``action=None``)."""
    opts = modeladmin.opts
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "message": message,
        "warning": warning,
        "objects": objects,
        "form": form,
        "action": action,
        "submit_label": submit_label,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": opts,
        "media": modeladmin.media + (form.media if form is not None else forms.Media()),
        "cancel_url": admin_url(modeladmin, f"{opts.app_label}_{opts.model_name}_changelist"),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, CONFIRM_TEMPLATE, context)


def set_enabled(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any], enabled: bool
) -> None:
    changing = list(queryset.filter(enabled=not enabled))
    queryset.model._default_manager.filter(pk__in=[o.pk for o in changing]).update(enabled=enabled)
    snapshots.table_changed(queryset.model)  # update() sends no post_save
    log = gettext("Enabled.") if enabled else gettext("Disabled.")
    for obj in changing:
        modeladmin.log_change(request, obj, log)
    if enabled:
        text = ngettext("Enabled %(count)d item.", "Enabled %(count)d items.", len(changing))
    else:
        text = ngettext("Disabled %(count)d item.", "Disabled %(count)d items.", len(changing))
    modeladmin.message_user(request, text % {"count": len(changing)}, messages.SUCCESS)


class EnableDisableActions:
    """``enable`` / ``disable`` actions for models with an ``enabled`` flag."""

    @admin.action(description=_("Enable the selected items"), permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        assert isinstance(self, admin.ModelAdmin)
        set_enabled(self, request, queryset, True)

    @admin.action(description=_("Disable the selected items"), permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        assert isinstance(self, admin.ModelAdmin)
        set_enabled(self, request, queryset, False)
