"""The Django admin for auth sources, API clients, quotas and the token log.

Safety rules this module keeps:

* A client secret exists in the clear only inside the response that creates
  or rotates it: it is rendered straight into that page (never into the
  session, a message or a URL), so reloading or revisiting shows nothing.
* No page shows a hash (``secret_hash``, ``token_hash``, ``code_hash``,
  ``recipient_hash``) or a code.
* Saving a change form writes only the fields the form changed, so it never
  overwrites what runs concurrently: quota consumption (``used``), a secret
  rotated by another admin, ``last_used_at``.
* Top-up and reset are single ``UPDATE`` statements (``limit = limit + n``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    HttpResponseNotAllowed,
)
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import abuse, breaker, crypto, snapshots
from .conf import otp_settings
from .dashboard import build_dashboard
from .exceptions import OTPError
from .forms import (
    RECOMMENDED_CODE_LENGTH,
    AuthSourceForm,
    OTPClientAddForm,
    OTPClientChangeForm,
    QuotaForm,
    TopUpForm,
)
from .models import (
    AuthSource,
    BlockedPrefix,
    OTPClient,
    OTPToken,
    Quota,
    QuotaPeriod,
    TestRecipient,
    period_start_for,
)
from .validators import normalize_email, normalize_phone_number

ADMIN_CSS = "django_ciam_otp/admin/ciam_otp_admin.css"
COPY_JS = "django_ciam_otp/admin/copy_secret.js"
CONFIRM_TEMPLATE = "django_ciam_otp/admin/confirm_action.html"
SECRET_TEMPLATE = "django_ciam_otp/admin/client_secret.html"
DASHBOARD_TEMPLATE = "django_ciam_otp/admin/dashboard.html"

# The request attribute that carries a new secret from save_model() to response_add()
# of the same request; it never outlives the request.
_ONE_TIME_SECRET_ATTR = "_ciam_otp_one_time_secret"


# --- shared behaviour ----------------------------------------------------------------


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


def _confirm_response(
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


def _set_enabled(
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
        _set_enabled(self, request, queryset, True)

    @admin.action(description=_("Disable the selected items"), permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        assert isinstance(self, admin.ModelAdmin)
        _set_enabled(self, request, queryset, False)


# --- auth sources --------------------------------------------------------------------


@admin.register(AuthSource)
class AuthSourceAdmin(EnableDisableActions, ChangedFieldsOnlyAdmin):
    form = AuthSourceForm
    list_display = ("id", "name", "channel", "code_length", "validity", "enabled", "updated_at")
    list_filter = ("channel", "enabled", "code_length")
    search_fields = ("id", "name")
    actions = ("enable", "disable")

    def get_fields(self, request: HttpRequest, obj: AuthSource | None = None) -> list[Any]:
        fields = ["id", "name", "channel", "code_length", "code_validity", "enabled"]
        return fields + ["created_at", "updated_at"] if obj else fields

    def get_readonly_fields(
        self, request: HttpRequest, obj: AuthSource | None = None
    ) -> tuple[str, ...]:
        # The id is what API callers send: changing it would break every caller. The
        # channel is what issued tokens are bound to (create_auth_source refuses it too).
        return ("id", "channel", "created_at", "updated_at") if obj else ()

    @admin.display(description=_("code validity"), ordering="code_validity")
    def validity(self, obj: AuthSource) -> str:
        return ngettext("%(n)d second", "%(n)d seconds", obj.code_validity) % {
            "n": obj.code_validity
        }

    def save_model(
        self, request: HttpRequest, obj: AuthSource, form: forms.ModelForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if obj.code_length < RECOMMENDED_CODE_LENGTH:
            self.message_user(
                request,
                gettext(
                    "Codes of %(length)d digits are weak: NIST SP 800-63B asks for at least "
                    "20 bits of entropy, which is %(recommended)d digits."
                )
                % {"length": obj.code_length, "recommended": RECOMMENDED_CODE_LENGTH},
                messages.WARNING,
            )
        ttl = int(otp_settings.TOKEN_TTL)
        if obj.code_validity > ttl:
            self.message_user(
                request,
                gettext(
                    "A code can never outlive its otp_token (%(ttl)d seconds), so codes of this "
                    "auth source stay valid for %(ttl)d seconds, not %(validity)d."
                )
                % {"ttl": ttl, "validity": obj.code_validity},
                messages.WARNING,
            )


# --- API clients -----------------------------------------------------------------------


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
                    "remaining": quota.remaining,
                    "limit": quota.limit,
                    "period": quota.get_period_display(),
                },
            )
            for quota in Quota.objects.filter(client=obj).order_by("channel")
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
        return _confirm_response(
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
        return _confirm_response(
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


# --- quotas ---------------------------------------------------------------------------


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
            formfield.widget.can_add_related = False  # type: ignore[attr-defined]
        return formfield

    @admin.display(description=_("client"), ordering="client__name")
    def scope(self, obj: Quota) -> str:
        if obj.client is None:
            return format_html("<strong>{}</strong>", gettext("Site-wide"))
        return str(obj.client)

    @admin.display(description=_("used this period"))
    def used_now(self, obj: Quota) -> int:
        return obj.current_used

    @admin.display(description=_("remaining"))
    def remaining_now(self, obj: Quota) -> int:
        return obj.remaining

    @admin.display(description=_("usage"))
    def usage(self, obj: Quota) -> str:
        return usage_bar(obj.current_used, obj.limit)

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
            obj.period_start = period_start_for(obj.period)
        super().save_model(request, obj, form, change)

    # -- top up ------------------------------------------------------------------------

    def _apply_top_up(self, request: HttpRequest, quotas: Sequence[Quota], amount: int) -> None:
        Quota.objects.filter(pk__in=[q.pk for q in quotas]).update(limit=F("limit") + amount)
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
        return _confirm_response(
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
            return _confirm_response(
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
        now = timezone.now()
        Quota.objects.filter(pk__in=[q.pk for q in quotas]).update(
            used=0,
            period_start=Case(
                *(
                    When(period=period, then=Value(period_start_for(period, now)))
                    for period in QuotaPeriod.values
                ),
                default=Value(period_start_for(QuotaPeriod.NONE, now)),
            ),
        )
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


# --- token log ------------------------------------------------------------------------


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
    "delivery_attempts",
    "provider_message_id",
    "fee",
    "billed_region",
    "delivery_error",
    "sent_at",
    "quota_consumed",
    "language",
)


@admin.register(OTPToken)
class OTPTokenAdmin(admin.ModelAdmin):
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
        "provider_message_id",
        "fee",
        "expires_at",
    )
    list_filter = (
        "status",
        "delivery_status",
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

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="ciam_otp_dashboard",
            ),
            path(
                "dashboard/resume/",
                self.admin_site.admin_view(self.resume_view),
                name="ciam_otp_dashboard_resume",
            ),
        ]
        return custom + super().get_urls()

    def can_resume(self, request: HttpRequest) -> bool:
        """Resuming stopped deliveries is a change to how codes go out: auth-source editors."""
        return request.user.has_perm("ciam_otp.change_authsource")

    def resume_view(self, request: HttpRequest) -> HttpResponse:
        """POST: lift a channel's delivery stop now (the operator fixed its cause)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.can_resume(request):
            raise PermissionDenied
        channel = request.POST.get("channel", "")
        if channel not in breaker.CHANNELS:
            return HttpResponseBadRequest("unknown channel")
        breaker.reset(channel)
        messages.success(
            request,
            gettext("%(channel)s deliveries resumed: the next one tries the provider again.")
            % {"channel": channel.upper()},
        )
        return redirect(admin_url(self, "ciam_otp_dashboard"))

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        traffic = self.has_view_permission(request)
        quotas = self.admin_site.get_model_admin(Quota).has_view_permission(request)
        if not (traffic or quotas):
            raise PermissionDenied
        dashboard = build_dashboard(traffic=traffic, quotas=quotas)
        token_log = admin_url(self, "ciam_otp_otptoken_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("One-time passcodes today"),
            "subtitle": None,
            "opts": self.opts,
            "dashboard": dashboard,
            "token_log_url": token_log,
            "failed_url": token_log + "?" + urlencode({"delivery_status__exact": "failed"}),
            "quotas_url": admin_url(self, "ciam_otp_quota_changelist"),
            "resume_url": (
                admin_url(self, "ciam_otp_dashboard_resume") if self.can_resume(request) else ""
            ),
            "css": ADMIN_CSS,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, DASHBOARD_TEMPLATE, context)


