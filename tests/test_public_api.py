"""The public Python API: what ``from django_ciam_otp import ...`` gives, and its types."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

import django_ciam_otp
from django_ciam_otp import flows

pytestmark = pytest.mark.django_db


def test_the_package_exports_the_flows_themselves():
    assert django_ciam_otp.send_otp is flows.send_otp
    assert django_ciam_otp.verify_otp is flows.verify_otp
    assert django_ciam_otp.SendResult is flows.SendResult
    with pytest.raises(AttributeError):
        django_ciam_otp.no_such_name  # noqa: B018


def test_a_typed_site_checks_against_the_real_signatures():
    """mypy reads tests/typed/usage.py: right calls pass, the marked wrong ones stay errors."""
    api = pytest.importorskip("mypy.api")
    usage = Path(__file__).parent / "typed" / "usage.py"
    stdout, stderr, status = api.run(
        [
            str(usage),
            # A site's own mypy, not the project's [tool.mypy] (its django-stubs plugin is
            # a dev dependency, absent from the Django 6 run).
            "--config-file=",
            "--follow-imports=silent",  # the package's own modules are not what is checked here
            "--ignore-missing-imports",
            "--warn-unused-ignores",
            "--no-incremental",
            "--python-version=3.11",
        ]
    )
    assert status == 0, stdout + stderr


@pytest.mark.parametrize("client_id", [None, "", "no-such-client"])
def test_no_site_client_is_improperly_configured_naming_the_fix(settings, client_id):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SITE_CLIENT_ID": client_id}
    with pytest.raises(ImproperlyConfigured, match="create_otp_client") as raised:
        django_ciam_otp.send_otp(usage="signup", phone_number="13612345678")
    assert "SITE_CLIENT_ID" in str(raised.value)
    with pytest.raises(ImproperlyConfigured):
        django_ciam_otp.verify_otp(None, "token", "123456", phone_number="13612345678")


def test_the_site_client_is_the_default(api_client, settings, sms_outbox):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SITE_CLIENT_ID": api_client.client.client_id}
    sent = django_ciam_otp.send_otp(usage="signup", phone_number="13612345678")
    assert sent.token.client_id == api_client.client.pk


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        ("+1 202 555 0143", "Mobile numbers of US are not accepted; accepted regions: CN"),
        ("12345", "Not a valid mobile number of an accepted region (CN)"),
    ],
)
def test_a_malformed_number_says_which_regions_are_accepted(api, api_client, number, fragment):
    response = api.send({"usage": "signup", "phone_number": number}, auth=api_client)
    body = response.json()
    assert body["error"] == "malformed_phone_number"
    assert fragment in body["error_description"]
