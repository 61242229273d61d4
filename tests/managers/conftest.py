"""Fixtures of the managers' tests: a client, both SQL paths, tokens in any state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from django_ciam_otp import sql
from django_ciam_otp.models import (
    OTPClient,
    OTPToken,
)

pytestmark = pytest.mark.django_db

# 16:00 UTC is midnight in the test settings' Asia/Shanghai.
START = dt.datetime(2025, 5, 31, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=25)


@pytest.fixture
def client() -> OTPClient:
    return OTPClient.objects.create(name="c", client_id="c")


@pytest.fixture(params=["returning", "orm"])
def path(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways: ``UPDATE … RETURNING`` (PostgreSQL, SQLite) and the ORM (MySQL)."""
    if request.param == "orm":
        monkeypatch.setattr(sql, "update_returning_supported", lambda conn: False)
    return str(request.param)


@pytest.fixture
def make_token(client: OTPClient) -> Callable[..., OTPToken]:
    counter = iter(range(10_000))

    def make(**fields: Any) -> OTPToken:
        now = timezone.now()
        values: dict[str, Any] = {
            "token_hash": f"t{next(counter)}",
            "client": client,
            "channel": "sms",
            "usage": "login",
            "recipient_hash": "r",
            "recipient_masked": "+86 136****5678",
            "code_hash": "h",
            "code_length": 6,
            "code_expires_at": now + dt.timedelta(seconds=60),
            "expires_at": now + dt.timedelta(seconds=300),
            **fields,
        }
        return OTPToken.objects.create(**values)

    return make


def row(token: OTPToken) -> OTPToken:
    return OTPToken.objects.get(pk=token.pk)
