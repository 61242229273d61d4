"""Which signature, template and parameters a number gets: pure functions of the settings.

Shared by the backend (at send time) and its system checks (at ``check`` time),
so both read the settings the same way; neither module imports the other.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from django.conf import settings

from .conf import DEFAULTS

MAINLAND = "CN"
#: Names ``TEMPLATE_PARAMS`` may list, in the order of the template's ``{1}``, ``{2}``...
TEMPLATE_PARAM_NAMES = ("code", "minutes", "seconds")
#: "A verification-code template variable takes 0 to 6 digits"
#: (InvalidParameterValue.TemplateParameterFormatError, errorcodes.py / api/382/52075).
MAX_CODE_DIGITS = 6
#: Keys an ``INTERNATIONAL`` entry may hold.
INTERNATIONAL_KEYS = ("SIGN_NAME", "TEMPLATE_IDS", "TEMPLATE_PARAMS", "SENDER_ID")


def region_of(phone_number: str) -> str:
    """ISO 3166 region of an E.164 number (``"CN"`` for the mainland), ``""`` if unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone_number)) or ""
    except phonenumbers.NumberParseException:
        return ""


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


def scope_settings(config: dict[str, Any], region: str) -> dict[str, Any]:
    """The signature, templates, parameters and Sender ID for numbers of ``region``.

    Mainland numbers use the top-level settings. Any other region (Hong Kong,
    Macao and Taiwan included: Tencent sends them "international" SMS) uses
    ``INTERNATIONAL[region]`` over ``INTERNATIONAL["default"]`` (their
    ``TEMPLATE_IDS`` merged key by key), never the mainland templates, which
    Tencent refuses for them.
    """
    if region == MAINLAND:
        return {
            "SIGN_NAME": config.get("SIGN_NAME"),
            "TEMPLATE_IDS": config.get("TEMPLATE_IDS") or {},
            "TEMPLATE_PARAMS": config.get("TEMPLATE_PARAMS"),
            "SENDER_ID": None,
        }
    international = config.get("INTERNATIONAL") or {}
    base = international.get("default") or {}
    own = international.get(region) or {}
    return {
        "SIGN_NAME": own.get("SIGN_NAME", base.get("SIGN_NAME")),
        "TEMPLATE_IDS": {**(base.get("TEMPLATE_IDS") or {}), **(own.get("TEMPLATE_IDS") or {})},
        "TEMPLATE_PARAMS": own.get(
            "TEMPLATE_PARAMS", base.get("TEMPLATE_PARAMS", config.get("TEMPLATE_PARAMS"))
        ),
        "SENDER_ID": own.get("SENDER_ID", base.get("SENDER_ID")),
    }


def template_id(scope: dict[str, Any], usage: str, language: str) -> str | None:
    """The approved template for ``usage`` (else ``"default"``) in ``language``."""
    template_ids = scope.get("TEMPLATE_IDS") or {}
    found = pick(template_ids.get(usage), language) or pick(template_ids.get("default"), language)
    return str(found) if found else None


def template_param_names(scope: dict[str, Any]) -> list[str]:
    names = scope.get("TEMPLATE_PARAMS")
    if names is None:
        names = DEFAULTS["TEMPLATE_PARAMS"]
    return list(names)
