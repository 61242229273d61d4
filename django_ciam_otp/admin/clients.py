"""API clients: creation and rotation show the secret once, in the response that made it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import crypto
from ..forms import OTPClientAddForm, OTPClientChangeForm
from ..models import OTPClient, OTPToken, Quota
from . import quota_periods
from .base import (
    ADMIN_CSS,
    ChangedFieldsOnlyAdmin,
    EnableDisableActions,
    admin_url,
    confirm_response,
)

COPY_JS = "django_ciam_otp/admin/copy_secret.js"
SECRET_TEMPLATE = "django_ciam_otp/admin/client_secret.html"

# The request attribute that carries a new secret from save_model() to response_add()
# of the same request; it never outlives the request.
_ONE_TIME_SECRET_ATTR = "_ciam_otp_one_time_secret"


@admin.register(OTPClient)
class OTPClientAdmin(EnableDisableActions, ChangedFieldsOnlyAdmin):
    list_display = (
        "name",
        "client_id",
        "enabled",
        "last_used_at",
        "secret_rotated_at",
        "created_at",
    )
    list_filter = ("enabled", ("last_used_at", admin.DateFieldListFilter))
    search_fields = ("name", "=client_id")
    actions = ("enable", "disable", "rotate_secret")

    def get_form(
        self,
        request: HttpRequest,
        obj: OTPClient | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm]:
        kwargs["form"] = OTPClientChangeForm if obj else OTPClientAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: OTPClient | None = None) -> list[Any]:
        if obj is None:
            return ["name", "client_id", "enabled"]
        return [
            "name",
            "client_id",
            "enabled",
            "quota_summary",
            "created_at",
            "secret_rotated_at",
            "last_used_at",
        ]

    def get_readonly_fields(
        self, request: HttpRequest, obj: OTPClient | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("client_id", "quota_summary", "created_at", "secret_rotated_at", "last_used_at")

    @admin.display(description=_("quotas"))
    def quota_summary(self, obj: OTPClient) -> str:
        items = [
            (
                admin_url(self, "ciam_otp_quota_change", quota.pk),
                quota.get_channel_display(),
                gettext("%(remaining)s of %(limit)s left (%(period)s)")
                % {
                    "remaining": quota_periods.remaining_this_period(quota),
                    "limit": quota.limit,
                    "period": quota.get_period_display(),
                },
            )
            for quota in quota_periods.for_display(Quota.objects.filter(client=obj)).order_by(
                "channel"
            )
        ]
        add_url = admin_url(self, "ciam_otp_quota_add") + "?" + urlencode({"client": obj.pk})
        listing = (
            format_html(
                "<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a>: {}</li>', items)
            )
            if items
            else format_html("<p>{}</p>", gettext("No quota: only the site-wide quotas apply."))
        )
        return format_html(
            '{}<a href="{}" class="addlink">{}</a>', listing, add_url, gettext("Add a quota")
        )

    def get_deleted_objects(
        self, objs: Sequence[OTPClient] | QuerySet[OTPClient], request: HttpRequest
    ) -> tuple[list[Any], dict[Any, int], set[Any], list[Any]]:
        """Refuse, with one COUNT, to delete clients whose tokens are still in the log.

        Tokens leave only through the purge; Django would otherwise list every
        one of them on the confirmation page before refusing.
        """
        clients = list(objs)
        tokens = OTPToken.objects.filter(client__in=clients).count()
        if not tokens:
            return super().get_deleted_objects(clients, request)
        token_opts = OTPToken._meta
        return (
            [str(client) for client in clients],
            {token_opts.verbose_name_plural: tokens},
            {token_opts.verbose_name},
            [],
        )

    # -- creation: the secret is made here and shown once ----------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # One button: the next page is the one-time secret page, whatever was clicked.
        extra_context = {
            **(extra_context or {}),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }
        return super().add_view(request, form_url, extra_context)

    def save_model(
        self, request: HttpRequest, obj: OTPClient, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        if not obj.client_id:
            obj.client_id = crypto.new_client_id()
        raw_secret = obj.set_secret()
        obj.save()
        setattr(request, _ONE_TIME_SECRET_ATTR, raw_secret)

    def response_add(
        self, request: HttpRequest, obj: OTPClient, post_url_continue: str | None = None
    ) -> HttpResponse:
        raw_secret: str | None = getattr(request, _ONE_TIME_SECRET_ATTR, None)
        if raw_secret is None:
            return super().response_add(request, obj, post_url_continue)
        delattr(request, _ONE_TIME_SECRET_ATTR)
        return self._secret_response(request, [(obj, raw_secret)], created=True)

    def _secret_response(
        self, request: HttpRequest, credentials: Sequence[tuple[OTPClient, str]], *, created: bool
    ) -> TemplateResponse:
        """The only page that ever shows a secret: rendered in the response that made it."""
        single = len(credentials) == 1
        rows = [
            {
                "client": client,
                "secret": secret,
                "suffix": "" if single else f"-{number}",
                "change_url": admin_url(self, "ciam_otp_otpclient_change", client.pk),
                "add_quota_url": admin_url(self, "ciam_otp_quota_add")
                + "?"
                + urlencode({"client": client.pk}),
            }
            for number, (client, secret) in enumerate(credentials, start=1)
        ]
        if created:
            title = gettext("API client created")
        else:
            title = ngettext("Client secret rotated", "Client secrets rotated", len(rows))
        is_popup = IS_POPUP_VAR in request.POST or IS_POPUP_VAR in request.GET
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "credentials": rows,
            "created": created,
            "is_popup": is_popup,
            "done_url": rows[0]["change_url"]
            if single
            else admin_url(self, "ciam_otp_otpclient_changelist"),
            "css": ADMIN_CSS,
            "js": COPY_JS,
        }
        request.current_app = self.admin_site.name
        response = TemplateResponse(request, SECRET_TEMPLATE, context)
        add_never_cache_headers(response)
        response["Referrer-Policy"] = "no-referrer"
        return response

    # -- rotation --------------------------------------------------------------------

    def _rotate(self, request: HttpRequest, clients: Iterable[OTPClient]) -> TemplateResponse:
        credentials: list[tuple[OTPClient, str]] = []
        with transaction.atomic():
            for client in clients:
                raw_secret = client.set_secret()
                client.save(update_fields=["secret_hash", "secret_rotated_at"])
                credentials.append((client, raw_secret))
        for client, _secret in credentials:
            self.log_change(request, client, gettext("Rotated the client secret."))
        return self._secret_response(request, credentials, created=False)

    def _rotate_warning(self, count: int) -> str:
        return ngettext(
            "A new secret is made and shown once. The current secret stops working at once: "
            "callers using it get invalid_client until they are given the new one.",
            "A new secret is made for each of these %(count)d clients and shown once. The current "
            "secrets stop working at once: callers using them get invalid_client until they are "
            "given the new ones.",
            count,
        ) % {"count": count}

    @admin.action(
        description=_("Rotate the secret of the selected clients"), permissions=["change"]
    )
    def rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[OTPClient]
    ) -> TemplateResponse:
        clients = list(queryset)
        if request.POST.get("post") == "yes":
            return self._rotate(request, clients)
        return confirm_response(
            self,
            request,
            title=gettext("Rotate client secrets?"),
            message=self._rotate_warning(len(clients)),
            objects=clients,
            submit_label=gettext("Yes, rotate"),
            action="rotate_secret",
            warning=True,
        )

    def rotate_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        client = self.get_object(request, unquote(object_id))
        if client is None:
            raise Http404
        if not self.has_change_permission(request, client):
            raise PermissionDenied
        if request.method == "POST":
            return self._rotate(request, [client])
        return confirm_response(
            self,
            request,
            title=gettext("Rotate the secret of %(client)s?") % {"client": client},
            message=self._rotate_warning(1),
            objects=[client],
            submit_label=gettext("Yes, rotate"),
            action=None,
            warning=True,
        )

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/rotate-secret/",
                self.admin_site.admin_view(self.rotate_secret_view),
                name="ciam_otp_otpclient_rotate_secret",
            )
        ]
        return custom + super().get_urls()
