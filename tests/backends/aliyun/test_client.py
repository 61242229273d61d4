"""The SDK client of the Alibaba Cloud backend: its life, limits, endpoint and credentials.

The real SDK against the fake at the HTTP layer (``fake.py``), or against
real sockets on 127.0.0.1 where what matters is the network itself (a
server that never answers, a port nobody listens on).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp.backends.base import BackendMisconfigured, TransientDeliveryError
from django_ciam_otp.backends.sms.aliyun import SMSBackend, sdk

from .fake import ACCESS_KEY_ID, ACCESS_KEY_SECRET, FakeAliyun
from .test_send import make_message

Configure = Callable[..., None]


# --- one client per process, timeouts ---------------------------------------------------------


def test_one_client_serves_many_messages(backend: SMSBackend, fake: FakeAliyun) -> None:
    backend.send(make_message())
    SMSBackend().send(make_message(token_id=8))  # another instance, same settings

    assert len(fake.sends) == 2
    assert backend.get_client() is SMSBackend().get_client()


def test_a_forked_worker_builds_its_own_client(
    backend: SMSBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    parents = backend.get_client()
    monkeypatch.setattr(os, "getpid", lambda: -1)  # what a prefork child sees: another pid

    childs = backend.get_client()

    assert childs is not parents
    assert [key[0] for key in sdk.CLIENTS.clients] == [-1]  # the parent's is dropped, not reused


def test_a_forked_child_drops_the_inherited_connection_pools(backend: SMSBackend) -> None:
    core = sdk.import_sdk()["core"]
    backend.send(make_message())
    assert core.DaraCore._sessions  # the SDK keeps its requests sessions class-wide

    sdk._forget_inherited_sessions(core)  # what os.register_at_fork runs in the child

    assert core.DaraCore._sessions == {} and sdk.CLIENTS.clients == {}


def test_settings_change_gives_a_new_client(fake: FakeAliyun, configure: Configure) -> None:
    configure()
    first = SMSBackend().get_client()
    configure(TIMEOUT=2)

    assert SMSBackend().get_client() is not first


@pytest.mark.parametrize(
    ("total", "expected"), [(4, (2.0, 2.0)), (1, (0.5, 0.5)), (10, (2.0, 8.0)), (2.5, (1.25, 1.25))]
)
def test_timeout_split(total: float, expected: tuple[float, float]) -> None:
    assert sdk.timeouts(total) == expected


def test_the_client_carries_the_timeouts_in_milliseconds(
    fake: FakeAliyun, configure: Configure
) -> None:
    configure(TIMEOUT=3)
    client = SMSBackend().get_client()

    assert (client._connect_timeout, client._read_timeout) == (1500, 1500)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_timeout_bounds_the_wait_for_the_answer(configure: Configure, silent_server: int) -> None:
    configure(ENDPOINT=f"http://127.0.0.1:{silent_server}", TIMEOUT=1)

    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert time.monotonic() - started < 2.5
    assert excinfo.value.provider_code == "Network.ReadTimeout"  # it may have been sent


def test_connection_refused_is_transient_and_certainly_unsent(configure: Configure) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configure(ENDPOINT=f"http://127.0.0.1:{port}")

    with pytest.raises(TransientDeliveryError) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "Network.ConnectFailed"


# --- endpoints, regions, credential modes ------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("dysmsapi.aliyuncs.com", ("https", "dysmsapi.aliyuncs.com")),
        ("dysmsapi.ap-southeast-1.aliyuncs.com", ("https", "dysmsapi.ap-southeast-1.aliyuncs.com")),
        ("http://127.0.0.1:8080/", ("http", "127.0.0.1:8080")),
        ("HTTPS://sms.internal:443", ("https", "sms.internal:443")),
    ],
)
def test_endpoints(endpoint: str, expected: tuple[str, str]) -> None:
    resolved = sdk.resolve_endpoint(endpoint)
    assert resolved is not None and (resolved.scheme, resolved.host) == expected


def test_no_endpoint_means_the_sdks_for_the_region(fake: FakeAliyun, configure: Configure) -> None:
    configure(ENDPOINT=None, REGION="cn-hangzhou")

    SMSBackend().send(make_message())

    assert fake.sends[0].headers["host"] == "dysmsapi.aliyuncs.com"


@pytest.mark.parametrize("endpoint", ["ftp://sms.example.com", "dysmsapi", "http://", 42])
def test_bad_endpoints_are_refused(configure: Configure, endpoint: Any) -> None:
    configure(ENDPOINT=endpoint)

    with pytest.raises(ImproperlyConfigured, match="ENDPOINT"):
        SMSBackend()


@pytest.mark.parametrize("region", [None, "", "Hangzhou", "cn hangzhou"])
def test_a_region_is_required(configure: Configure, region: Any) -> None:
    configure(REGION=region)

    with pytest.raises(ImproperlyConfigured, match="REGION"):
        SMSBackend()


def test_an_unknown_credential_mode_is_refused(configure: Configure) -> None:
    configure(CREDENTIALS="env")

    with pytest.raises(ImproperlyConfigured, match="CREDENTIALS"):
        SMSBackend()


# --- credentials -------------------------------------------------------------------------------


@pytest.fixture
def no_credentials_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing for the default chain: no environment, no profile files, not on ECS.

    The SDK reads the environment once, at import, into ``auth_util``.
    """
    from alibabacloud_credentials.utils import auth_util

    for name in (
        "environment_access_key_id",
        "environment_access_key_secret",
        "environment_security_token",
        "environment_credentials_file",
        "environment_credentials_uri",
        "environment_oidc_token_file",
    ):
        monkeypatch.setattr(auth_util, name, None)
    monkeypatch.setattr(auth_util, "enable_oidc_credential", False)
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")
    monkeypatch.setattr(auth_util, "environment_cli_profile_disabled", "true")
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize("mode", [None, "default"])
def test_credentials_from_the_sdks_default_chain(
    fake: FakeAliyun,
    configure: Configure,
    monkeypatch: pytest.MonkeyPatch,
    no_credentials_anywhere: None,
    mode: str | None,
) -> None:
    from alibabacloud_credentials.utils import auth_util

    monkeypatch.setattr(auth_util, "environment_access_key_id", ACCESS_KEY_ID)
    monkeypatch.setattr(auth_util, "environment_access_key_secret", ACCESS_KEY_SECRET)
    configure(CREDENTIALS=mode, ACCESS_KEY_ID=None, ACCESS_KEY_SECRET=None)

    assert SMSBackend().send(make_message()).message_id
    assert fake.rejected == []  # signed with the environment's key


