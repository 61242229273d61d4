"""Hostile and odd input never gets a 500 or a non-contract answer."""

from __future__ import annotations

import pytest

from django_ciam_otp.models import OTPToken

pytestmark = pytest.mark.django_db


def assert_contract_error(response, status: int = 400, error: str = "invalid_request") -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json;charset=UTF-8"
    assert response.json()["error"] == error


def test_deeply_nested_json(api, api_client):
    assert_contract_error(api.send("[" * 100_000 + "]" * 100_000, auth=api_client))
    assert_contract_error(api.send('{"a":' * 50_000 + "1" + "}" * 50_000, auth=api_client))


def test_body_too_large(api, api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = '{"usage": "signup", "phone_number": "13612345678", "pad": "' + "x" * 5000 + '"}'
    response = api.send(body, auth=api_client)
    assert response.status_code in (400, 413)
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body,error",
    [
        (
            {"usage": "login", "phone_number": "13612345678", "auth_source_id": "a\x00b"},
            "invalid_auth_source",
        ),
        ({"usage": "signup", "email": "a\x00b@example.com"}, "malformed_email"),
        ({"usage": "signup", "phone_number": "136\x0012345678"}, "malformed_phone_number"),
        ({"usage": "sign\x00up", "phone_number": "13612345678"}, "invalid_request"),
        (
            {"usage": "login", "phone_number": "13612345678", "auth_source_id": "x" * 10_000},
            "invalid_auth_source",
        ),
        # Not text at all (a lone surrogate): the shape is wrong before the address is.
        ({"usage": "signup", "email": "\ud800@example.com"}, "invalid_request"),
        ({"usage": "signup", "phone_number": "\u202e13612345678"}, "malformed_phone_number"),
        ({"usage": "signup", "phone_number": "١٣٦١٢٣٤٥٦٧٨"}, None),  # Arabic-Indic digits normalise
        ({"usage": "signup", "phone_number": True}, "invalid_request"),
        ({"usage": "signup", "phone_number": 1.5}, "invalid_request"),
        ({"usage": ["signup"], "phone_number": "13612345678"}, "invalid_request"),
        ({"usage": "SIGNUP", "phone_number": "13612345678"}, "invalid_request"),
        ({"usage": " signup", "phone_number": "13612345678"}, "invalid_request"),
    ],
)
def test_odd_fields(api, api_client, sms_source, body, error):
    response = api.send(body, auth=api_client)
    if error is None:
        assert response.status_code == 200, response.content
    else:
        assert_contract_error(response, error=error)


def test_lone_surrogate_in_raw_json(api, api_client):
    response = api.send('{"usage": "signup", "email": "\\ud800@example.com"}', auth=api_client)
    assert response.status_code == 400
    assert response.json()["error"] in {"malformed_email", "invalid_request"}


@pytest.mark.parametrize(
    "otp_token,otp",
    [
        ("a\x00b", "123456"),
        ("x" * 600, "123456"),
        ("tok", "1" * 10_000),
        ("tok", "\x00"),
        ("tok", "１２３４５６"),
    ],
)
def test_odd_verify_fields(api, api_client, otp_token, otp):
    response = api.verify(
        {"otp_token": otp_token, "otp": otp, "phone_number": "13612345678", "usage": "signup"},
        auth=api_client,
    )
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_request", "invalid_otp_token"}


def test_authorization_header_garbage(api, api_client):
    for header in [
        "Basic " + "A" * 100_000,
        "Basic ====",
        "basic dGVzdDp0ZXN0",
        "Basic\tdGVzdDp0ZXN0",
        "Basic Zm9vOmJhcg== extra",
    ]:
        response = api.send({"usage": "signup", "phone_number": "13612345678"}, auth=header)
        assert_contract_error(response, status=401, error="invalid_client")
    assert not OTPToken.objects.exists()


def test_content_type_variants(api, api_client):
    body = {"usage": "signup", "phone_number": "13612345678"}
    import json

    ok = api.post(
        "/otp/send",
        json.dumps(body),
        auth=api_client,
        content_type="application/json; charset=utf-8",
    )
    assert ok.status_code == 200
    for content_type in ["text/plain", "application/xml", "multipart/form-data; boundary=x"]:
        response = api.post(
            "/otp/send", json.dumps(body), auth=api_client, content_type=content_type
        )
        assert_contract_error(response, status=415)


def test_head_options_put_delete(client, api_client):
    for method in ("put", "delete", "patch", "get"):
        response = getattr(client, method)("/otp/send", HTTP_AUTHORIZATION=api_client.authorization)
        assert_contract_error(response, status=405)
