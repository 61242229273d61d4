"""Every model is registered with its own admin when the package is imported."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin

from django_ciam_otp import admin as otp_admin
from django_ciam_otp.models import (
    AuthSource,
    BlockedPrefix,
    OTPClient,
    OTPToken,
    Quota,
    TestRecipient,
)

pytestmark = pytest.mark.django_db

# --- registration -----------------------------------------------------------------------


def test_importing_the_admin_package_registers_every_model_with_its_admin():
    """The package's modules register on the default site as the single admin.py did."""
    expected = {
        AuthSource: otp_admin.AuthSourceAdmin,
        OTPClient: otp_admin.OTPClientAdmin,
        Quota: otp_admin.QuotaAdmin,
        OTPToken: otp_admin.OTPTokenAdmin,
        TestRecipient: otp_admin.TestRecipientAdmin,
        BlockedPrefix: otp_admin.BlockedPrefixAdmin,
    }
    registered = {
        model: type(admin.site.get_model_admin(model))
        for model in apps.get_app_config("ciam_otp").get_models()
        if admin.site.is_registered(model)
    }
    assert registered == expected
