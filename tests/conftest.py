"""Fixtures shared by the whole suite: clients, auth sources, an API caller, outboxes."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client

from django_ciam_otp.flows.provisioning import create_client
from django_ciam_otp.models import AuthSource, OTPClient
from tests.celery_app import app as celery_app  # noqa: F401  (binds shared tasks to it)

# tests/postgres/ puts the default database on PostgreSQL for its whole session:
# a plain `pytest` leaves it out; `pytest tests/postgres` (named explicitly) runs it.
collect_ignore = ["postgres"]


def use_example_project(settings: Any, *, load_data: bool = True) -> None:
    """Serve the example project's pages with its own user settings (and its demo data).

    ``SITE_CLIENT_ID`` and the ``USER_*`` keys come from ``example_project/settings.py``
    itself, so the tests run the demo as it is configured and cannot drift from it
    (its phone numbers live on ``demo.Profile``: a copy that forgot ``USER_ADDRESS``
    once made every code login by phone a dead end in the browser tests only).
    """
    from example_project import settings as example

    settings.ROOT_URLCONF = "example_project.urls"
    settings.LOGIN_URL = "demo:login"
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        **{
            key: value
            for key, value in example.CIAM_OTP.items()
            if key == "SITE_CLIENT_ID" or key.startswith("USER_")
        },
    }
    if load_data:
        call_command("load_demo_data", stdout=io.StringIO())


def basic_auth(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass
class ApiClient:
    """An OTP API client with its raw secret."""

    client: OTPClient
    secret: str

    @property
    def authorization(self) -> str:
        return basic_auth(self.client.client_id, self.secret)


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Rate-limit counters, the per-process copies (tables, stops, circuits) and the SMS
    outbox and call journal start empty."""
    from django_ciam_otp import breaker, circuit, counters, sitewide, snapshots
    from django_ciam_otp.backends.sms import locmem
    from tests.support import sms_backends

    for cache in caches.all():
        cache.clear()
    snapshots.clear_all()
    breaker.forget_local_copy()
    circuit.forget_local_copy()
    sitewide.forget_local_copy()
    counters.reset_breaker()
    locmem.outbox.clear()
    sms_backends.journal.clear()
    yield
    locmem.outbox.clear()


@pytest.fixture
def sms_outbox() -> list[Any]:
    from django_ciam_otp.backends.sms import locmem

    return locmem.outbox


@pytest.fixture
def client_factory(db: None) -> Callable[..., ApiClient]:
    counter = iter(range(1, 10_000))

    def make(**kwargs: Any) -> ApiClient:
        kwargs.setdefault("name", f"client {next(counter)}")
        name = kwargs.pop("name")
        client, secret = create_client(name, **kwargs)
        return ApiClient(client, secret)

    return make


@pytest.fixture
def api_client(client_factory: Callable[..., ApiClient]) -> ApiClient:
    return client_factory(client_id="TEST_CLIENT_ID", client_secret="TEST_CLIENT_SECRET")


@pytest.fixture
def sms_source(db: None) -> AuthSource:
    return AuthSource.objects.create(
        id="SMS_SOURCE", channel="sms", code_length=6, code_validity=60
    )


@pytest.fixture
def email_source(db: None) -> AuthSource:
    return AuthSource.objects.create(
        id="EMAIL_SOURCE", channel="email", code_length=6, code_validity=60
    )


class Api:
    """Posts JSON to the OTP endpoints the way an outside caller would."""

    def __init__(self, http: Client, capture: Callable[..., Any]) -> None:
        self.http = http
        self.capture = capture

    def post(
        self,
        path: str,
        body: Any,
        *,
        auth: ApiClient | str | None,
        content_type: str = "application/json",
        **headers: str,
    ) -> Any:
        if isinstance(auth, ApiClient):
            headers["HTTP_AUTHORIZATION"] = auth.authorization
        elif isinstance(auth, str):
            headers["HTTP_AUTHORIZATION"] = auth
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        with self.capture(execute=True):
            response = self.http.post(path, data=data, content_type=content_type, **headers)
        return response

    def send(self, body: Any, *, auth: ApiClient | str | None, **headers: str) -> Any:
        return self.post("/otp/send", body, auth=auth, **headers)

    def verify(self, body: Any, *, auth: ApiClient | str | None, **headers: str) -> Any:
        return self.post("/otp/verify", body, auth=auth, **headers)


@pytest.fixture
def api(client: Client, django_capture_on_commit_callbacks: Callable[..., Any]) -> Api:
    return Api(client, django_capture_on_commit_callbacks)