class TestRecipientForm(forms.ModelForm):
    """Stores the recipient in normalised form, so every written form of it matches."""

    class Meta:
        model = TestRecipient
        fields = ("channel", "recipient", "code", "note", "enabled")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        channel, recipient = data.get("channel"), data.get("recipient")
        if channel and recipient:
            normalise = normalize_phone_number if channel == "sms" else normalize_email
            try:
                data["recipient"] = normalise(recipient).key
            except OTPError:
                self.add_error(
                    "recipient", gettext("Not a valid phone number or address for this channel.")
                )
        return data


@admin.register(TestRecipient)
class TestRecipientAdmin(EnableDisableActions, admin.ModelAdmin):
    """Fixed codes for app-store reviewers and QA; active only with TEST_RECIPIENTS_ENABLED."""

    form = TestRecipientForm
    list_display = ("recipient", "channel", "code", "enabled", "note", "created_at")
    list_filter = ("channel", "enabled")
    search_fields = ("recipient", "note")
    actions = ("enable", "disable")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        if not otp_settings.TEST_RECIPIENTS_ENABLED:
            messages.warning(
                request,
                gettext(
                    "Test recipients are switched off: set CIAM_OTP['TEST_RECIPIENTS_ENABLED'] "
                    "to use them."
                ),
            )
        return super().changelist_view(request, extra_context)


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


def recipient_key(text: str) -> str | None:
    """The normalised key of a phone number or email address, or ``None`` if it is neither."""
    for normalise in (normalize_phone_number, normalize_email):
        try:
            return normalise(text).key
        except OTPError:
            continue
    return None
