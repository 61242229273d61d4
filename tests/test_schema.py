"""The OpenAPI 3 schema at /otp/schema: valid, generated without warnings, true to the contract.

The live app is fuzzed against this schema in ``tests/integration/test_api_fuzz.py``;
these checks run in the fast suite (and on every Django version) so a schema
that stops generating cleanly is caught without servers.
"""

from __future__ import annotations

import json

import pytest
import yaml
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema

from django_ciam_otp import exceptions

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(client):
    GENERATOR_STATS.reset()
    response = client.get("/otp/schema?format=json")
    assert response.status_code == 200
    assert not GENERATOR_STATS, "drf-spectacular warned while generating the schema"
    return json.loads(response.content)


def error_codes(operation: dict, status: str) -> set[str]:
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    return set(schema["properties"]["error"]["enum"])


def test_schema_is_valid_openapi_3(document):
    validate_schema(document)
    assert document["openapi"].startswith("3.0")
    assert set(document["paths"]) == {"/otp/send", "/otp/verify"}
    assert set(document["paths"]["/otp/send"]) == {"post"}


def test_yaml_by_default_and_open_to_everyone(client):
    response = client.get("/otp/schema")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(response.content)["info"]["title"] == "django-ciam-otp"


def test_client_authentication_is_http_basic(document):
    scheme = document["components"]["securitySchemes"]["clientBasic"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "basic")
    for path in ("/otp/send", "/otp/verify"):
        assert document["paths"][path]["post"]["security"] == [{"clientBasic": []}]


def test_every_send_error_of_the_contract_is_documented(document):
    send = document["paths"]["/otp/send"]["post"]
    assert set(send["responses"]) == {
        "200",
        "400",
        "401",
        "405",
        "409",
        "413",
        "415",
        "422",
        "429",
        "503",
    }
    assert error_codes(send, "400") == {
        "invalid_request",
        "invalid_auth_source",
        "malformed_phone_number",
        "malformed_email",
        "invalid_email",
        "phone_number_is_used",
        "email_is_used",
        "sms_rate_limit_exceeded",
        "email_rate_limit_exceeded",
        "insufficient_sms_quota",
        "insufficient_email_quota",
    }
    assert error_codes(send, "401") == {exceptions.InvalidClient.code}
    assert error_codes(send, "429") == {exceptions.RateLimitExceeded.code}
    assert error_codes(send, "503") == {exceptions.TemporarilyUnavailable.code}
    ok = send["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["required"] == ["otp_token", "retry_after"]
    assert send["responses"]["200"]["headers"]["Cache-Control"]["required"] is True
    assert "Retry-After" in send["responses"]["429"]["headers"]


def test_every_verify_error_of_the_contract_is_documented(document):
    verify = document["paths"]["/otp/verify"]["post"]
    codes = error_codes(verify, "400")
    for error in (
        exceptions.InvalidOTPToken,
        exceptions.InvalidOTP,
        exceptions.OTPExpired,
        exceptions.TooManyAttempts,
        exceptions.InvalidRequest,
    ):
        assert error.code in codes
    assert verify["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "otp_token",
        "otp",
    ]


def test_only_this_apps_endpoints_are_listed(document):
    assert not [path for path in document["paths"] if not path.startswith("/otp/")]
    assert "/otp/schema" not in document["paths"]


def test_serving_the_api_never_imports_drf_spectacular():
    """A web worker that never serves /otp/schema starts without it (issue 15: RSS)."""
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import django_ciam_otp.views, django_ciam_otp.urls;"
        "print(sorted(m for m in sys.modules if m.startswith('drf_spectacular')))"
    )
    env = {**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", out
