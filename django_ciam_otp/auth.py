"""HTTP Basic client authentication per RFC 6749 section 2.3.1, as a DRF authentication class.

The credentials are ``base64(url_encode(client_id) + ":" + url_encode(client_secret))``:
decode base64, split on the first ``:``, then form-url-decode each half, so ids
and secrets may hold ``:``, ``%``, ``+``, spaces and non-ASCII characters.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from urllib.parse import unquote_plus

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from . import crypto
from .models import OTPClient

# Writing last_used_at on every request would turn each read into a write;
# once a minute is plenty for the admin's "last used" column.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def parse_basic_credentials(header: bytes) -> tuple[str, str]:
    """``b"Basic <b64>"`` -> ``(client_id, client_secret)``; ``ValueError`` when garbled."""
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != b"basic":
        raise ValueError("not Basic credentials")
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("credentials are not base64 of UTF-8 text") from exc
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep:
        raise ValueError("credentials have no ':'")
    client_id = unquote_plus(raw_id, errors="strict")
    client_secret = unquote_plus(raw_secret, errors="strict")
    if not client_id or not client_secret:
        raise ValueError("empty client id or secret")
    if "\x00" in client_id or len(client_id) > 255:
        raise ValueError("client id cannot be stored")  # PostgreSQL refuses NUL in text
    return client_id, client_secret


def authenticate_client(client_id: str, client_secret: str) -> OTPClient | None:
    """Return the enabled client these credentials belong to, else ``None``.

    Unknown ids cost the same hash work as known ones, and a disabled client is
    refused only after its secret was checked, so timing tells nothing.
    """
    client = OTPClient.objects.filter(client_id=client_id).first()
    if client is None:
        crypto.dummy_secret_check(client_secret)
        return None
    if not client.check_secret(client_secret) or not client.enabled:
        return None
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        OTPClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client


class BasicClientAuthentication(BaseAuthentication):
    """Authenticates an :class:`OTPClient`; ``request.user`` and ``request.auth`` are the client."""

    www_authenticate_realm = "otp"

    def authenticate(self, request: Request) -> tuple[OTPClient, OTPClient] | None:
        header = get_authorization_header(request)
        if not header:
            return None  # DRF then answers 401 via NotAuthenticated
        try:
            client_id, client_secret = parse_basic_credentials(header)
        except ValueError:
            raise AuthenticationFailed(
                "Malformed Basic credentials.", code="invalid_client"
            ) from None
        client = authenticate_client(client_id, client_secret)
        if client is None:
            raise AuthenticationFailed("Client authentication failed.", code="invalid_client")
        return client, client

    def authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{self.www_authenticate_realm}"'
