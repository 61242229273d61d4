"""The Tencent Cloud SDK, imported lazily, and one ``SmsClient`` per worker process.

A client holds a ``requests.Session`` (its connection pool), so :func:`get_client`
keeps one per configuration and process
(:class:`~django_ciam_otp.backends.sms.sdk_support.ClientCache`).

Timeouts: the SDK passes ``HttpProfile.reqTimeout`` to ``requests`` as is, so a
``(connect, read)`` pair bounds the connection and the wait for the answer;
:func:`timeouts` splits ``TIMEOUT`` (seconds one API call may take) between
them. The SDK's own retryer is not used (the delivery task retries), so one
call is one request and ``TIMEOUT`` bounds it, DNS resolution aside (requests
does not time ``getaddrinfo``). The system check ``ciam_otp.W101`` compares
the worst case of one ``send()`` with the delivery task's soft time limit,
which interrupts anything longer.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..sdk_support import (
    ClientCache,
    Endpoint,
    import_modules,
    parse_endpoint,
    redact_sdk_loggers,
    split_timeout,
)

PIP_EXTRA = "django-ciam-otp[tencent]"
SDK_LOGGER_NAME = "tencentcloud_sdk_common"  # tencentcloud.common.abstract_client.LOGGER_NAME

#: Endpoint names (``TENCENT_SMS["ENDPOINT"]``) and the host each means. Request
#: structure, "service address": https://cloud.tencent.com/document/api/382/38766
#: and, international site, https://www.tencentcloud.com/document/api/382/40465
ENDPOINTS = {
    "mainland": "sms.tencentcloudapi.com",  # nearest region, cloud.tencent.com accounts
    "international": "sms.intl.tencentcloudapi.com",  # tencentcloud.com accounts
}
#: ``"regional"``: ``sms.<REGION>.tencentcloudapi.com``, for latency-sensitive sites.
#: The access domains the pages above list (an access point, not where SMS is served).
ACCESS_REGIONS = frozenset(
    {
        "ap-guangzhou",
        "ap-shanghai",
        "ap-beijing",
        "ap-chengdu",
        "ap-chongqing",
        "ap-hongkong",
        "ap-singapore",
        "ap-bangkok",
        "ap-mumbai",
        "ap-seoul",
        "ap-tokyo",
        "na-ashburn",
        "na-siliconvalley",
        "eu-frankfurt",
    }
)
#: ``REGION`` values the SMS API (2021-01-11) documents in its common parameters
#: (``X-TC-Region``): mainland site https://cloud.tencent.com/document/api/382/52071,
#: international site https://www.tencentcloud.com/document/api/382/40466.
SMS_REGIONS = frozenset({"ap-beijing", "ap-guangzhou", "ap-nanjing", "ap-singapore"})
REGION_FORMAT = re.compile(r"^[a-z]{2}-[a-z]+(?:-[a-z0-9]+)*$")

#: What the SDK's DEBUG records of calls carrying a code or a phone number hold:
#: it logs each request (``SendRequest: ...`` with its body: the code and the
#: number) and each answer (the number).
REDACTED_MARKERS = (
    "X-TC-Action: SendSms",
    "X-TC-Action: PullSmsSendStatusByPhoneNumber",
    "SendStatusSet",
    "PullSmsSendStatusSet",
    "PhoneNumber",
)

MODULES = {
    "credential": "tencentcloud.common.credential",
    "exception": "tencentcloud.common.exception.tencent_cloud_sdk_exception",
    "client_profile": "tencentcloud.common.profile.client_profile",
    "http_profile": "tencentcloud.common.profile.http_profile",
    "sms_client": "tencentcloud.sms.v20210111.sms_client",
    "models": "tencentcloud.sms.v20210111.models",
}


def import_sdk() -> dict[str, ModuleType]:
    """Import the SDK on first use so the app works without the optional dependency."""
    modules = import_modules(
        MODULES,
        needs="The Tencent Cloud SMS backend needs the Tencent Cloud SDK",
        pip_extra=PIP_EXTRA,
    )
    redact_sdk_loggers([SDK_LOGGER_NAME], REDACTED_MARKERS)
    return modules


# --- endpoint, region, timeouts ---------------------------------------------------------


def resolve_endpoint(endpoint: Any, region: Any) -> Endpoint:
    """``ENDPOINT`` -> scheme and host; raise ``ImproperlyConfigured`` for a bad value.

    ``None`` or ``"mainland"``: ``sms.tencentcloudapi.com``; ``"international"``:
    ``sms.intl.tencentcloudapi.com``; ``"regional"``: ``sms.<REGION>.tencentcloudapi.com``;
    a host name (HTTPS); or a URL (``http://127.0.0.1:8080`` points the tests at a fake).
    """
    if endpoint is None or endpoint == "":
        endpoint = "mainland"
    if not isinstance(endpoint, str):
        raise ImproperlyConfigured(f'TENCENT_SMS["ENDPOINT"] must be a string, not {endpoint!r}')
    if endpoint in ENDPOINTS:
        return Endpoint("https", ENDPOINTS[endpoint])
    if endpoint == "regional":
        if not isinstance(region, str) or not REGION_FORMAT.match(region):
            raise ImproperlyConfigured(
                'TENCENT_SMS["ENDPOINT"] is "regional" but REGION is not a region name'
            )
        return Endpoint("https", f"sms.{region}.tencentcloudapi.com")
    return parse_endpoint(
        endpoint, "TENCENT_SMS", '"mainland", "international", "regional", a host name'
    )


def check_region(region: Any) -> str:
    """``REGION`` as sent in ``X-TC-Region``; raise ``ImproperlyConfigured`` when unusable.

    The SDK leaves the header out for an empty region, and SendSms requires it.
    """
    if not isinstance(region, str) or not REGION_FORMAT.match(region):
        raise ImproperlyConfigured(
            f'TENCENT_SMS["REGION"] = {region!r} is not a region name such as "ap-guangzhou"'
        )
    return region


def timeouts(total: Any) -> tuple[float, float]:
    """``TIMEOUT`` (seconds for one API call) -> ``(connect, read)`` for ``requests``."""
    return split_timeout(total, "TENCENT_SMS")


# --- credentials ---------------------------------------------------------------------------


def credential_mode(config: dict[str, Any]) -> str:
    """``"static"``, ``"default"`` or a dotted path, from ``CREDENTIALS`` (``None``: decide).

    ``None`` means static keys when ``SECRET_ID`` or ``SECRET_KEY`` is set,
    else the SDK's default chain, as boto3 does for AWS.
    """
    mode = config.get("CREDENTIALS")
    if mode is None:
        return "static" if config.get("SECRET_ID") or config.get("SECRET_KEY") else "default"
    return str(mode)


def make_credential(config: dict[str, Any], sdk: dict[str, ModuleType]) -> Any:
    """The credential object for the client; the SDK exception propagates when it fails.

    ``"default"`` is ``DefaultCredentialProvider``: environment
    (``TENCENTCLOUD_SECRET_ID``/``TENCENTCLOUD_SECRET_KEY``), the profile file
    (``~/.tencentcloud/credentials``), a CVM instance role, then a TKE OIDC role.
    A dotted path names a callable taking no argument and returning an SDK
    credential (``STSAssumeRoleCredential``, ``OIDCRoleArnCredential``...).
    Role credentials refresh themselves before they expire.
    """
    mode = credential_mode(config)
    module = sdk["credential"]
    if mode == "static":
        return module.Credential(config.get("SECRET_ID"), config.get("SECRET_KEY"))
    if mode == "default":
        try:
            return module.DefaultCredentialProvider().get_credential()
        except sdk["exception"].TencentCloudSDKException:
            raise
        except Exception as exc:  # noqa: BLE001 - the TKE step raises OSError when absent
            raise sdk["exception"].TencentCloudSDKException(
                "ClientSideError", f"no credentials found by the SDK's default chain ({exc})"
            ) from None
    factory = import_string(mode)
    return factory()


# --- one client per process ---------------------------------------------------------------

CLIENTS = ClientCache()
#: Drop every cached client (settings changed; tests that change the environment).
forget_clients = CLIENTS.forget


def client_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two clients different (:class:`ClientCache` adds the process id)."""
    return (
        config.get("CREDENTIALS"),
        config.get("SECRET_ID"),
        config.get("SECRET_KEY"),
        config.get("REGION"),
        config.get("ENDPOINT"),
        config.get("TIMEOUT"),
    )


def get_client(config: dict[str, Any], sdk: dict[str, ModuleType]) -> Any:
    """The ``SmsClient`` of this process for ``config``, built on first use.

    Raises ``ImproperlyConfigured`` for a bad region, endpoint or timeout and
    the SDK's exception when credentials cannot be had; neither is cached.
    """
    return CLIENTS.get(client_key(config), lambda: build_client(config, sdk))


def build_client(config: dict[str, Any], sdk: dict[str, ModuleType]) -> Any:
    """A new ``SmsClient`` for ``config``."""
    region = check_region(config.get("REGION"))
    endpoint = resolve_endpoint(config.get("ENDPOINT"), region)
    http_profile = sdk["http_profile"].HttpProfile(
        protocol=endpoint.scheme,
        endpoint=endpoint.host,
        reqMethod="POST",
        reqTimeout=timeouts(config.get("TIMEOUT")),
        keepAlive=True,
    )
    # en-US so the error messages that end up in the token log are English.
    profile = sdk["client_profile"].ClientProfile(httpProfile=http_profile, language="en-US")
    credential = make_credential(config, sdk)
    return sdk["sms_client"].SmsClient(credential, region, profile)
