"""The site's own API client: who the Python API, the pages and the auth backend act as.

A site that calls :func:`django_ciam_otp.send_otp` from its own views (or
uses :class:`~django_ciam_otp.backends.auth.OTPBackend`) is a client like any
other — limits, quotas and tokens are per client — named once in settings
by ``CIAM_OTP["SITE_CLIENT_ID"]``.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .conf import otp_settings
from .models import OTPClient

_FIX = (
    "Create it once with `python manage.py create_otp_client --name 'My site' "
    "--client-id my-site` and set CIAM_OTP = {'SITE_CLIENT_ID': 'my-site'}, or pass "
    "the OTPClient as the first argument."
)


def site_client(client: OTPClient | str | None = None) -> OTPClient | None:
    """``client`` (an ``OTPClient`` or a client_id), else ``SITE_CLIENT_ID``'s; enabled only.

    ``None`` when no client is named or the named one does not exist or is
    disabled; :func:`require_client` says which, as an error.
    """
    if isinstance(client, OTPClient):
        return client
    client_id = client or otp_settings.SITE_CLIENT_ID
    if not client_id:
        return None
    return OTPClient.objects.filter(client_id=client_id, enabled=True).first()


def require_client(client: OTPClient | str | None = None) -> OTPClient:
    """As :func:`site_client`, but ``ImproperlyConfigured`` (naming the fix) instead of ``None``."""
    found = site_client(client)
    if found is not None:
        return found
    named = client if isinstance(client, str) and client else otp_settings.SITE_CLIENT_ID
    if not named:
        raise ImproperlyConfigured(
            "No OTP client to act as: CIAM_OTP['SITE_CLIENT_ID'] is not set. " + _FIX
        )
    raise ImproperlyConfigured(
        f"OTP client {named!r} does not exist or is disabled (CIAM_OTP['SITE_CLIENT_ID']). " + _FIX
    )
