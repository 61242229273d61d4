"""A Django authentication backend that logs a user in with a verified ``usage=login`` code.

    user = authenticate(request, otp_token=..., otp=..., phone_number=...)   # or email=...

The code is checked by :func:`django_ciam_otp.flows.verify_otp` (so it is
consumed once and counts attempts like the HTTP API). Why the login failed is
left on ``request.ciam_otp_error`` (an :class:`~django_ciam_otp.exceptions.OTPError`)
so a page can say it in words; ``authenticate`` itself only returns ``None``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from ..clients import site_client
from ..conf import otp_settings
from ..exceptions import OTPError
from ..flows import verify_otp
from ..identity import find_users
from ..models import Channel, OTPClient, Usage


def default_signup(channel: str, recipient: str) -> Any:
    """Create a user for ``recipient`` with an unusable password (AUTO_SIGNUP's default)."""
    model = get_user_model()
    fields: dict[str, Any] = {model.USERNAME_FIELD: recipient}
    if channel == Channel.EMAIL:
        fields[otp_settings.USER_EMAIL_FIELD or model.get_email_field_name()] = recipient
    elif otp_settings.USER_PHONE_FIELD:
        fields[otp_settings.USER_PHONE_FIELD] = recipient
    user = model(**fields)
    user.set_unusable_password()
    user.save()
    return user


class OTPBackend(ModelBackend):
    """Authenticates ``(otp_token, otp, phone_number | email)``.

    ``client`` defaults to the site's own (``SITE_CLIENT_ID``).
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        otp_token: str | None = None,
        otp: str | None = None,
        phone_number: str | None = None,
        email: str | None = None,
        client: OTPClient | str | None = None,
        **kwargs: Any,
    ) -> Any | None:
        if otp_token is None or otp is None or (phone_number is None and email is None):
            return None  # not a code login: let the other backends try
        otp_client = site_client(client)
        if otp_client is None:
            return None
        try:
            result = verify_otp(
                otp_client,
                otp_token,
                otp,
                phone_number=phone_number,
                email=email,
                usage=Usage.LOGIN,
            )
        except OTPError as exc:
            if request is not None:
                request.ciam_otp_error = exc  # type: ignore[attr-defined]
            return None
        # Who owns the address: by its canonical form, never a collation (identity.py).
        users = find_users(result.channel, result.recipient)
        if len(users) > 1:  # two accounts, one address: which one the code proves is unknowable
            return None
        user = users[0] if users else None
        if user is None and otp_settings.AUTO_SIGNUP:
            handler = otp_settings.import_string("AUTO_SIGNUP_HANDLER") or default_signup
            user = handler(result.channel, result.recipient)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user
