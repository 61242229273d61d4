"""What a number's ``Publish`` carries besides the text: pure functions of the settings.

Shared by the backend (at send time) and its system checks (at ``check``
time), so both read ``SENDER_ID``, ``ORIGINATION_NUMBER``, ``SMS_TYPE`` and
``MAX_PRICE`` the same way. The attribute names and their formats are those of
"Publishing to a mobile phone", sending with the SDKs:
https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

SMS_TYPES = ("Transactional", "Promotional")
#: A sender ID: letters, digits and inner hyphens, 1-11 characters, at least one letter.
SENDER_ID_FORMAT = re.compile(
    r"^(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]{0,9}[A-Za-z0-9])?$"
)
#: "A custom string of 5-14 numbers, which can include an optional leading plus sign".
ORIGINATION_NUMBER_FORMAT = re.compile(r"^\+?\d{5,14}$")
#: The dict key of ``SENDER_ID`` / ``ORIGINATION_NUMBER`` for regions not listed.
DEFAULT_KEY = "default"

SMS_TYPE_ATTRIBUTE = "AWS.SNS.SMS.SMSType"
SENDER_ID_ATTRIBUTE = "AWS.SNS.SMS.SenderID"
ORIGINATION_NUMBER_ATTRIBUTE = "AWS.MM.SMS.OriginationNumber"
MAX_PRICE_ATTRIBUTE = "AWS.SNS.SMS.MaxPrice"


def region_of(phone_number: str) -> str:
    """ISO 3166 region of an E.164 number, ``""`` when phonenumbers cannot tell."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone_number)) or ""
    except phonenumbers.NumberParseException:
        return ""


def is_valid_number(phone_number: str) -> bool:
    """Whether phonenumbers holds ``phone_number`` for a number that can exist."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(phone_number))
    except phonenumbers.NumberParseException:
        return False


def pick(value: Any, region: str) -> Any:
    """``value``, or when it is a dict by region, the entry for ``region``, else ``"default"``.

    Sender IDs and origination numbers are registered per destination country,
    so one account often needs a different one per country. A region mapped
    to ``None`` sends none there, even with a ``"default"``.
    """
    if not isinstance(value, dict):
        return value
    if region and region in value:
        return value[region]
    return value.get(DEFAULT_KEY)


def scoped_values(value: Any) -> list[tuple[str, Any]]:
    """``(where, value)`` for each value a setting holds, ``where`` naming it for a message."""
    if isinstance(value, dict):
        return [(f'["{key}"]', entry) for key, entry in value.items()]
    return [("", value)]


def sms_type_problem(value: Any) -> str | None:
    if value not in SMS_TYPES:
        return f"is {value!r}; SNS knows {SMS_TYPES[0]!r} and {SMS_TYPES[1]!r}"
    return None


def sender_id_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a sender ID, or ``None`` (``None`` itself sends none)."""
    if value is None:
        return None
    if not isinstance(value, str) or not SENDER_ID_FORMAT.match(value):
        return f"is {value!r}, not 1-11 letters, digits or inner hyphens with at least one letter"
    return None


def origination_number_problem(value: Any) -> str | None:
    """Why ``value`` cannot be an origination number, or ``None`` (``None`` sends none)."""
    if value is None:
        return None
    if not isinstance(value, str) or not ORIGINATION_NUMBER_FORMAT.match(value):
        return f"is {value!r}, not an E.164 number (+14255550100) or a short code's digits"
    if value.startswith("+"):
        try:
            possible = phonenumbers.is_possible_number(phonenumbers.parse(value))
        except phonenumbers.NumberParseException:
            possible = False
        if not possible:
            return f"is {value!r}, which is not an E.164 number any country uses"
    return None


def region_key_problem(key: Any) -> str | None:
    """Why ``key`` cannot key a by-region dict (ISO 3166 alpha-2 or ``"default"``)."""
    if key == DEFAULT_KEY:
        return None
    if not isinstance(key, str) or key not in phonenumbers.SUPPORTED_REGIONS:
        return f'has the key {key!r}, neither an ISO 3166 region ("DE") nor "default"'
    return None


def max_price(value: Any) -> str | None:
    """``MAX_PRICE`` as SNS's ``Number`` attribute takes it; ``ValueError`` when unusable."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"is {value!r}, not a number of US dollars")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"is {value!r}, not a number of US dollars") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"is {value!r}; a maximum price is a positive number of US dollars")
    return format(price.normalize(), "f")


def message_attributes(config: dict[str, Any], phone_number: str) -> dict[str, dict[str, str]]:
    """The ``MessageAttributes`` of the ``Publish`` to ``phone_number``.

    ``SMSType`` always goes: the account's ``DefaultSMSType`` (Promotional
    unless changed) must not decide how a code travels. The others go only
    when set for the number's region.
    """
    region = region_of(phone_number)
    attributes = {
        SMS_TYPE_ATTRIBUTE: {"DataType": "String", "StringValue": str(config["SMS_TYPE"])},
    }
    sender_id = pick(config.get("SENDER_ID"), region)
    if sender_id:
        attributes[SENDER_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": str(sender_id)}
    origination = pick(config.get("ORIGINATION_NUMBER"), region)
    if origination:
        attributes[ORIGINATION_NUMBER_ATTRIBUTE] = {
            "DataType": "String",
            "StringValue": str(origination),
        }
    price = max_price(config.get("MAX_PRICE"))
    if price is not None:
        attributes[MAX_PRICE_ATTRIBUTE] = {"DataType": "Number", "StringValue": price}
    return attributes
