"""The demo's one model: a user's mobile number, so codes can be sent to it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Profile(models.Model):
    """A user's mobile number in E.164 form (``+8613612345678``), unique across users.

    Only users with a phone number have a profile. The number is stored as
    :func:`django_ciam_otp.validators.normalize_phone_number` returns it, so
    look-ups by the normalised recipient are exact matches.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="demo_profile"
    )
    phone_number = models.CharField(_("mobile number"), max_length=20, unique=True)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return f"{self.user} ({self.phone_number})"
