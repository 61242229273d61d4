"""System checks of the Alibaba Cloud SMS backend, run through ``SMSBackend.check()``.

The core asks each configured backend class for its checks, so these run only
while this backend (or a subclass) is one of the SMS backends: :func:`run` is
the hook's body. ``check_aliyun_settings`` stays callable on its own (the
signature of ``django.core.checks.register``), silent unless the backend is
configured. Ids ``ciam_otp.E131``–``E139`` and ``ciam_otp.W131``–``W135``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from ....conf import otp_settings
from .. import checks_support
from . import sdk
from .conf import DEFAULTS, SETTINGS_KEY
from .templates import (
    CODE_LENGTHS,
    INTERNATIONAL_KEYS,
    MAINLAND,
    params_problems,
    pick,
    scope_settings,
    template_code,
    template_params,
)

BACKEND_PATH = "django_ciam_otp.backends.sms.aliyun.SMSBackend"
WHERE = 'CIAM_OTP["ALIYUN_SMS"]'
HINT = f"Set it in {WHERE}; see the Alibaba Cloud SMS console."
DOCS_HINT = "See docs/sms/aliyun.md, 'Alibaba Cloud SMS settings'."
#: Shorter shared secrets are guessable enough to forge receipts (W132).
MIN_SECRET_LENGTH = 24
#: One send, and up to two QuerySendDetails calls before it (a code whose life
#: crosses midnight in Beijing) after an unclear try.
CALLS_WITH_CONFIRM = 3
SECONDS_PER_MINUTE = 60


def backend_configured() -> bool:
    """Whether this backend (or a subclass of it) is one of the site's backends.

    Told by the settings key it reads, so this module need not import the
    backend (which imports it for its ``check()``).
    """
    return checks_support.backend_configured(SETTINGS_KEY)


def run() -> list[checks.CheckMessage]:
    """The checks of this backend's settings (no database read)."""
    return _settings_checks()


