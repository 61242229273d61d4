"""Unknown paths under ``/otp/`` answer the contract's JSON 404, whatever the method.

The client enforces CSRF checks as a browser-less caller meets them in
production (Django's test client skips them unless told), so a POST to a
mistyped endpoint shows whether CSRF middleware answers first with its HTML 403.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete", "options", "head"]
PATHS = [
    "/otp",
    "/otp/",
    "/otp/nope",
    "/otp/nope/",
    "/otp/send/extra",
    "/otp/send//",
    "/otp/verify/x/y/z",
    "/otp/a/b/c/",
    "/otp/schema/x",
    "/otp/%00",
    "/otp/%2F..%2Fadmin",
    "/otp/%E4%B8%AD%E6%96%87",
    "/otp/%ZZ",
    "/otp/send%20",
    "/otp/;send",
    "/otp/send.json",
]


@pytest.fixture
def strict_client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_unknown_path_answers_json_404(strict_client: Client, method: str, path: str) -> None:
    kwargs = {"HTTP_AUTHORIZATION": "Basic Zm9vOmJhcg=="}
    if method not in ("get", "head"):  # these two take a query dict, not a body
        kwargs.update(data=json.dumps({"phone_number": "13612345678"}))
        kwargs.update(content_type="application/json")
    response = getattr(strict_client, method)(path, **kwargs)
    assert response.status_code == 404, response.content[:200]
    assert response["Content-Type"] == "application/json;charset=UTF-8"
    if method != "head":  # the test client drops the body of HEAD answers, as servers do
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "Unknown endpoint.",
        }


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_path_with_a_session_cookie_is_still_json(
    strict_client: Client, method: str
) -> None:
    """A browser's cookie (and so CSRF's interest in the request) changes nothing."""
    strict_client.cookies["sessionid"] = "x" * 32
    strict_client.cookies["csrftoken"] = "y" * 32
    response = getattr(strict_client, method)("/otp/nope", data="{}", content_type="text/plain")
    assert response.status_code == 404
    assert response.json()["error"] == "invalid_request"


def test_known_endpoints_keep_their_answers(strict_client: Client) -> None:
    """The catch-all does not swallow the real endpoints (with or without a trailing slash)."""
    for path in ["/otp/send", "/otp/send/", "/otp/verify", "/otp/verify/"]:
        response = strict_client.post(path, data="{}", content_type="application/json")
        assert response.status_code == 401, path
        assert response.json()["error"] == "invalid_client"
    assert strict_client.get("/otp/schema").status_code == 200


def test_paths_that_only_start_like_otp_are_not_the_apis(strict_client: Client) -> None:
    """``/otpx`` is not under ``/otp/``: the site's own 404, not the API's."""
    response = strict_client.get("/otpx")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


# --- without the opt-in catch-all: the rest of /otp/ is the site's ------------------------------


@pytest.fixture
def site_with_its_own_otp_pages(settings) -> None:
    settings.ROOT_URLCONF = "tests.siteurls.urls"


@pytest.mark.parametrize("path", ["/otp/send/extra", "/otp/verify/x/y", "/otp/schema/x"])
def test_paths_below_the_apis_endpoints_are_always_json_404(
    site_with_its_own_otp_pages, strict_client: Client, path: str
) -> None:
    response = strict_client.post(path, data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"] == "invalid_request"


def test_the_sites_own_otp_pages_are_left_alone(
    site_with_its_own_otp_pages, strict_client: Client
) -> None:
    assert strict_client.get("/otp/settings/").content == b"the site's own page"
    response = strict_client.get("/otp/nope")
    assert response.status_code == 404
    assert "json" not in response["Content-Type"]  # the site's own 404 page
