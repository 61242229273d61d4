"""Forms of the demo pages. They check presence and shape only; the service checks the rest."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_ciam_otp.exceptions import OTPError
from django_ciam_otp.identity import canonical, find_user
from django_ciam_otp.models import Channel
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
        attrs: dict[str, Any] = {"autofocus": True, "spellcheck": "false"}
        # The input type is fixed when a widget is built: a "type" put into
        # widget.attrs afterwards renders a second type attribute, which browsers ignore.
        if channels == (Channel.EMAIL,):
            field.widget = forms.EmailInput(
                attrs={**attrs, "autocomplete": "email", "placeholder": "name@example.com"}
            )
        elif channels == (Channel.SMS,):
            phone = {"type": "tel", "autocomplete": "tel", "placeholder": "136 1234 5678"}
            field.widget = forms.TextInput(attrs={**attrs, **phone})
        else:
            field.widget.attrs.update(
                attrs,
                autocomplete="username",
                placeholder="name@example.com / 136 1234 5678",
            )

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
        #: The canonical form (None when malformed: send_otp then says how).
        self.key = canonical(channel, value)
        return value


#: Dashes and spaces people (and SMS apps) put between digits; full-width ones are
#: folded to these by NFKC first.
_SEPARATORS = r"[\s\-\u2010-\u2015\u2212\u30fc.·]"
_DIGITS = re.compile(r"[0-9]+")


def normalise_code(raw: str, length: int) -> str | None:
    """The code in what was typed or pasted, or ``None`` when it holds none.

    Full-width digits become ASCII (NFKC), spaces and dashes between digits go
    (``335-025``, ``335 025``), and from a whole pasted message the one run of
    ``length`` digits is taken (a message may repeat the code, as in a WebOTP
    line). ``length`` 0 takes any one run of 4–10 digits.
    """
    text = unicodedata.normalize("NFKC", raw)
    joined = re.sub(rf"(?<=[0-9]){_SEPARATORS}+(?=[0-9])", "", text).strip()
    if _DIGITS.fullmatch(joined):
        runs = {joined}
    else:
        runs = set(_DIGITS.findall(joined))
        if not length:
            runs = {run for run in runs if 4 <= len(run) <= 10}
    runs = {run for run in runs if len(run) == length} if length else runs
    return runs.pop() if len(runs) == 1 else None


class CodeForm(forms.Form):
    """The code box: as long as the code, forgiving of spaces, dashes and full-width digits.

    What holds no code of the right length never reaches ``verify_otp``, so it
    costs none of the code's attempts.
    """

    code = forms.CharField(label=_("Verification code"), max_length=500, strip=True)

    def __init__(self, *args: Any, length: int = 6, help_text: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.length = length
        field = self.fields["code"]
        field.help_text = help_text
        field.widget.attrs.update(
            inputmode="numeric",
            autocomplete="one-time-code",
            autofocus=True,
            spellcheck="false",
            size=length or 10,
            style=f"--digits: {length or 10}",
            **{"data-code-length": length},
        )

    def clean_code(self) -> str:
        code = normalise_code(self.cleaned_data["code"], self.length)
        if code is None:
            raise forms.ValidationError(
                _("Enter the %(length)d digits of the code.") % {"length": self.length}
                if self.length
                else _("Enter the code from the message."),
                code="malformed_code",
            )
        return code


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
    """One name per login for the failure throttle, however it was written.

    Never the account's own id: then failing with an email address would lock
    out its mobile number too, telling a stranger both belong to one account.
    """
    return f"{channel}:{key if key is not None else login.strip().casefold()}"