def check_aliyun_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report Alibaba Cloud SMS settings that would fail sends, when this backend is in use."""
    if not backend_configured():
        return []
    return _settings_checks()


def _conf() -> Any:
    """``CIAM_OTP["ALIYUN_SMS"]`` over the defaults; as written when it is not a dict."""
    return checks_support.merged_section(SETTINGS_KEY, DEFAULTS)


def _languages() -> list[str]:
    codes = [code for code, _name in getattr(settings, "LANGUAGES", [])]
    return codes or [settings.LANGUAGE_CODE]


def _settings_checks() -> list[checks.CheckMessage]:
    conf = _conf()
    if not isinstance(conf, dict):
        return [checks.Error(f"{WHERE} must be a dict.", id="ciam_otp.E136")]
    messages: list[checks.CheckMessage] = []
    messages.extend(_check_shape(conf))
    messages.extend(_check_credentials(conf))
    messages.extend(_check_connection(conf))
    messages.extend(_check_templates(conf))
    messages.extend(_check_code_policy(conf))
    messages.extend(_check_receipts(conf))
    try:
        sdk.import_sdk()
    except Exception as exc:  # noqa: BLE001 - ImproperlyConfigured naming the pip extra
        messages.append(checks.Error(str(exc), id="ciam_otp.E131"))
    return messages


def _is_text_or_by_language(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and isinstance(v, str | int) for k, v in value.items())
    return value is None or isinstance(value, str | int)


def _codes_problems(codes: Any, where: str) -> list[str]:
    if not isinstance(codes, dict) or not all(
        isinstance(usage, str) and _is_text_or_by_language(code) for usage, code in codes.items()
    ):
        return [f"{where} must map usages (or 'default') to template codes (or dicts by language)"]
    return []


def _check_shape(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E136: unknown keys, and values of the wrong kind."""
    problems = checks_support.unknown_keys(conf, DEFAULTS)
    for key in ("CREDENTIALS", "ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "RECEIPT_SECRET"):
        if conf.get(key) is not None and not isinstance(conf.get(key), str):
            problems.append(f"{key} must be a string")
    if not _is_text_or_by_language(conf.get("SIGN_NAME")):
        problems.append("SIGN_NAME must be a string or a dict by language")
    problems.extend(_codes_problems(conf.get("TEMPLATE_CODES") or {}, "TEMPLATE_CODES"))
    problems.extend(params_problems(conf.get("TEMPLATE_PARAMS"), "TEMPLATE_PARAMS"))
    international = conf.get("INTERNATIONAL") or {}
    if not isinstance(international, dict):
        problems.append('INTERNATIONAL must map regions (or "default") to dicts')
    else:
        for region, entry in international.items():
            where = f'INTERNATIONAL["{region}"]'
            if not isinstance(entry, dict):
                problems.append(f"{where} must be a dict")
                continue
            extra = sorted(map(str, set(entry) - set(INTERNATIONAL_KEYS)))
            if extra:
                problems.append(f"{where} has unknown keys {', '.join(extra)}")
            if region == MAINLAND:
                problems.append(f"{where}: mainland numbers use the top-level keys")
            if not _is_text_or_by_language(entry.get("SIGN_NAME")):
                problems.append(f"{where}: SIGN_NAME must be a string or a dict by language")
            problems.extend(_codes_problems(entry.get("TEMPLATE_CODES") or {}, where))
            if "TEMPLATE_PARAMS" in entry:
                problems.extend(params_problems(entry["TEMPLATE_PARAMS"], where))
    try:
        sdk.timeouts(conf.get("TIMEOUT"))
    except Exception as exc:  # noqa: BLE001 - ImproperlyConfigured with the reason
        problems.append(str(exc).removeprefix('ALIYUN_SMS["TIMEOUT"] ').rstrip("."))
    if not isinstance(conf.get("CONFIRM_BEFORE_RESEND"), bool):
        problems.append("CONFIRM_BEFORE_RESEND must be True or False")
    return [
        checks.Error(f"{WHERE}: {problem}.", hint=DOCS_HINT, id="ciam_otp.E136")
        for problem in problems
    ]


def _check_credentials(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E132/E133 for static keys; the default chain and factories need none here."""
    mode = sdk.credential_mode(conf)
    if mode == "default":
        return []
    if mode != "static":
        problem = "" if "." in mode else "not a dotted path"
        if not problem:
            try:
                import_string(mode)
            except ImportError as exc:
                problem = str(exc)
        if not problem:
            return []
        return [
            checks.Error(
                f'{WHERE}["CREDENTIALS"] = {mode!r}: use None, "static", "default" or the '
                f"dotted path of a credential factory ({problem}).",
                id="ciam_otp.E136",
            )
        ]
    return [
        checks.Error(
            f'{WHERE}["{key}"] is not set.',
            hint="Set ACCESS_KEY_ID and ACCESS_KEY_SECRET (a RAM user's, allowed dysms:SendSms), "
            'or neither (and CREDENTIALS None or "default") to take credentials from the '
            "SDK's default chain: environment, OIDC role, profile files, ECS RAM role.",
            id=check_id,
        )
        for key, check_id in (
            ("ACCESS_KEY_ID", "ciam_otp.E132"),
            ("ACCESS_KEY_SECRET", "ciam_otp.E133"),
        )
        if not conf.get(key)
    ]


def _check_connection(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E137 region, E138 endpoint, W131 time budget."""
    messages: list[checks.CheckMessage] = []
    try:
        sdk.check_region(conf.get("REGION"))
    except Exception as exc:  # noqa: BLE001
        messages.append(
            checks.Error(str(exc) + ".", hint='Mainland: "cn-hangzhou".', id="ciam_otp.E137")
        )
    try:
        sdk.resolve_endpoint(conf.get("ENDPOINT"))
    except Exception as exc:  # noqa: BLE001
        messages.append(
            checks.Error(
                str(exc) + ".", hint='Mainland: "dysmsapi.aliyuncs.com".', id="ciam_otp.E138"
            )
        )
    try:
        connect, read = sdk.timeouts(conf.get("TIMEOUT"))
    except Exception:  # noqa: BLE001 - E136 says so
        return messages
    calls = CALLS_WITH_CONFIRM if conf.get("CONFIRM_BEFORE_RESEND", True) else 1
    messages.extend(
        checks_support.time_budget(
            WHERE,
            conf.get("TIMEOUT"),
            worst=calls * (connect + read),
            calls=calls,
            check_id="ciam_otp.W131",
        )
    )
    return messages


def _check_templates(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E134 signature, E135 mainland templates, W134 regions Alibaba will not be asked for."""
    from ....models import Usage

    if _codes_problems(conf.get("TEMPLATE_CODES") or {}, "") or not isinstance(
        conf.get("INTERNATIONAL") or {}, dict
    ):
        return []  # E136
    languages = _languages()
    messages: list[checks.CheckMessage] = []
    unsigned: list[str] = []
    for region in [str(r) for r in otp_settings.PHONE_REGIONS or []]:
        try:
            scope = scope_settings(conf, region)
        except AttributeError:  # an INTERNATIONAL entry that is not a dict: E136
            continue
        if scope is not None and any(not pick(scope["SIGN_NAME"], lang) for lang in languages):
            unsigned.append(region)
        missing = sorted(
            {
                usage
                for usage in Usage.values
                for language in languages
                if scope is None or not template_code(scope, usage, language)
            }
        )
        if not missing:
            continue
        if region == MAINLAND:
            messages.append(
                checks.Error(
                    f'{WHERE}["TEMPLATE_CODES"] has no template for {", ".join(missing)} '
                    "and no 'default'.",
                    hint="Map each usage, or 'default', to an approved template code whose "
                    "variables are TEMPLATE_PARAMS (by default ${code}).",
                    id="ciam_otp.E135",
                )
            )
        else:
            messages.append(
                checks.Warning(
                    f"PHONE_REGIONS includes {region!r} but no international template serves "
                    f"{', '.join(missing)} there: such numbers go to the next SMS backend "
                    "(Alibaba sends numbers outside the mainland international templates only).",
                    hint=f'Set {WHERE}["INTERNATIONAL"]["{region}"] (or ["default"]) = '
                    '{"TEMPLATE_CODES": {"default": "<approved international template code>"}}, '
                    "or route the region to another backend.",
                    id="ciam_otp.W134",
                )
            )
    if unsigned:
        messages.insert(
            0,
            checks.Error(
                f'{WHERE}["SIGN_NAME"] is not set (for {", ".join(unsigned)}); SendSms needs an '
                "approved signature.",
                hint=HINT,
                id="ciam_otp.E134",
            ),
        )
    return messages


def _kinds(conf: dict[str, Any]) -> set[str]:
    """What the templates of ``PHONE_REGIONS`` are filled with."""
    kinds: set[str] = set()
    for region in otp_settings.PHONE_REGIONS or []:
        try:
            scope = scope_settings(conf, str(region))
            if scope is not None:
                kinds.update(template_params(scope).values())
        except (AttributeError, TypeError, ValueError):  # E136
            continue
    return kinds


def _check_code_policy(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E139 / W135 validity in minutes, W133 code length (codes sent without an auth source)."""
    if params_problems(conf.get("TEMPLATE_PARAMS"), "") or not isinstance(
        conf.get("INTERNATIONAL") or {}, dict
    ):
        return []  # E136
    kinds = _kinds(conf)
    messages: list[checks.CheckMessage] = []
    what = (
        'CIAM_OTP["DEFAULT_CODE_LENGTH"] / ["DEFAULT_CODE_VALIDITY"] (sends without an auth source)'
    )
    length = otp_settings.DEFAULT_CODE_LENGTH
    if "code" in kinds and isinstance(length, int) and length not in CODE_LENGTHS:
        messages.append(
            checks.Warning(
                f"{what} has {length}-character codes; a verification-code template variable "
                f"takes {CODE_LENGTHS.start} to {CODE_LENGTHS.stop - 1} (isv.PARAM_LENGTH_LIMIT).",
                hint="Use 4 to 6 digits, or a notification template (variables of up to 35).",
                id="ciam_otp.W133",
            )
        )
    validity = otp_settings.DEFAULT_CODE_VALIDITY
    if "minutes" not in kinds or not isinstance(validity, int):
        return messages
    validity = min(validity, int(otp_settings.TOKEN_TTL))
    if validity < SECONDS_PER_MINUTE:
        messages.append(
            checks.Error(
                f"{what} has codes valid {validity} s, under a minute: a template announcing "
                "whole minutes cannot say so, and such SMS are not sent.",
                hint='Use a validity of whole minutes, or "seconds" in TEMPLATE_PARAMS.',
                id="ciam_otp.E139",
            )
        )
    elif validity % SECONDS_PER_MINUTE:
        messages.append(
            checks.Warning(
                f"{what} has codes valid {validity} s, not a whole number of minutes: the SMS "
                f"announces {validity // SECONDS_PER_MINUTE} minute(s) (rounded down).",
                hint="Use a multiple of 60 seconds.",
                id="ciam_otp.W135",
            )
        )
    return messages


def _check_receipts(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """W132: a receipts secret short enough to guess."""
    secret = conf.get("RECEIPT_SECRET")
    if not isinstance(secret, str) or not secret or len(secret) >= MIN_SECRET_LENGTH:
        return []
    return [
        checks.Warning(
            f'{WHERE}["RECEIPT_SECRET"] has {len(secret)} characters: anyone who guesses it can '
            "post delivery receipts.",
            hint=f"Use at least {MIN_SECRET_LENGTH} random characters, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
            id="ciam_otp.W132",
        )
    ]
