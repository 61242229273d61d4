"""Tencent Cloud SMS through the official SDK (``pip install "django-ciam-otp[tencent]"``).

Tencent sends only templates approved in its console, so this backend renders no
text: it overrides ``send()`` and passes two template parameters, ``{1}`` the
code and ``{2}`` its validity in whole minutes, e.g. an approved template
"Your code is {1}, valid for {2} minutes."

Settings live in ``CIAM_OTP["TENCENT_SMS"]`` (see ``conf.DEFAULTS``); keyword
arguments to the constructor override them, lower-cased (``sign_name=...``).
``ENDPOINT`` may carry a scheme: ``http://127.0.0.1:8080`` is how the tests
point the SDK at a local fake; production should leave it ``None`` (the SDK's
HTTPS default) or give a bare host name, which is reached over HTTPS.

Tencent's answers are sorted into "retry" and "give up" by one table,
:data:`ERROR_CLASSES`. Neither the code nor the full phone number is ever
logged or put in an error reason; the SDK's own debug logger, which would print
the request body, is filtered for ``SendSms`` traffic.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

import phonenumbers
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ...conf import otp_settings
from ...crypto import mask_recipient
from ..base import (
    DeliveryError,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from .base import BaseSMSBackend

logger = logging.getLogger(__name__)

BACKEND_PATH = "django_ciam_otp.backends.sms.tencent.SMSBackend"
PIP_EXTRA = "django-ciam-otp[tencent]"
SDK_LOGGER_NAME = "tencentcloud_sdk_common"  # tencentcloud.common.abstract_client.LOGGER_NAME

_T, _P = TransientDeliveryError, PermanentDeliveryError

# What a Tencent error code means for the delivery task: retry with backoff
# (transient) or give up and hand the quota back (permanent). Keys are exact
# codes or a bare category (the part before the first dot), which is the
# fallback for codes not listed; a code in no listed category is transient,
# as the BaseBackend contract says of anything unexpected.
#
# The rule of thumb is "can a retry within the code's life (minutes) succeed?".
# Per-number limits longer than that (an hour, a day) are permanent for this
# token even though they lift eventually; configuration errors (credentials,
# signature, template, app id, clock skew) are permanent because no retry
# fixes them and an operator must act. Sources: Tencent Cloud API 3.0 common
# error codes (cloud.tencent.com/document/api/382/52075), SMS send error codes
# (cloud.tencent.com/document/api/382/59177) and the SDK's errorcodes.py.
ERROR_CLASSES: dict[str, type[DeliveryError]] = {
    # --- SDK-side codes (no answer from Tencent, or an unusable one) ----------
    "ClientNetworkError": _T,  # connection refused, DNS, timeout
    "ServerNetworkError": _T,  # HTTP status other than 200 (gateway 5xx)
    "ClientError": _P,  # SDK misuse: bad language, signing method
    "ClientParamsError": _P,
    "InvalidCredential": _P,  # empty SECRET_ID / SECRET_KEY
    # --- common API codes -----------------------------------------------------
    "AuthFailure": _P,  # every AuthFailure.* (bad key, signature, token, CAM)
    "UnauthorizedOperation": _P,  # every UnauthorizedOperation.* (app disabled, arrears…)
    "InvalidParameter": _P,
    "InvalidParameterValue": _P,  # incl. IncorrectPhoneNumber, TemplateParameter*
    "MissingParameter": _P,
    "UnknownParameter": _P,
    "UnsupportedOperation": _P,  # mainland template to a foreign number, etc.
    "UnsupportedRegion": _P,
    "UnsupportedProtocol": _P,
    "InvalidAction": _P,
    "ActionOffline": _P,
    "NoSuchProduct": _P,
    "NoSuchVersion": _P,
    "IpInBlacklist": _P,
    "IpNotInWhitelist": _P,
    "RequestSizeLimitExceeded": _P,
    "RequestLimitExceeded": _T,  # API call rate (per account / IP), seconds
    "ServiceUnavailable": _T,
    "ResourceUnavailable": _T,
    "ResourceInsufficient": _T,
    # --- InternalError.*: Tencent or carrier side, retry ----------------------
    "InternalError": _T,  # incl. Timeout, SendAndRecvFail, OtherError, UnknownError
    "InternalError.RequestTimeException": _P,  # our clock is >10 min off: fix NTP
    "InternalError.SigVerificationFail": _P,  # credentials / signing
    "InternalError.SigFieldMissing": _P,
    "InternalError.RestApiInterfaceNotExist": _P,
    "InternalError.JsonParseFail": _P,  # our request body was rejected
    # --- LimitExceeded.*: short frequency windows retry, long ones do not -----
    "LimitExceeded": _P,  # quota, daily and per-app limits outlast the code
    "LimitExceeded.PhoneNumberThirtySecondLimit": _T,  # backoff clears 30 s
    "LimitExceeded.DeliveryFrequencyLimit": _T,  # console frequency policy
    "LimitExceeded.GlobalSmsSendingRateLimit": _T,  # send rate, not a quota
    # --- FailedOperation.*: configuration and content, except OtherError -------
    "FailedOperation": _P,  # unapproved signature/template, blacklist, balance…
    "FailedOperation.OtherError": _T,  # unspecified server-side failure
}


def classify_error(code: str) -> type[DeliveryError]:
    """The exception class for a Tencent error code: exact entry, then its category."""
    if code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    return ERROR_CLASSES.get(code.split(".", 1)[0], TransientDeliveryError)


# --- the SDK, imported lazily -------------------------------------------------


class _RedactSendSms(logging.Filter):
    """Drop the SDK's debug records for SendSms: they print the request body (the code)
    and the answer (the full phone number)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record we cannot render cannot leak either
            return True
        return not ("X-TC-Action: SendSms" in text or "SendStatusSet" in text)


