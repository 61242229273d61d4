"""Fixtures of the AWS SNS SMS tests: an isolated AWS environment, settings, a stubbed backend."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from django_ciam_otp.backends.sms import sns
from django_ciam_otp.backends.sms.sns import sdk

from ..provider_fixtures import configurer, fresh_clients
from .support import FakeSNS, serve, sns_conf


@pytest.fixture(autouse=True)
def _isolated_aws_environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No test but the live one sees this machine's AWS credentials, profiles or region.

    boto3's chain would otherwise find them (or ask the instance metadata
    service, a network call), and the proxies botocore honours would catch
    loopback requests.
    """
    if request.node.name.startswith("test_live"):
        return
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test builds its own clients (they are cached per process)."""
    yield from fresh_clients(sdk)


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    """Set CIAM_OTP["SNS_SMS"] and make this backend the SMS backend."""
    return configurer(settings, sns.BACKEND_PATH, "SNS_SMS", sns_conf)


@pytest.fixture
def backend(configure: Callable[..., None]) -> sns.SMSBackend:
    configure()
    return sns.SMSBackend()


@pytest.fixture
def stub(backend: sns.SMSBackend) -> Iterator[Stubber]:
    """A Stubber on the backend's own (cached) client, active for the test."""
    stubber = Stubber(backend.get_client())
    with stubber:
        yield stubber


@pytest.fixture
def fake() -> Iterator[FakeSNS]:
    yield from serve()
