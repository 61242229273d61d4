"""Admin forms: clear range messages, generated client ids, and the quota top-up amount."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from . import crypto
from .models import (
    CODE_LENGTH_MAX,
    CODE_LENGTH_MIN,
    CODE_VALIDITY_MAX,
    CODE_VALIDITY_MIN,
    AuthSource,
    Channel,
    OTPClient,
    Quota,
)

#: NIST SP 800-63B asks for at least 20 bits of entropy: six decimal digits.
RECOMMENDED_CODE_LENGTH = 6

#: Largest amount one top-up may add (keeps ``limit`` far from the column's maximum).
TOP_UP_MAX = 1_000_000_000


class AuthSourceForm(forms.ModelForm):
    code_length = forms.IntegerField(
        label=_("code length"),
        min_value=CODE_LENGTH_MIN,
        max_value=CODE_LENGTH_MAX,
        initial=RECOMMENDED_CODE_LENGTH,
        error_messages={
            "min_value": _("A code needs at least %(limit_value)s digits."),
            "max_value": _("A code can have at most %(limit_value)s digits."),
        },
        help_text=_(
            "Digits in each code, 4 to 10. Below 6 is weak: NIST SP 800-63B asks for "
            "at least 20 bits, which is 6 digits."
        ),
    )
    code_validity = forms.IntegerField(
        label=_("code validity (seconds)"),
        min_value=CODE_VALIDITY_MIN,
        max_value=CODE_VALIDITY_MAX,
        initial=60,
        error_messages={
            "min_value": _(
                "A code must stay valid for at least %(limit_value)s seconds, "
                "or it expires before the message arrives."
            ),
            "max_value": _("A code can stay valid for at most %(limit_value)s seconds (one hour)."),
        },
        help_text=_("How long a code can be used after it is sent: 10 to 3600 seconds."),
    )

    class Meta:
        model = AuthSource
        fields = ["id", "name", "channel", "code_length", "code_validity", "enabled"]


class OTPClientAddForm(forms.ModelForm):
    """Creation: the client id comes pre-filled with a fresh random one; the secret is made on save.

    Because the id is generated when the form is shown, submitting the same
    form twice (a browser resubmit) hits the unique id instead of creating a
    second client.
    """

    class Meta:
        model = OTPClient
        fields = ["name", "client_id", "enabled"]
        help_texts = {
            "client_id": _(
                "Generated for you (128 random bits); you may type your own. "
                "It cannot be changed later."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and not self.initial.get("client_id"):
            self.initial["client_id"] = crypto.new_client_id()


class OTPClientChangeForm(forms.ModelForm):
    class Meta:
        model = OTPClient
        fields = ["name", "enabled"]


class QuotaForm(forms.ModelForm):
    """Limit and period; ``used`` is never a form field (sends update it concurrently)."""

    class Meta:
        model = Quota
        fields = ["client", "channel", "limit", "period"]

    def clean(self) -> dict[str, Any]:
        cleaned = self.cleaned_data
        if self.instance.pk is not None or "channel" not in cleaned:
            return cleaned
        client = cleaned.get("client")
        channel = cleaned["channel"]
        if Quota.objects.filter(client=client, channel=channel).exists():
            label = Channel(channel).label
            if client is None:
                message = _("There is already a site-wide %(channel)s quota.")
            else:
                message = _("%(client)s already has a %(channel)s quota.")
            # On the channel field, so Django skips its own (less clear) constraint message.
            self.add_error("channel", message % {"client": client, "channel": label})
        return cleaned


class TopUpForm(forms.Form):
    amount = forms.IntegerField(
        label=_("Messages to add"),
        min_value=1,
        max_value=TOP_UP_MAX,
        help_text=_("Added to the limit of each selected quota; what was used is kept."),
    )