def _import_sdk() -> dict[str, ModuleType]:
    """Import the SDK on first use so the app works without the optional dependency."""
    try:
        modules = {
            "credential": importlib.import_module("tencentcloud.common.credential"),
            "exception": importlib.import_module(
                "tencentcloud.common.exception.tencent_cloud_sdk_exception"
            ),
            "client_profile": importlib.import_module("tencentcloud.common.profile.client_profile"),
            "http_profile": importlib.import_module("tencentcloud.common.profile.http_profile"),
            "sms_client": importlib.import_module("tencentcloud.sms.v20210111.sms_client"),
            "models": importlib.import_module("tencentcloud.sms.v20210111.models"),
        }
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"The Tencent Cloud SMS backend needs the Tencent Cloud SDK; "
            f'install it with: pip install "{PIP_EXTRA}"'
        ) from exc
    sdk_logger = logging.getLogger(SDK_LOGGER_NAME)
    if not any(isinstance(f, _RedactSendSms) for f in sdk_logger.filters):
        sdk_logger.addFilter(_RedactSendSms())
    return modules


def _split_endpoint(endpoint: str | None) -> tuple[str, str | None]:
    """``"http://host:port/"`` -> ``("http", "host:port")``; a bare host means HTTPS."""
    if not endpoint:
        return "https", None
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return "https", endpoint.rstrip("/")
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise ImproperlyConfigured(f"TENCENT_SMS ENDPOINT has an unknown scheme: {endpoint!r}")
    return scheme, rest.rstrip("/")