def test_no_credentials_anywhere_stops_the_line(
    fake: FakeAliyun, configure: Configure, no_credentials_anywhere: None
) -> None:
    configure(ACCESS_KEY_ID=None, ACCESS_KEY_SECRET=None)

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "NoCredentials"
    assert fake.received == []


def credential_client() -> Any:
    """A site's own credential (an STS or RAM role, say), as a credentials Client."""
    from alibabacloud_credentials.client import Client
    from alibabacloud_credentials.models import Config

    return Client(
        Config(type="access_key", access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET)
    )


def credential_provider() -> Any:
    """... or as a credentials provider."""
    from alibabacloud_credentials.provider import StaticAKCredentialsProvider

    return StaticAKCredentialsProvider(
        access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET
    )


def failing_factory() -> Any:
    raise RuntimeError("the role could not be assumed")


@pytest.mark.parametrize("factory", ["credential_client", "credential_provider"])
def test_credentials_from_a_factory(fake: FakeAliyun, configure: Configure, factory: str) -> None:
    configure(
        CREDENTIALS=f"{__name__}.{factory}",
        ACCESS_KEY_ID=None,
        ACCESS_KEY_SECRET=None,
    )

    assert SMSBackend().send(make_message()).message_id
    assert fake.rejected == []


def test_a_failing_credential_factory_stops_the_line(
    fake: FakeAliyun, configure: Configure
) -> None:
    configure(CREDENTIALS=f"{__name__}.failing_factory", ACCESS_KEY_ID=None, ACCESS_KEY_SECRET=None)

    with pytest.raises(BackendMisconfigured) as excinfo:
        SMSBackend().send(make_message())

    assert excinfo.value.provider_code == "NoCredentials"
    assert "the role could not be assumed" not in excinfo.value.reason  # no secret material
