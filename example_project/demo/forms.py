"""Forms of the demo pages. They check presence and shape only; the service checks the rest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_ciam_otp.exceptions import OTPError
from django_ciam_otp.models import Channel
from django_ciam_otp.services import find_user
from django_ciam_otp.validators import normalize_email, normalize_phone_number

from .throttle import LoginThrottle, too_many_text

LABELS = {
    (Channel.EMAIL, Channel.SMS): _("Email address or mobile number"),
    (Channel.EMAIL,): _("Email address"),
    (Channel.SMS,): _("Mobile number"),
}


def channel_of(value: str) -> str:
    """People type an email address or a phone number into one box; "@" tells them apart."""
    return Channel.EMAIL if "@" in value else Channel.SMS


class RecipientForm(forms.Form):
    """Where to send a code: one box for an email address or a mobile number."""

    recipient = forms.CharField(max_length=254, strip=True)

    def __init__(self, *args: Any, channels: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channels = channels
        field = self.fields["recipient"]
        field.label = LABELS[channels]
        if channels == (Channel.EMAIL,):
            attrs = {"type": "email", "autocomplete": "email", "placeholder": "name@example.com"}
        elif channels == (Channel.SMS,):
            attrs = {"type": "tel", "autocomplete": "tel", "placeholder": "136 1234 5678"}
        else:
            attrs = {"autocomplete": "username", "placeholder": "name@example.com / 136 1234 5678"}
        field.widget.attrs.update(attrs, autofocus=True, spellcheck="false")

    def clean_recipient(self) -> str:
        value: str = self.cleaned_data["recipient"]
        channel = channel_of(value)
        if channel not in self.channels:
            raise forms.ValidationError(
                _("Enter an email address.")
                if channel == Channel.SMS
                else _("Enter a mobile number.")
            )
        self.channel = channel
        return value


class CodeForm(forms.Form):
    code = forms.CharField(label=_("Verification code"), max_length=12, strip=True)
    code.widget.attrs.update(
        inputmode="numeric",
        autocomplete="one-time-code",
        autofocus=True,
        pattern=r"[0-9 ]*",
        size=8,
    )

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split())


class PasswordLoginForm(forms.Form):
    """Log in with an email address or mobile number and a password."""

    login = forms.CharField(label=LABELS[(Channel.EMAIL, Channel.SMS)], max_length=254)
    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(render_value=False)
    )
    login.widget.attrs.update(autocomplete="username", autofocus=True, spellcheck="false")
    password.widget.attrs.update(autocomplete="current-password")

    error_messages = {"invalid_login": _("Wrong email address, mobile number or password.")}

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: Any = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        login, password = data.get("login"), data.get("password")
        if not login or not password:
            return data
        channel, key = _canonical(login)
        owner = find_user(channel, key) if key is not None else None
        # Past the failure limits the password is not even checked (throttle.py).
        throttle = LoginThrottle(self.request, _account(channel, key, owner, login))
        wait = throttle.wait()
        if wait:
            raise forms.ValidationError(too_many_text(wait), "too_many_failed_logins")
        # Unknown logins still go through authenticate(): ModelBackend then runs
        # a dummy password hash, so the answer takes as long as for a real account.
        username = owner.get_username() if owner is not None else login
        self.user = authenticate(self.request, username=username, password=password)
        if self.user is None:
            throttle.failed()
            raise forms.ValidationError(self.error_messages["invalid_login"], "invalid_login")
        return data


def _canonical(login: str) -> tuple[str, str | None]:
    """The channel of an email address or mobile number, and its canonical form (or ``None``)."""
    channel = channel_of(login)
    normalize = normalize_email if channel == Channel.EMAIL else normalize_phone_number
    try:
        return channel, normalize(login).key
    except OTPError:
        return channel, None


def _account(channel: str, key: str | None, owner: Any, login: str) -> str:
    """One name per account for the failure throttle, however the login was written."""
    if owner is not None:
        return f"user:{owner.pk}"  # its email address and its mobile number alike
    return f"{channel}:{key if key is not None else login.strip().casefold()}"