class SMSBackend(BaseSMSBackend):
    """Send codes with Tencent Cloud SMS (API 2021-01-11, ``SendSms``).

    Returns the ``SerialNo`` Tencent gives the message, which its delivery
    receipts refer to. The SDK's own retryer is not used: the Celery task
    retries transient errors with backoff and keeps the bookkeeping. A read
    timeout is transient although Tencent may have sent the SMS already: a
    late second message beats none, and the code in both is the same.
    """

    def __init__(
        self,
        *,
        secret_id: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        sdk_app_id: str | int | None = None,
        sign_name: str | None = None,
        template_ids: dict[str, str | int] | None = None,
        endpoint: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        conf: dict[str, Any] = otp_settings.TENCENT_SMS
        overrides = {
            "SECRET_ID": secret_id,
            "SECRET_KEY": secret_key,
            "REGION": region,
            "SDK_APP_ID": sdk_app_id,
            "SIGN_NAME": sign_name,
            "TEMPLATE_IDS": template_ids,
            "ENDPOINT": endpoint,
            "TIMEOUT": timeout,
        }
        self.config: dict[str, Any] = {
            **conf,
            **{key: value for key, value in overrides.items() if value is not None},
        }
        self._sdk = _import_sdk()

    # --- hooks a subclass may override -----------------------------------------

    def get_template_id(self, message: OTPMessage) -> str:
        """The approved template for this usage, else ``TEMPLATE_IDS["default"]``."""
        template_ids: dict[str, Any] = self.config.get("TEMPLATE_IDS") or {}
        template_id = template_ids.get(message.usage) or template_ids.get("default")
        if not template_id:
            raise PermanentDeliveryError(
                f"Tencent SMS: no TEMPLATE_IDS entry for usage {message.usage!r} and no 'default'",
                provider_code="ImproperlyConfigured",
            )
        return str(template_id)

    def get_template_params(self, message: OTPMessage) -> list[str]:
        """``{1}`` the code, ``{2}`` its validity in minutes (Tencent has no seconds wording)."""
        return [message.code, str(message.validity_minutes)]

    def get_client(self) -> Any:
        """An ``SmsClient`` for the configured credentials, region, endpoint and timeout."""
        sdk = self._sdk
        scheme, host = _split_endpoint(self.config.get("ENDPOINT"))
        http_profile = sdk["http_profile"].HttpProfile(
            protocol=scheme,
            endpoint=host,
            reqMethod="POST",
            reqTimeout=self.config.get("TIMEOUT") or 5,
        )
        # en-US so the error messages that end up in the token log are English.
        profile = sdk["client_profile"].ClientProfile(httpProfile=http_profile, language="en-US")
        credential = sdk["credential"].Credential(
            self.config.get("SECRET_ID"), self.config.get("SECRET_KEY")
        )
        return sdk["sms_client"].SmsClient(credential, self.config.get("REGION") or "", profile)

    # --- sending ---------------------------------------------------------------------

    def send(self, message: OTPMessage) -> str:
        """Send one code; return Tencent's ``SerialNo`` or raise a DeliveryError."""
        self._check_config()
        sdk = self._sdk
        request = sdk["models"].SendSmsRequest()
        request.PhoneNumberSet = [message.recipient]
        request.SmsSdkAppId = str(self.config["SDK_APP_ID"])
        if self.config.get("SIGN_NAME"):  # optional for international numbers
            request.SignName = self.config["SIGN_NAME"]
        request.TemplateId = self.get_template_id(message)
        request.TemplateParamSet = self.get_template_params(message)
        if message.token_id is not None:
            # Echoed back in delivery receipts, so they can be matched to the token.
            request.SessionContext = f"otp_token:{message.token_id}"

        try:
            response = self.get_client().SendSms(request)  # the Credential may raise, too
        except sdk["exception"].TencentCloudSDKException as exc:
            # ``from None``: the SDK's message may quote the number; the scrubbed
            # copy in ``reason`` keeps what is needed to debug.
            raise self._error(
                message, exc.get_code(), exc.get_message(), exc.get_request_id()
            ) from None

        request_id = getattr(response, "RequestId", None)
        statuses = response.SendStatusSet or []
        if not statuses:
            raise self._error(message, "NoSendStatus", "answer has no SendStatusSet", request_id)
        status = statuses[0]
        code = status.Code or ""
        if code.lower() != "ok":
            raise self._error(message, code, status.Message, request_id)
        serial_no: str = status.SerialNo or ""
        logger.info(
            "Tencent SMS accepted for %s (usage %s, serial %s, request %s)",
            mask_recipient(message.recipient),
            message.usage,
            serial_no,
            request_id,
        )
        return serial_no

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str:
        """Not supported: Tencent sends approved templates only, never free text."""
        raise NotImplementedError("Tencent Cloud SMS sends approved templates; use send()")

    def _check_config(self) -> None:
        """Missing settings fail the token for good rather than being retried.

        The system check reports the same at deploy time; this catches a
        backend built with overrides, or settings changed since.
        """
        missing = [
            key for key in ("SECRET_ID", "SECRET_KEY", "SDK_APP_ID") if not self.config.get(key)
        ]
        if missing:
            raise PermanentDeliveryError(
                f"Tencent SMS is not configured: {', '.join(missing)} missing",
                provider_code="ImproperlyConfigured",
            )

    def _error(
        self, message: OTPMessage, code: str | None, text: Any, request_id: str | None
    ) -> DeliveryError:
        code = str(code or "Unknown")
        error_class = classify_error(code)
        if isinstance(text, bytes):  # ServerNetworkError carries the raw HTTP body
            text = text.decode("utf-8", "replace")
        detail = " ".join(_scrub(str(text or ""), message).split())
        where = f" (request {request_id})" if request_id else ""
        logger.warning(
            "Tencent SMS to %s failed (usage %s): %s%s -> %s",
            mask_recipient(message.recipient),
            message.usage,
            code,
            where,
            "retry" if error_class is TransientDeliveryError else "give up",
        )
        return error_class(f"Tencent SMS {code}{where}: {detail}", provider_code=code)


def _scrub(text: str, message: OTPMessage) -> str:
    """Remove the code and the phone number (in any common spelling) from ``text``."""
    masked = mask_recipient(message.recipient)
    phone_forms = {message.recipient, message.recipient.lstrip("+")}
    try:
        phone_forms.add(str(phonenumbers.parse(message.recipient).national_number))
    except phonenumbers.NumberParseException:
        pass  # the other spellings are still scrubbed
    for form in sorted(phone_forms, key=len, reverse=True):
        if len(form) >= 5:
            text = text.replace(form, masked)
    if message.code:
        text = text.replace(message.code, "[code]")
    return text


# --- system check ------------------------------------------------------------------


def _backend_configured() -> bool:
    """Whether ``SMS_BACKEND`` is this backend or a subclass of it."""
    path = otp_settings.SMS_BACKEND
    if path == BACKEND_PATH:
        return True
    if not path:
        return False
    try:
        backend = import_string(path)
    except Exception:  # a bad path is reported by the generic import check
        return False
    return isinstance(backend, type) and issubclass(backend, SMSBackend)


def check_tencent_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report missing Tencent SMS settings at deploy time, when this backend is in use.

    The signature fits ``django.core.checks.register`` directly. Sending
    without these would fail every token, so they are errors, not warnings.
    """
    if not _backend_configured():
        return []
    from ...models import Usage

    conf: dict[str, Any] = otp_settings.TENCENT_SMS
    hint = 'Set it in CIAM_OTP["TENCENT_SMS"]; see the Tencent Cloud SMS console.'
    errors: list[checks.CheckMessage] = []
    for key, check_id in (
        ("SECRET_ID", "ciam_otp.E101"),
        ("SECRET_KEY", "ciam_otp.E102"),
        ("SDK_APP_ID", "ciam_otp.E103"),
    ):
        if not conf.get(key):
            errors.append(
                checks.Error(
                    f'CIAM_OTP["TENCENT_SMS"]["{key}"] is not set.', hint=hint, id=check_id
                )
            )
    # Tencent requires a signature for Chinese mainland numbers only.
    if not conf.get("SIGN_NAME") and "CN" in (otp_settings.PHONE_REGIONS or []):
        errors.append(
            checks.Error(
                'CIAM_OTP["TENCENT_SMS"]["SIGN_NAME"] is not set; Chinese mainland SMS '
                "needs an approved signature.",
                hint=hint,
                id="ciam_otp.E104",
            )
        )
    template_ids: dict[str, Any] = conf.get("TEMPLATE_IDS") or {}
    if not template_ids.get("default"):
        missing = [usage for usage in Usage.values if not template_ids.get(usage)]
        if missing:
            errors.append(
                checks.Error(
                    'CIAM_OTP["TENCENT_SMS"]["TEMPLATE_IDS"] has no template for '
                    f"{', '.join(missing)} and no 'default'.",
                    hint="Map each usage, or 'default', to an approved template id "
                    "whose parameters are {1} code and {2} minutes.",
                    id="ciam_otp.E105",
                )
            )
    try:
        _import_sdk()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="ciam_otp.E106"))
    return errors
