"""``SMSBackend``: one code, one ``SendSms`` call (API 2021-01-11)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from ....counters.store import counter_cache
from ....crypto import mask_recipient
from ...base import (
    Accepted,
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    Receipt,
    TransientDeliveryError,
)
from ...settings import read_settings
from .. import checks_support
from ..base import BaseSMSBackend
from ..sdk_support import check_credential_mode, scrub
from . import checks, receipts, sdk
from .conf import DEFAULTS, SETTINGS_KEY
from .errors import (
    THIRTY_SECOND_LIMIT,
    THIRTY_SECOND_WINDOW,
    UNCLEAR_OUTCOMES,
    classify_error,
    network_code,
    wrapped_code,
)
from .templates import (
    MAINLAND,
    MAX_CODE_DIGITS,
    pick,
    region_of,
    scope_settings,
    template_id,
    template_param_names,
)

logger = logging.getLogger("django_ciam_otp.backends.sms.tencent")

SESSION_CONTEXT = "otp_token:{}"


class SMSBackend(BaseSMSBackend):
    """Send codes with Tencent Cloud SMS (``SendSms``, API 2021-01-11).

    Tencent sends approved templates only, so this backend renders no text: it
    overrides :meth:`send` and fills the template's parameters
    (``TEMPLATE_PARAMS``, by default ``{1}`` the code and ``{2}`` whole
    minutes of validity, rounded down so the text never promises more time
    than the code has).

    Returns :class:`~django_ciam_otp.backends.base.Accepted` with Tencent's
    ``SerialNo`` (what its delivery receipts name), the billed ``Fee`` and
    ``IsoCode``. The SDK's own retryer is not used: the delivery task retries
    transient errors with backoff and keeps the bookkeeping.

    A second message with the same code is avoided like this. After a try whose
    outcome is unclear (the request may have reached Tencent: a read timeout,
    a broken connection, a gateway 5xx, Tencent's own send timeout), the next
    try first asks Tencent (``PullSmsSendStatusByPhoneNumber``) for a message
    to the number carrying this token's ``SessionContext`` and, if there is
    one, reports it as sent. Otherwise it sends; Tencent refusing that with
    ``LimitExceeded.PhoneNumberThirtySecondLimit`` ("the same content to this
    number within 30 seconds") then means the earlier try went out, and the
    token counts as sent without a third request. Without an unclear try
    before, that answer means another message to the number (another usage's
    code) went out within 30 seconds, and the retry waits 31 seconds.
    Residual risk: status pulls lag (a status appears once the carrier
    reports), the pull shows ``SessionContext`` only where Tencent enabled it,
    so a retry more than 30 seconds after an unclear try that did go out can
    still send a second message; and a 30-second refusal right after an
    unclear try may come from another usage's code, in which case this code
    was not sent (the person asks again).

    Settings: ``CIAM_OTP["TENCENT_SMS"]`` over :data:`.conf.DEFAULTS`; keyword
    arguments override them, lower-cased (``SMSBackend(sign_name=..., region=...)``).
    """

    settings_key = SETTINGS_KEY
    receives_receipts = True

    def __init__(self, **kwargs: Any) -> None:
        self.config: dict[str, Any] = read_settings(self, kwargs, DEFAULTS)
        super().__init__(**kwargs)
        self._sdk = sdk.import_sdk()
        # Settings no message can be sent with fail here, once, not per message.
        region = sdk.check_region(self.config.get("REGION"))
        self.endpoint = sdk.resolve_endpoint(self.config.get("ENDPOINT"), region)
        sdk.timeouts(self.config.get("TIMEOUT"))
        check_credential_mode(sdk.credential_mode(self.config), SETTINGS_KEY)

    @classmethod
    def check(cls, **kwargs: Any) -> list[CheckMessage]:
        """``ciam_otp.E101``–``E112`` and ``W101``–``W104`` (:mod:`.checks`), while configured."""
        return [*super().check(**kwargs), *checks.run()]

    def worst_case_seconds(self) -> float | None:
        """``TIMEOUT`` per call; two calls after an unclear try (``CONFIRM_BEFORE_RESEND``)."""
        calls = 2 if self.config.get("CONFIRM_BEFORE_RESEND") else 1
        return checks_support.worst_case_seconds(self.config.get("TIMEOUT"), calls)

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        """Tencent's status callback, with ``?secret=RECEIPT_SECRET`` (:mod:`.receipts`)."""
        return receipts.parse(request, self.config.get("RECEIPT_SECRET"))

    def receipts_response(self, request: HttpRequest, found: list[Receipt]) -> HttpResponse:
        return receipts.acknowledge()

    @classmethod
    def check_database(cls, databases: list[str]) -> list[CheckMessage]:
        """The SMS auth sources against Tencent's limits (E110, E111, W102)."""
        return [*super().check_database(databases), *checks.run_database(databases)]

    def describe(self) -> str:
        return (
            f"Tencent Cloud SMS ({self.endpoint.host}, region {self.config.get('REGION')}, "
            f"SdkAppId {self.config.get('SDK_APP_ID')})"
        )

    # --- hooks a subclass may override -----------------------------------------

    def get_client(self) -> Any:
        """This process's ``SmsClient`` for these settings (see :mod:`.sdk`)."""
        return sdk.get_client(self.config, self._sdk)

    def get_scope(self, message: OTPMessage) -> dict[str, Any]:
        """Signature, templates, parameters and Sender ID for the message's number."""
        return scope_settings(self.config, region_of(message.recipient))

    def get_template_id(self, message: OTPMessage, scope: dict[str, Any] | None = None) -> str:
        """The approved template for the usage and language, else ``"default"``'s."""
        scope = scope if scope is not None else self.get_scope(message)
        found = template_id(scope, message.usage, message.language)
        if not found:
            region = region_of(message.recipient) or "?"
            where = "TEMPLATE_IDS" if region == MAINLAND else f'INTERNATIONAL["{region}"]'
            raise BackendMisconfigured(
                f"Tencent SMS: {where} has no template for usage {message.usage!r} "
                f"(language {message.language!r}) and no 'default'",
                provider_code="NoTemplate",
            )
        return found

    def get_template_params(
        self, message: OTPMessage, scope: dict[str, Any] | None = None
    ) -> list[str]:
        """Values for the template's ``{1}``, ``{2}``..., as ``TEMPLATE_PARAMS`` names them."""
        scope = scope if scope is not None else self.get_scope(message)
        names = template_param_names(scope)
        minutes = message.validity_seconds // 60  # never more than the code really has
        if "code" in names and len(message.code) > MAX_CODE_DIGITS:
            raise NotDeliverableHere(  # another backend may send a longer code
                f"Tencent SMS: the code has {len(message.code)} digits; a verification-code "
                f"template variable takes at most {MAX_CODE_DIGITS} (auth source code length)",
                provider_code="CodeTooLong",
            )
        if "minutes" in names and minutes < 1:
            raise NotDeliverableHere(
                f"Tencent SMS: a validity of {message.validity_seconds} s cannot be announced "
                'in whole minutes; use a template with "seconds"',
                provider_code="ValidityUnderAMinute",
            )
        values = {
            "code": message.code,
            "minutes": str(minutes),
            "seconds": str(message.validity_seconds),
        }
        return [values[name] for name in names]

    def build_request(self, message: OTPMessage) -> Any:
        """The ``SendSmsRequest`` for ``message``."""
        scope = self.get_scope(message)
        request = self._sdk["models"].SendSmsRequest()
        request.PhoneNumberSet = [message.recipient]
        request.SmsSdkAppId = str(self.config["SDK_APP_ID"])
        request.TemplateId = self.get_template_id(message, scope)
        request.TemplateParamSet = self.get_template_params(message, scope)
        sign_name = pick(scope.get("SIGN_NAME"), message.language)
        if sign_name:  # required for mainland numbers, optional for the others
            request.SignName = str(sign_name)
        elif region_of(message.recipient) == MAINLAND:
            raise BackendMisconfigured(
                "Tencent SMS: SIGN_NAME is not set; mainland SMS needs an approved signature",
                provider_code="NoSignName",
            )
        sender_id = pick(scope.get("SENDER_ID"), message.language)
        if sender_id:
            request.SenderId = str(sender_id)
        if message.token_id is not None:
            # Echoed in the answer; status pulls show it where Tencent enabled it.
            # Delivery receipts are matched by SerialNo.
            request.SessionContext = SESSION_CONTEXT.format(message.token_id)
        return request

    # --- sending ---------------------------------------------------------------------

    def send(self, message: OTPMessage) -> Accepted:
        """Send one code; return what Tencent accepted, or raise a DeliveryError."""
        self._check_config()
        request = self.build_request(message)
        client = self._client(message)
        unconfirmed = self.earlier_try_unconfirmed(message)
        if unconfirmed and self.config.get("CONFIRM_BEFORE_RESEND", True):
            found = self.find_accepted(message, client)
            if found is not None:
                self._settled(message)
                logger.info(
                    "Tencent SMS for %s was accepted by an earlier try (serial %s): not resent",
                    mask_recipient(message.recipient),
                    found.message_id,
                )
                return found

        try:
            response = client.SendSms(request)
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            code, text, request_id = self._failure(exc)
            return self._refused(message, code, text, request_id, unconfirmed)

        request_id = getattr(response, "RequestId", None)
        statuses = response.SendStatusSet or []
        if not statuses:
            return self._refused(message, "NoSendStatus", "no SendStatusSet", request_id)
        status = statuses[0]
        code = status.Code or ""
        if code.lower() != "ok":
            return self._refused(message, code, status.Message, request_id, unconfirmed)
        serial_no = status.SerialNo or ""
        if not serial_no:
            return self._refused(message, "NoSerialNo", "'Ok' without a SerialNo", request_id)
        self._settled(message)
        logger.info(
            "Tencent SMS accepted for %s (usage %s, serial %s, request %s)",
            mask_recipient(message.recipient),
            message.usage,
            serial_no,
            request_id,
        )
        iso_code = status.IsoCode if status.IsoCode and status.IsoCode != "DEF" else None
        fee = status.Fee if isinstance(status.Fee, int) else None
        return Accepted(serial_no, fee=fee, region=iso_code)

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str:
        """Not supported: Tencent sends approved templates only, never free text."""
        raise NotImplementedError("Tencent Cloud SMS sends approved templates; use send()")

    # --- an earlier try that may have gone out ---------------------------------------------

    def earlier_try_unconfirmed(self, message: OTPMessage) -> bool:
        """Whether an earlier try of this message may have been accepted by Tencent.

        True after an unclear outcome (:data:`UNCLEAR_OUTCOMES`) in the
        previous try, or in any earlier one (remembered in the shared cache
        until the message is settled), and when a retry knows nothing of the
        tries before it.
        """
        if message.previous_error in UNCLEAR_OUTCOMES:
            return True
        if message.attempt > 0 and not message.previous_error:
            return True
        if message.token_id is None:
            return False
        try:
            return bool(counter_cache().get(_unconfirmed_key(message.token_id)))
        except Exception:  # noqa: BLE001 - without the cache, the previous error decides
            return False

    def find_accepted(self, message: OTPMessage, client: Any) -> Accepted | None:
        """The message an earlier try got accepted, found in Tencent's send statuses.

        ``PullSmsSendStatusByPhoneNumber`` (https://www.tencentcloud.com/document/api/382/40518;
        mainland: https://cloud.tencent.com/document/api/382/55975) over the
        code's life, matched by this token's ``SessionContext``. Any failure
        of the pull (a CAM policy without it, throttling) means "not found".
        """
        if message.token_id is None:
            return None
        context = SESSION_CONTEXT.format(message.token_id)
        request = self._sdk["models"].PullSmsSendStatusByPhoneNumberRequest()
        now = int(time.time())
        request.BeginTime = now - message.validity_seconds - 120
        request.EndTime = now + 60
        request.Offset = 0
        request.Limit = 100
        request.PhoneNumber = message.recipient
        request.SmsSdkAppId = str(self.config["SDK_APP_ID"])
        try:
            response = client.PullSmsSendStatusByPhoneNumber(request)
        except Exception as exc:  # noqa: BLE001 - not knowing is the answer
            code, text, request_id = self._failure(exc)
            logger.warning(
                "Tencent SMS status pull for %s failed: %s (request %s): %s; sending again",
                mask_recipient(message.recipient),
                code,
                request_id,
                " ".join(scrub(str(text or ""), message).split())[:160],
            )
            return None
        for status in response.PullSmsSendStatusSet or []:
            if status.SessionContext == context and status.SerialNo:
                return Accepted(str(status.SerialNo))
        return None

    # --- internals -----------------------------------------------------------------------------

    def _check_config(self) -> None:
        """Settings every message needs: without them the line stops (and a check says so)."""
        required = ["SDK_APP_ID"]
        if sdk.credential_mode(self.config) == "static":
            required = ["SECRET_ID", "SECRET_KEY", *required]
        missing = [key for key in required if not self.config.get(key)]
        if missing:
            raise BackendMisconfigured(
                f"Tencent SMS is not configured: {', '.join(missing)} missing",
                provider_code="ImproperlyConfigured",
            )

    def _client(self, message: OTPMessage) -> Any:
        try:
            return self.get_client()
        except self._sdk["exception"].TencentCloudSDKException as exc:
            code, text, request_id = self._failure(exc)
            raise self._error(message, code, text, request_id) from None
        except ImproperlyConfigured:
            raise
        except Exception as exc:  # noqa: BLE001 - a credential factory that failed
            raise self._error(message, "NoCredentials", type(exc).__name__, None) from None

    def _failure(self, exc: BaseException) -> tuple[str, Any, str | None]:
        """``(code, message, request id)`` of an exception from the SDK."""
        if isinstance(exc, self._sdk["exception"].TencentCloudSDKException):
            code = str(exc.get_code() or "Unknown")
            if code == "ClientNetworkError":
                code = network_code(exc)
            else:
                code = wrapped_code(exc) or code
            return code, exc.get_message(), exc.get_request_id()
        return wrapped_code_local(exc), type(exc).__name__, None

    def _refused(
        self,
        message: OTPMessage,
        code: str,
        text: Any,
        request_id: str | None,
        unconfirmed: bool = False,
    ) -> Accepted:
        """Raise the DeliveryError for a try that failed, unless it means an earlier one went out.

        ``LimitExceeded.PhoneNumberThirtySecondLimit`` after an unconfirmed try
        says the same text reached the number within 30 seconds: that try.
        """
        if code == THIRTY_SECOND_LIMIT and unconfirmed:
            self._settled(message)
            logger.info(
                "Tencent SMS for %s: the earlier try went out (%s answered to the resend)",
                mask_recipient(message.recipient),
                code,
            )
            after = message.previous_error or "unknown"
            return Accepted(f"tencent-accepted-earlier after={after} request={request_id or '-'}")
        raise self._error(message, code, text, request_id) from None

    def _error(
        self, message: OTPMessage, code: str, text: Any, request_id: str | None
    ) -> DeliveryError:
        """The DeliveryError for a failed try; notes or clears an unconfirmed try."""
        error_class = classify_error(code)
        if isinstance(text, bytes):  # ServerNetworkError carries the raw HTTP body
            text = text.decode("utf-8", "replace")
        detail = " ".join(scrub(str(text or ""), message).split())
        where = f" (request {request_id})" if request_id else ""
        if code in UNCLEAR_OUTCOMES:
            self._remember_unconfirmed(message)
        elif error_class is not TransientDeliveryError:
            self._settled(message)
        logger.warning(
            "Tencent SMS to %s failed (usage %s): %s%s -> %s",
            mask_recipient(message.recipient),
            message.usage,
            code,
            where,
            _VERDICT.get(error_class, "retry"),
        )
        reason = f"Tencent SMS {code}{where}: {detail}"
        if code == THIRTY_SECOND_LIMIT:  # this number's limit, and maybe an earlier try's
            return TransientDeliveryError(
                reason,
                provider_code=code,
                retry_after=THIRTY_SECOND_WINDOW,
                recipient_scoped=True,
            )
        if error_class is TransientDeliveryError:
            return TransientDeliveryError(
                reason, provider_code=code, unclear=code in UNCLEAR_OUTCOMES
            )
        return error_class(reason, provider_code=code)

    def _remember_unconfirmed(self, message: OTPMessage) -> None:
        if message.token_id is None:
            return
        try:
            counter_cache().set(
                _unconfirmed_key(message.token_id), 1, int(message.validity_seconds) + 120
            )
        except Exception:  # noqa: BLE001 - the previous error still says it, once
            logger.warning("Tencent SMS: an unconfirmed try could not be noted in the cache")

    def _settled(self, message: OTPMessage) -> None:
        if message.token_id is None:
            return
        try:
            counter_cache().delete(_unconfirmed_key(message.token_id))
        except Exception:  # noqa: BLE001, S110 - it expires with the code
            pass


_VERDICT = {
    TransientDeliveryError: "retry",
    PermanentDeliveryError: "give up",
    BackendMisconfigured: "give up, stop the line",
}


def wrapped_code_local(exc: BaseException) -> str:
    """A failure outside the SDK's exception wrapping (e.g. reading the body)."""
    import requests

    if isinstance(exc, requests.exceptions.RequestException):
        return "ClientNetworkError.ConnectionLost"
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
        return "UnreadableAnswer"
    return "ClientNetworkError.Interrupted"


def _unconfirmed_key(token_id: int) -> str:
    return f"ciam_otp:tencent:unconfirmed:{token_id}"
