"""Auth sources: the code length and validity each caller's ``auth_source_id`` selects."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..conf import otp_settings
from ..forms import RECOMMENDED_CODE_LENGTH, AuthSourceForm
from ..models import AuthSource
from .base import ChangedFieldsOnlyAdmin, EnableDisableActions


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
