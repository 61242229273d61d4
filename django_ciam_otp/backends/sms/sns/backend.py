"""``SMSBackend``: one code, one SNS ``Publish`` to the phone number."""

from __future__ import annotations

import logging
from typing import Any

from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured

from ....crypto import mask_recipient
from ...base import (
    BackendMisconfigured,
    DeliveryError,
    NotDeliverableHere,
    OTPMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from ...settings import read_settings
from .. import checks_support
from ..base import BaseSMSBackend
from ..sdk_support import scrub
from . import checks, sdk
from .attributes import message_attributes
from .conf import DEFAULTS, SETTINGS_KEY
from .errors import UNCLEAR_OUTCOMES, classify_error, local_code, refine

logger = logging.getLogger("django_ciam_otp.backends.sms.sns")


class SMSBackend(BaseSMSBackend):
    """Send codes as SMS with Amazon SNS (``Publish`` with ``PhoneNumber``).

    Free text, so the base class renders the message from the site's
    templates in the token's language; ``MessageAttributes`` carry the SMS
    type (``Transactional`` by default, so the account's default type does
    not decide), and where set for the number's country the sender ID, the
    origination number and the maximum price.

    Returns SNS's ``MessageId``: SNS says nothing about price or country at
    publish time (its delivery status logs do, later; see
    ``docs/sms/sns.md``). botocore's retries are off: the delivery task retries
    transient errors with backoff. SNS has no idempotency key for SMS and no
    API to look up a sent message, so a retry after a read timeout may send
    the same code twice; nothing better is possible with this API.

    Delivery receipts: none (``receives_receipts`` is false). SNS reports the
    fate of a direct SMS only in CloudWatch Logs, never by HTTP, so this
    backend's tokens stay ``sent``.

    Settings: ``CIAM_OTP["SNS_SMS"]`` over :data:`.conf.DEFAULTS`; keyword
    arguments override them, lower-cased (``SMSBackend(region="eu-west-1")``).
    """

    settings_key = SETTINGS_KEY
    default_name = "sns"
    receives_receipts = False

    def __init__(self, **kwargs: Any) -> None:
        self.config: dict[str, Any] = read_settings(self, kwargs, DEFAULTS)
        super().__init__(**kwargs)
        self._sdk = sdk.import_sdk()
        # Settings no message can be sent with fail here, once, not per message.
        errors = [m.msg for m in checks.value_checks(self.config) if m.is_serious()]
        if errors:
            raise ImproperlyConfigured(" ".join(errors))

    @classmethod
    def check(cls, **kwargs: Any) -> list[CheckMessage]:
        """``ciam_otp.E141``–``E146`` and ``W141``–``W144`` (:mod:`.checks`), while configured."""
        return [*super().check(**kwargs), *checks.run()]

    def worst_case_seconds(self) -> float | None:
        """``TIMEOUT`` per call; two calls with ``CHECK_OPT_OUT`` (as ``ciam_otp.W141`` counts)."""
        calls = 2 if self.config.get("CHECK_OPT_OUT") else 1
        return checks_support.worst_case_seconds(self.config.get("TIMEOUT"), calls)

    def describe(self) -> str:
        region = self.config.get("REGION") or "from the environment"
        where = self.config.get("ENDPOINT_URL") or "AWS"
        return f"AWS SNS SMS (region {region}, endpoint {where})"

    # --- hooks a subclass may override -----------------------------------------

    def get_client(self) -> Any:
        """This process's SNS client for these settings (see :mod:`.sdk`)."""
        return sdk.get_client(self.config, self._sdk)

    def build_params(self, phone_number: str, text: str) -> dict[str, Any]:
        """The keyword arguments of ``client.publish`` for one SMS."""
        return {
            "PhoneNumber": phone_number,
            "Message": text,
            "MessageAttributes": message_attributes(self.config, phone_number),
        }

    # --- sending ---------------------------------------------------------------------

    def send_text(self, phone_number: str, text: str, message: OTPMessage) -> str:
        """Publish ``text`` to ``phone_number``; return SNS's ``MessageId``."""
        client = self._client(message)
        if self.config.get("CHECK_OPT_OUT") and self.is_opted_out(client, message):
            logger.warning(
                "AWS SNS: %s opted out of SMS from this AWS account (usage %s): not sent",
                mask_recipient(message.recipient),
                message.usage,
            )
            raise PermanentDeliveryError(
                "AWS SNS OptedOut: the number opted out of SMS from this AWS account "
                "(it replied STOP); it opts in again by replying START (or an operator, "
                "with OptInPhoneNumber)",
                provider_code="OptedOut",
            )
        if message.previous_error in UNCLEAR_OUTCOMES:
            logger.info(
                "AWS SNS: an earlier try for %s ended unclearly (%s) and SNS offers no way "
                "to look it up; sending again",
                mask_recipient(message.recipient),
                message.previous_error,
            )
        params = self.build_params(phone_number, text)
        try:
            response = client.publish(**params)
        except self._sdk.exceptions.ClientError as exc:
            code, detail, request_id = _answer(exc)
            code = refine(code, detail, phone_number)
            raise self._error(message, code, detail, request_id) from None
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            code = local_code(exc, self._sdk.exceptions)
            raise self._error(message, code, str(exc), None) from None
        request_id = _request_id(response)
        message_id = response.get("MessageId") if isinstance(response, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise self._error(message, "NoMessageId", "an answer without MessageId", request_id)
        logger.info(
            "AWS SNS accepted SMS for %s (usage %s, message %s, request %s)",
            mask_recipient(message.recipient),
            message.usage,
            message_id,
            request_id,
        )
        return message_id

    def is_opted_out(self, client: Any, message: OTPMessage) -> bool:
        """Whether SNS holds the number as opted out (``CheckIfPhoneNumberIsOptedOut``).

        Any failure of the check (IAM without the action, throttling: it has
        a rate quota of its own) means "not known": the code is sent.
        https://docs.aws.amazon.com/sns/latest/api/API_CheckIfPhoneNumberIsOptedOut.html
        """
        try:
            answer = client.check_if_phone_number_is_opted_out(phoneNumber=message.recipient)
        except self._sdk.exceptions.ClientError as exc:
            code, _detail, request_id = _answer(exc)
        except Exception as exc:  # noqa: BLE001 - not knowing is the answer
            code, request_id = local_code(exc, self._sdk.exceptions), None
        else:
            return isinstance(answer, dict) and answer.get("isOptedOut") is True
        logger.warning(
            "AWS SNS opt-out check for %s failed: %s (request %s); sending anyway",
            mask_recipient(message.recipient),
            code,
            request_id,
        )
        return False

    # --- internals -----------------------------------------------------------------------------

    def _client(self, message: OTPMessage) -> Any:
        """The client, or the DeliveryError saying why none can be built (no region...)."""
        try:
            return self.get_client()
        except ImproperlyConfigured:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore's NoRegionError, ProfileNotFound...
            code = local_code(exc, self._sdk.exceptions)
            raise self._error(message, code, str(exc), None) from None

    def _error(
        self, message: OTPMessage, code: str, text: str, request_id: str | None
    ) -> DeliveryError:
        """The DeliveryError for a failed try: a code-free, number-free reason."""
        error_class = classify_error(code)
        detail = " ".join(scrub(text, message).split())
        where = f" (request {request_id})" if request_id else ""
        logger.warning(
            "AWS SNS SMS to %s failed (usage %s): %s%s -> %s",
            mask_recipient(message.recipient),
            message.usage,
            code,
            where,
            _VERDICT.get(error_class, "retry"),
        )
        reason = f"AWS SNS {code}{where}: {detail}"
        if error_class is TransientDeliveryError:  # SNS may have taken it: no failover
            return TransientDeliveryError(
                reason, provider_code=code, unclear=code in UNCLEAR_OUTCOMES
            )
        return error_class(reason, provider_code=code)


_VERDICT = {
    TransientDeliveryError: "retry",
    PermanentDeliveryError: "give up",
    NotDeliverableHere: "try the next backend",
    BackendMisconfigured: "give up, stop the line",
}


def _request_id(response: Any) -> str | None:
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    request_id = metadata.get("RequestId") if isinstance(metadata, dict) else None
    return str(request_id) if request_id else None


def _answer(exc: Any) -> tuple[str, str, str | None]:
    """``(code, message, request id)`` of a botocore ``ClientError``."""
    response = getattr(exc, "response", None)
    response = response if isinstance(response, dict) else {}
    error = response.get("Error")
    error = error if isinstance(error, dict) else {}
    code = str(error.get("Code") or "Unknown")
    return code, str(error.get("Message") or ""), _request_id(response)
