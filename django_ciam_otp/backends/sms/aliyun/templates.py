"""Which signature, template, variables and number spelling a message gets.

Pure functions of the settings, shared by the backend (at send time) and its
system checks (at ``check`` time), so both read the settings the same way.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from django.conf import settings

from .conf import DEFAULTS

MAINLAND = "CN"
#: What a template variable may be filled with (``TEMPLATE_PARAMS`` values).
PARAM_KINDS = ("code", "minutes", "seconds")
#: Keys an ``INTERNATIONAL`` entry may hold.
INTERNATIONAL_KEYS = ("SIGN_NAME", "TEMPLATE_CODES", "TEMPLATE_PARAMS")
#: "Verification-code template variables take 4 to 6 characters" (isv.PARAM_LENGTH_LIMIT,
#: https://help.aliyun.com/document_detail/101346.html).
CODE_LENGTHS = range(4, 7)


def region_of(phone_number: str) -> str:
    """ISO 3166 region of an E.164 number (``"CN"`` for the mainland), ``""`` if unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone_number)) or ""
    except phonenumbers.NumberParseException:
        return ""


def api_number(phone_number: str) -> str:
    """The number as ``PhoneNumbers`` takes it; ``ValueError`` when it is not one.

    SendSms documents two spellings: a mainland number as its 11 national
    digits (a ``+86``/``0086``/``86`` prefix is also accepted; none is sent,
    the form QuerySendDetails requires too), any other number (Hong Kong,
    Macao and Taiwan included) as country code and number without ``+`` or
    ``00`` ("8521234****"). E.164 without its ``+`` is exactly that, a
    national leading zero (Italy) included.
    """
    try:
        parsed = phonenumbers.parse(phone_number)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(str(exc)) from None
    if phonenumbers.region_code_for_number(parsed) == MAINLAND:
        return phonenumbers.national_significant_number(parsed)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def pick(value: Any, language: str) -> Any:
    """``value``, or when it is a dict by language, the entry for ``language``.

    Tried in turn: the language (``"zh-hans"``), its base (``"zh"``),
    ``"default"``, then the site's ``LANGUAGE_CODE`` and its base.
    """
    if not isinstance(value, dict):
        return value
    fallback = str(getattr(settings, "LANGUAGE_CODE", "") or "").lower()
    language = (language or "").lower()
    for key in (language, language.split("-")[0], "default", fallback, fallback.split("-")[0]):
        if key and value.get(key):
            return value[key]
    return None


def scope_settings(config: dict[str, Any], region: str) -> dict[str, Any] | None:
    """The signature, templates and variables for numbers of ``region``.

    Mainland numbers use the top-level settings. Any other region (Hong Kong,
    Macao and Taiwan included: Alibaba sends them "international" SMS, from
    templates of that type only) uses ``INTERNATIONAL[region]`` over
    ``INTERNATIONAL["default"]`` (their ``TEMPLATE_CODES`` merged key by key),
    with the top-level ``SIGN_NAME`` and ``TEMPLATE_PARAMS`` where they name
    none (a general-purpose signature serves both). ``None`` when no entry
    covers the region: the number is not for this backend.
    """
    if region == MAINLAND:
        return {
            "SIGN_NAME": config.get("SIGN_NAME"),
            "TEMPLATE_CODES": config.get("TEMPLATE_CODES") or {},
            "TEMPLATE_PARAMS": config.get("TEMPLATE_PARAMS"),
        }
    international = config.get("INTERNATIONAL") or {}
    base = international.get("default")
    own = international.get(region)
    if base is None and own is None:
        return None
    base, own = base or {}, own or {}
    return {
        "SIGN_NAME": own.get("SIGN_NAME", base.get("SIGN_NAME", config.get("SIGN_NAME"))),
        "TEMPLATE_CODES": {
            **(base.get("TEMPLATE_CODES") or {}),
            **(own.get("TEMPLATE_CODES") or {}),
        },
        "TEMPLATE_PARAMS": own.get(
            "TEMPLATE_PARAMS", base.get("TEMPLATE_PARAMS", config.get("TEMPLATE_PARAMS"))
        ),
    }


def template_code(scope: dict[str, Any], usage: str, language: str) -> str | None:
    """The approved template for ``usage`` (else ``"default"``) in ``language``."""
    codes = scope.get("TEMPLATE_CODES") or {}
    found = pick(codes.get(usage), language) or pick(codes.get("default"), language)
    return str(found) if found else None


def template_params(scope: dict[str, Any]) -> dict[str, str]:
    """Template variable name -> kind (``"code"``, ``"minutes"``, ``"seconds"``)."""
    params = scope.get("TEMPLATE_PARAMS")
    if params is None:
        params = DEFAULTS["TEMPLATE_PARAMS"]
    return {str(name): str(kind) for name, kind in dict(params).items()}


def params_problems(params: Any, where: str) -> list[str]:
    """What is wrong with a ``TEMPLATE_PARAMS`` value (empty: nothing)."""
    if not isinstance(params, dict) or not all(
        isinstance(name, str) and isinstance(kind, str) for name, kind in params.items()
    ):
        return [f'{where} must map template variable names to "code", "minutes" or "seconds"']
    bad = sorted({kind for kind in params.values() if kind not in PARAM_KINDS})
    if bad:
        return [f"{where} names unknown kinds {', '.join(bad)} (known: {', '.join(PARAM_KINDS)})"]
    if "code" not in params.values():
        return [f'{where} must fill one variable with "code"']
    return []
