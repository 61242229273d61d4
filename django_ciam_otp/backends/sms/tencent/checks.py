"""System checks of the Tencent Cloud SMS backend, run through ``SMSBackend.check()``.

The core asks each configured backend class for its checks, so these run only
while this backend (or a subclass) is the SMS backend: :func:`run` is the hook's
body. ``check_tencent_settings`` reads settings only (``manage.py check``);
``check_tencent_auth_sources`` reads the SMS auth sources from the database,
when Django passes ``databases`` (``migrate``, ``manage.py check --database
default``). Both stay callable on their own, silent unless the backend is configured.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections
from django.utils.module_loading import import_string

from ....conf import otp_settings
from .. import checks_support
from . import sdk
from .conf import DEFAULTS, SETTINGS_KEY
from .templates import (
    INTERNATIONAL_KEYS,
    MAINLAND,
    MAX_CODE_DIGITS,
    TEMPLATE_PARAM_NAMES,
    pick,
    scope_settings,
    template_id,
    template_param_names,
)

BACKEND_PATH = "django_ciam_otp.backends.sms.tencent.SMSBackend"
HINT = 'Set it in CIAM_OTP["TENCENT_SMS"]; see the Tencent Cloud SMS console.'
#: Tencent's own SendSms answer to non-whole minutes would be a lie: see W102.
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


def run_database(databases: Any) -> list[checks.CheckMessage]:
    """The checks that read the database: the SMS auth sources against Tencent's limits."""
    return _auth_source_checks(databases)


def _conf() -> Any:
    """``CIAM_OTP["TENCENT_SMS"]`` over the defaults; as written when it is not a dict."""
    return checks_support.merged_section(SETTINGS_KEY, DEFAULTS)


def _languages() -> list[str]:
    codes = [code for code, _name in getattr(settings, "LANGUAGES", [])]
    return codes or [settings.LANGUAGE_CODE]


def check_tencent_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report Tencent SMS settings that would fail sends, when this backend is in use.

    The signature fits ``django.core.checks.register``. Ids ``ciam_otp.E101``–``E112``
    and ``ciam_otp.W101``–``W104`` (docs/checks.md).
    """
    if not backend_configured():
        return []
    return _settings_checks()


def _settings_checks() -> list[checks.CheckMessage]:
    conf = _conf()
    if not isinstance(conf, dict):
        return [checks.Error('CIAM_OTP["TENCENT_SMS"] must be a dict.', id="ciam_otp.E107")]
    errors: list[checks.CheckMessage] = []
    errors.extend(_check_shape(conf))
    errors.extend(_check_credentials(conf))
    if not conf.get("SDK_APP_ID"):
        errors.append(
            checks.Error(
                'CIAM_OTP["TENCENT_SMS"]["SDK_APP_ID"] is not set.', hint=HINT, id="ciam_otp.E103"
            )
        )
    errors.extend(_check_connection(conf))
    errors.extend(_check_templates(conf))
    errors.extend(_check_code_policy(conf))
    try:
        sdk.import_sdk()
    except Exception as exc:  # noqa: BLE001 - ImproperlyConfigured naming the pip extra
        errors.append(checks.Error(str(exc), id="ciam_otp.E106"))
    return errors


def _check_shape(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E107: unknown keys, and values of the wrong kind."""
    problems = checks_support.unknown_keys(conf, DEFAULTS)
    problems.extend(_params_problems(conf.get("TEMPLATE_PARAMS"), "TEMPLATE_PARAMS"))
    if not isinstance(conf.get("TEMPLATE_IDS") or {}, dict):
        problems.append("TEMPLATE_IDS must map usages (or 'default') to template ids")
    international = conf.get("INTERNATIONAL") or {}
    if not isinstance(international, dict):
        problems.append('INTERNATIONAL must map regions (or "default") to dicts')
    else:
        for region, entry in international.items():
            if not isinstance(entry, dict):
                problems.append(f'INTERNATIONAL["{region}"] must be a dict')
                continue
            extra = sorted(set(entry) - set(INTERNATIONAL_KEYS))
            if extra:
                problems.append(f'INTERNATIONAL["{region}"] has unknown keys {", ".join(extra)}')
            if region == MAINLAND:
                problems.append('INTERNATIONAL["CN"]: mainland numbers use the top-level keys')
            if "TEMPLATE_PARAMS" in entry:
                problems.extend(
                    _params_problems(entry["TEMPLATE_PARAMS"], f'INTERNATIONAL["{region}"]')
                )
    try:
        sdk.timeouts(conf.get("TIMEOUT"))
    except Exception as exc:  # noqa: BLE001 - ImproperlyConfigured with the reason
        problems.append(str(exc).removeprefix('TENCENT_SMS["TIMEOUT"] '))
    if not isinstance(conf.get("CONFIRM_BEFORE_RESEND"), bool):
        problems.append("CONFIRM_BEFORE_RESEND must be True or False")
    secret = conf.get("RECEIPT_SECRET")
    if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
        problems.append("RECEIPT_SECRET must be None or a random string of 16 characters or more")
    return [
        checks.Error(
            f'CIAM_OTP["TENCENT_SMS"]: {problem}.',
            hint="See the TENCENT_SMS settings on the docs' SMS backends page.",
            id="ciam_otp.E107",
        )
        for problem in problems
    ]


