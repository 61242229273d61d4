"""Test recipients: fixed codes for app-store reviewers and QA."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext

from ..conf import otp_settings
from ..exceptions import OTPError
from ..models import TestRecipient
from ..validators import normalize_email, normalize_phone_number
from .base import EnableDisableActions


class TestRecipientForm(forms.ModelForm):
    """Stores the recipient in normalised form, so every written form of it matches."""

    class Meta:
        model = TestRecipient
        fields = ("channel", "recipient", "code", "note", "enabled")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean() returns, typed without its None
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
