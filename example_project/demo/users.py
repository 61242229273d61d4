"""How the demo finds, creates and updates users by email address or mobile number.

``find_user`` is the project's ``CIAM_OTP["USER_LOOKUP"]``: the library calls
it for ``email_is_used`` / ``phone_number_is_used`` and password resets, the
authentication backend calls it for code logins, and the pages below call it
through :func:`django_ciam_otp.identity.find_user`, so every part of the site
agrees on who owns an address. Recipients arrive in canonical form (E.164 phone
numbers; emails with an ASCII lower-case domain and ASCII letters of the local
part in lower case).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.crypto import get_random_string

from django_ciam_otp.models import Channel

from .models import Profile


def find_user(channel: str, recipient: str) -> list[Any]:
    """Candidate users for ``recipient``: by email (case-insensitive) or profile phone number.

    Candidates only: ``__iexact`` folds more than ASCII case on PostgreSQL and
    MySQL (``alıce`` finds ``alice``), so the library keeps a candidate only
    when :func:`address_of` gives the recipient's canonical form
    (:mod:`django_ciam_otp.identity`). A site's own look-up may be as loose as
    it likes; it cannot hand one person's account to a look-alike address.
    """
    if channel == Channel.EMAIL:
        return list(get_user_model()._default_manager.filter(email__iexact=recipient)[:10])
    profile = Profile.objects.filter(phone_number=recipient).select_related("user").first()
    return [profile.user] if profile is not None else []


def address_of(user: Any, channel: str) -> str | None:
    """The address stored on ``user`` (``CIAM_OTP["USER_ADDRESS"]``): what its codes go to."""
    if channel == Channel.EMAIL:
        return user.email or None
    return phone_number_of(user)


def new_user(channel: str, recipient: str) -> Any:
    """An unsaved user for a verified recipient.

    The username is the recipient itself, or the recipient with a suffix when
    an older account kept it as its username after changing its address
    (people log in by email or phone number, never by username).
    """
    model = get_user_model()
    username = recipient
    while model._default_manager.filter(**{model.USERNAME_FIELD: username}).exists():
        username = f"{recipient}-{get_random_string(6, '0123456789abcdefghjkmnpqrstuvwxyz')}"
    user = model(**{model.USERNAME_FIELD: username})
    if channel == Channel.EMAIL:
        user.email = recipient
    return user


@transaction.atomic
def save_new_user(user: Any, channel: str, recipient: str) -> Any:
    """Save a user made by :func:`new_user`, with a profile when it signed up by phone."""
    user.save()
    if channel == Channel.SMS:
        Profile.objects.create(user=user, phone_number=recipient)
    return user


@transaction.atomic
def set_recipient(user: Any, channel: str, recipient: str) -> None:
    """Make ``recipient`` the user's email address or mobile number.

    Raises ``django.db.IntegrityError`` when another account took the phone
    number in the meantime (the unique constraint decides, not a read).
    """
    if channel == Channel.EMAIL:
        user.email = recipient
        user.save(update_fields=["email"])
    else:
        Profile.objects.update_or_create(user=user, defaults={"phone_number": recipient})


def phone_number_of(user: Any) -> str | None:
    profile = Profile.objects.filter(user=user).first()
    return profile.phone_number if profile is not None else None