def _params_problems(names: Any, where: str) -> list[str]:
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        return [f"{where} must be a list of parameter names"]
    bad = [name for name in names if name not in TEMPLATE_PARAM_NAMES]
    if bad:
        return [
            f"{where} names unknown parameters {', '.join(bad)} "
            f"(known: {', '.join(TEMPLATE_PARAM_NAMES)})"
        ]
    if "code" not in names:
        return [f'{where} must include "code"']
    return []


def _check_credentials(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E101/E102 for static keys; the default chain and factories need none here."""
    mode = sdk.credential_mode(conf)
    if mode == "default":
        return []
    if mode != "static":
        try:
            import_string(mode)
        except ImportError as exc:
            return [
                checks.Error(
                    f'CIAM_OTP["TENCENT_SMS"]["CREDENTIALS"] = {mode!r}: use None, "static", '
                    f'"default" or the dotted path of a credential factory ({exc}).',
                    id="ciam_otp.E107",
                )
            ]
        return []
    return [
        checks.Error(
            f'CIAM_OTP["TENCENT_SMS"]["{key}"] is not set.',
            hint='Set SECRET_ID and SECRET_KEY, or neither (and CREDENTIALS None or "default") '
            "to take credentials from the SDK's default chain: environment, profile file, "
            "CVM role, TKE OIDC role.",
            id=check_id,
        )
        for key, check_id in (("SECRET_ID", "ciam_otp.E101"), ("SECRET_KEY", "ciam_otp.E102"))
        if not conf.get(key)
    ]


def _check_connection(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E108 region, E109 endpoint, W103 undocumented region, W101 time budget."""
    messages: list[checks.CheckMessage] = []
    region = conf.get("REGION")
    try:
        sdk.check_region(region)
    except Exception as exc:  # noqa: BLE001
        messages.append(
            checks.Error(
                str(exc) + "; SendSms needs one (X-TC-Region).",
                hint=f"One of {', '.join(sorted(sdk.SMS_REGIONS))}.",
                id="ciam_otp.E108",
            )
        )
        region = None
    if region is not None and region not in sdk.SMS_REGIONS:
        messages.append(
            checks.Warning(
                f'CIAM_OTP["TENCENT_SMS"]["REGION"] = {region!r} is not a region the SMS API '
                "documents.",
                hint=f"Tencent lists {', '.join(sorted(sdk.SMS_REGIONS))}.",
                id="ciam_otp.W103",
            )
        )
    try:
        sdk.resolve_endpoint(conf.get("ENDPOINT"), region or "ap-guangzhou")
    except Exception as exc:  # noqa: BLE001
        messages.append(checks.Error(str(exc) + ".", id="ciam_otp.E109"))
    else:
        if conf.get("ENDPOINT") == "regional" and region and region not in sdk.ACCESS_REGIONS:
            messages.append(
                checks.Warning(
                    f"sms.{region}.tencentcloudapi.com is not an access domain Tencent lists.",
                    hint='Use ENDPOINT "mainland" (nearest region) or a listed regional host.',
                    id="ciam_otp.W103",
                )
            )
    try:
        connect, read = sdk.timeouts(conf.get("TIMEOUT"))
    except Exception:  # noqa: BLE001 - E107 says so
        return messages
    calls = 2 if conf.get("CONFIRM_BEFORE_RESEND", True) else 1
    messages.extend(
        checks_support.time_budget(
            'CIAM_OTP["TENCENT_SMS"]',
            conf.get("TIMEOUT"),
            worst=calls * (connect + read),
            calls=calls,
            check_id="ciam_otp.W101",
        )
    )
    return messages


def _check_templates(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """E104 mainland signature, E105 mainland templates, E112 other regions, W104 SenderId."""
    from ....models import Usage

    if not isinstance(conf.get("TEMPLATE_IDS") or {}, dict) or not isinstance(
        conf.get("INTERNATIONAL") or {}, dict
    ):
        return []  # E107
    regions = [str(r) for r in otp_settings.PHONE_REGIONS or []]
    languages = _languages()
    messages: list[checks.CheckMessage] = []
    for region in regions:
        try:
            scope = scope_settings(conf, region)
        except AttributeError:  # an INTERNATIONAL entry that is not a dict: E107
            continue
        missing = sorted(
            {
                usage
                for usage in Usage.values
                for language in languages
                if not template_id(scope, usage, language)
            }
        )
        if region == MAINLAND:
            if any(not pick(scope.get("SIGN_NAME"), language) for language in languages):
                messages.append(
                    checks.Error(
                        'CIAM_OTP["TENCENT_SMS"]["SIGN_NAME"] is not set; Chinese mainland SMS '
                        "needs an approved signature.",
                        hint=HINT,
                        id="ciam_otp.E104",
                    )
                )
            if missing:
                messages.append(
                    checks.Error(
                        'CIAM_OTP["TENCENT_SMS"]["TEMPLATE_IDS"] has no template for '
                        f"{', '.join(missing)} and no 'default'.",
                        hint="Map each usage, or 'default', to an approved template id whose "
                        "parameters are TEMPLATE_PARAMS (by default {1} code, {2} minutes).",
                        id="ciam_otp.E105",
                    )
                )
            continue
        if missing:
            messages.append(
                checks.Error(
                    f"PHONE_REGIONS includes {region!r} but no international template serves "
                    f"{', '.join(missing)} there: Tencent refuses mainland templates for numbers "
                    "outside the mainland "
                    "(UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone).",
                    hint=f'Set CIAM_OTP["TENCENT_SMS"]["INTERNATIONAL"]["{region}"] (or '
                    '["default"]) = {"TEMPLATE_IDS": {"default": "<approved international '
                    'template id>"}}.',
                    id="ciam_otp.E112",
                )
            )
        if region == "SG" and not any(pick(scope.get("SENDER_ID"), lang) for lang in languages):
            messages.append(
                checks.Warning(
                    "PHONE_REGIONS includes 'SG' but no SENDER_ID is set for it: Singapore "
                    "(IMDA's SMS Sender ID Registry) labels messages from unregistered sender "
                    'IDs "Likely-SCAM".',
                    hint="Register a Sender ID with Tencent (https://cloud.tencent.com/document/"
                    'product/382/102831) and set INTERNATIONAL["SG"]["SENDER_ID"].',
                    id="ciam_otp.W104",
                )
            )
    return messages


def _uses(conf: dict[str, Any], name: str) -> bool:
    """Whether any template of ``PHONE_REGIONS`` takes parameter ``name``."""
    for region in otp_settings.PHONE_REGIONS or []:
        try:
            names = template_param_names(scope_settings(conf, str(region)))
        except (AttributeError, TypeError):
            continue
        if name in names:
            return True
    return False


def _code_problems(
    conf: dict[str, Any], what: str, length: Any, validity: Any
) -> list[checks.CheckMessage]:
    """E110 code too long, E111 / W102 validity not announceable in whole minutes."""
    messages: list[checks.CheckMessage] = []
    if isinstance(length, int) and length > MAX_CODE_DIGITS and _uses(conf, "code"):
        messages.append(
            checks.Error(
                f"{what} has {length}-digit codes; Tencent's verification-code template variable "
                f"takes at most {MAX_CODE_DIGITS} digits, so every such SMS would be refused.",
                hint=f"Use at most {MAX_CODE_DIGITS} digits with the Tencent SMS backend.",
                id="ciam_otp.E110",
            )
        )
    if not isinstance(validity, int) or not _uses(conf, "minutes"):
        return messages
    validity = min(validity, int(otp_settings.TOKEN_TTL))
    if validity < SECONDS_PER_MINUTE:
        messages.append(
            checks.Error(
                f"{what} has codes valid {validity} s, under a minute: a template announcing "
                "whole minutes cannot say so, and such SMS are not sent.",
                hint='Use a validity of whole minutes, or "seconds" in TEMPLATE_PARAMS.',
                id="ciam_otp.E111",
            )
        )
    elif validity % SECONDS_PER_MINUTE:
        messages.append(
            checks.Warning(
                f"{what} has codes valid {validity} s, not a whole number of minutes: the SMS "
                f"announces {validity // SECONDS_PER_MINUTE} minute(s) (rounded down).",
                hint="Use a multiple of 60 seconds.",
                id="ciam_otp.W102",
            )
        )
    return messages


def _check_code_policy(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    if _params_problems(conf.get("TEMPLATE_PARAMS"), "") or not isinstance(
        conf.get("INTERNATIONAL") or {}, dict
    ):
        return []  # E107
    return _code_problems(
        conf,
        'CIAM_OTP["DEFAULT_CODE_LENGTH"] / ["DEFAULT_CODE_VALIDITY"] (sends without an auth '
        "source)",
        otp_settings.DEFAULT_CODE_LENGTH,
        otp_settings.DEFAULT_CODE_VALIDITY,
    )


def check_tencent_auth_sources(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """E110 / E111 / W102 for each enabled SMS auth source, when this backend is in use."""
    if not databases or not backend_configured():
        return []
    return _auth_source_checks(databases)


def _auth_source_checks(databases: Any) -> list[checks.CheckMessage]:
    conf = _conf()
    if not databases or not isinstance(conf, dict):
        return []
    if _params_problems(conf.get("TEMPLATE_PARAMS"), "") or not isinstance(
        conf.get("INTERNATIONAL") or {}, dict
    ):
        return []
    from ....models import AuthSource, Channel

    messages: list[checks.CheckMessage] = []
    for alias in databases:
        if alias not in connections:
            continue
        try:
            sources = list(
                AuthSource.objects.using(alias)
                .filter(channel=Channel.SMS, enabled=True)
                .values_list("pk", "code_length", "code_validity")
            )
        except DatabaseError:  # not migrated yet
            continue
        for pk, length, validity in sources:
            messages.extend(_code_problems(conf, f"SMS auth source {pk!r}", length, validity))
    return messages
