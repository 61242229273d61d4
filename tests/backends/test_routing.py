"""``SMS_BACKENDS`` and ``SMS_ROUTES`` (backends/routing.py): which backends carry a number.

The list is read into named entries (a path, or a dict with a name and the
backend's keyword arguments); routes pick a number's backends by region or
prefix, first match wins, and a number no route matches may use them all, in
order. What cannot be read is ``ImproperlyConfigured`` at run time and
``ciam_otp.E020`` (the list), ``E021`` (the routes) or ``E022`` (the circuit)
in ``manage.py check``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_ciam_otp import checks as otp_checks
from django_ciam_otp import circuit
from django_ciam_otp.backends import loading
from django_ciam_otp.backends.email.django import EmailBackend
from django_ciam_otp.backends.routing import (
    BackendEntry,
    backend_named,
    route_for,
    sms_backends,
)
from django_ciam_otp.backends.sms.tencent import SMSBackend as Tencent
from django_ciam_otp.backends.sms.tencent import check_tencent_settings
from tests.support import sms_backends as scripted

SUPPORT = "tests.support.sms_backends"
DELIVERING = f"{SUPPORT}.Delivering"
REPORTING = f"{SUPPORT}.Reporting"
TRANSIENT = f"{SUPPORT}.AlwaysTransient"
LOCMEM = "django_ciam_otp.backends.sms.locmem.SMSBackend"
TENCENT = "django_ciam_otp.backends.sms.tencent.SMSBackend"

CN_MOBILE = "+8613612345678"
HK_MOBILE = "+85291234567"
US_NUMBER = "+12015550123"  # New Jersey
CA_NUMBER = "+16135550123"  # Ottawa: the same +1 as the US
DE_NUMBER = "+4930123456"

ROUTING_IDS = {"ciam_otp.E020", "ciam_otp.E021", "ciam_otp.E022"}


def configure(settings: Any, backends: Any, routes: Any = None, **extra: Any) -> None:
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": backends,
        **({} if routes is None else {"SMS_ROUTES": routes}),
        **extra,
    }


def routing_errors() -> list[checks.CheckMessage]:
    """The E020-E022 messages of ``manage.py check``."""
    return [m for m in otp_checks.check_settings() if m.id in ROUTING_IDS]


def names(entries: tuple[BackendEntry, ...]) -> list[str]:
    return [entry.name for entry in entries]


@pytest.fixture
def three(settings: Any) -> None:
    """Three named backends: "cn" (mainland), "intl" and "spare"."""
    configure(
        settings,
        [
            {"NAME": "cn", "BACKEND": DELIVERING},
            {"NAME": "intl", "BACKEND": DELIVERING},
            {"NAME": "spare", "BACKEND": DELIVERING},
        ],
    )


# --- the list -------------------------------------------------------------------------------


def test_without_a_list_the_one_sms_backend_is_used(settings):
    configure(settings, None, SMS_BACKEND=REPORTING)
    [entry] = sms_backends()
    assert (entry.name, entry.path, entry.options) == ("reporting", REPORTING, {})
    assert routing_errors() == []


def test_dotted_paths_are_named_by_their_class_in_order(settings):
    configure(settings, [TRANSIENT, DELIVERING, LOCMEM, TENCENT])
    # default_name; else the module's last part, or its package for a module named backend
    assert names(sms_backends()) == ["always_transient", "delivering", "locmem", "tencent"]
    assert [entry.path for entry in sms_backends()] == [TRANSIENT, DELIVERING, LOCMEM, TENCENT]


def test_a_class_that_is_no_base_backend_is_named_by_its_module(settings):
    configure(settings, ["tests.test_breaker.Scripted"])
    assert names(sms_backends()) == ["test_breaker"]


def test_a_dict_names_the_backend_and_its_options_reach_the_constructor(settings):
    configure(
        settings,
        [{"NAME": "acme_cn", "BACKEND": REPORTING, "OPTIONS": {"secret": "s3", "extra": 1}}],
    )
    entry = backend_named("acme_cn")
    assert entry is not None
    backend = entry.build()
    assert isinstance(backend, scripted.Reporting)
    assert backend.name == "acme_cn"
    assert backend.secret == "s3"  # read by the constructor (backend_setting pops it)
    assert backend.options == {"extra": 1}  # what the constructor did not read
    # Building again finds the options whole: no instance consumed the entry's dict.
    assert entry.build().secret == "s3"
    assert entry.options == {"secret": "s3", "extra": 1}


def test_two_accounts_of_one_provider_run_side_by_side(settings):
    configure(
        settings,
        [
            {"NAME": "acme_a", "BACKEND": REPORTING, "OPTIONS": {"secret": "a"}},
            {"NAME": "acme_b", "BACKEND": REPORTING, "OPTIONS": {"secret": "b"}},
        ],
    )
    built = [entry.build() for entry in sms_backends()]
    assert [(b.name, b.secret) for b in built] == [("acme_a", "a"), ("acme_b", "b")]
    assert backend_named("acme_b").build().secret == "b"
    assert backend_named("acme") is None


def test_the_first_backend_is_what_get_backend_builds_keywords_first(settings):
    configure(
        settings,
        [{"NAME": "first", "BACKEND": REPORTING, "OPTIONS": {"secret": "option"}}, DELIVERING],
    )
    backend = loading.get_backend("sms")
    assert (type(backend), backend.name, backend.secret) == (scripted.Reporting, "first", "option")
    assert loading.get_backend("sms", secret="keyword").secret == "keyword"


def test_the_list_is_read_again_when_settings_change(settings):
    configure(settings, [DELIVERING])
    assert names(sms_backends()) == ["delivering"]
    configure(settings, [TRANSIENT, DELIVERING])
    assert names(sms_backends()) == ["always_transient", "delivering"]
    assert names(route_for(CN_MOBILE)) == ["always_transient", "delivering"]


@pytest.mark.parametrize(
    ("backends", "duplicated"),
    [
        ([DELIVERING, DELIVERING], "delivering"),
        ([DELIVERING, {"NAME": "delivering", "BACKEND": LOCMEM}], "delivering"),
        ([{"NAME": "x", "BACKEND": LOCMEM}, {"NAME": "x", "BACKEND": DELIVERING}], "x"),
    ],
)
def test_a_name_used_twice_is_refused(settings, backends, duplicated):
    configure(settings, backends)
    with pytest.raises(ImproperlyConfigured, match=f"names \\['{duplicated}'\\] more than once"):
        sms_backends()
    [error] = routing_errors()
    assert error.id == "ciam_otp.E020"
    assert duplicated in error.msg


def test_one_provider_twice_needs_a_name_for_each(settings):
    configure(settings, [DELIVERING, {"NAME": "delivering_2", "BACKEND": DELIVERING}])
    assert names(sms_backends()) == ["delivering", "delivering_2"]
    assert routing_errors() == []


@pytest.mark.parametrize(
    ("backends", "says"),
    [
        ([], "non-empty list"),
        (DELIVERING, "non-empty list"),  # a path where a list belongs
        ({"NAME": "x", "BACKEND": DELIVERING}, "non-empty list"),
        ([42], "dotted path or a dict"),
        ([None], "dotted path or a dict"),
        ([{"NAME": "x"}], 'needs "BACKEND"'),
        ([{"BACKEND": ""}], 'needs "BACKEND"'),
        ([{"BACKEND": 5}], 'needs "BACKEND"'),
        ([""], 'needs "BACKEND"'),
        ([{"BACKEND": DELIVERING, "OPTION": {}}], "unknown keys \\['OPTION'\\]"),
        ([{"BACKEND": DELIVERING, "OPTIONS": ["secret"]}], 'OPTIONS"\\] must be a dict'),
        ([{"NAME": "acme-cn", "BACKEND": DELIVERING}], "letters, digits and underscores"),
        ([{"NAME": "", "BACKEND": DELIVERING}], "letters, digits and underscores"),
        ([{"NAME": 7, "BACKEND": DELIVERING}], "letters, digits and underscores"),
    ],
)
def test_a_malformed_list_is_refused_and_reported_as_e020(settings, backends, says):
    configure(settings, backends)
    with pytest.raises(ImproperlyConfigured, match=says):
        sms_backends()
    [error] = routing_errors()
    assert error.id == "ciam_otp.E020"
    assert "SMS_BACKENDS" in error.msg


def test_the_position_of_a_malformed_entry_is_named(settings):
    configure(settings, [DELIVERING, {"NAME": "x", "BACKEND": LOCMEM}, 3])
    [error] = routing_errors()
    assert 'CIAM_OTP["SMS_BACKENDS"][2]' in error.msg


@pytest.mark.parametrize(
    "entry",
    [f"{SUPPORT}.NoSuchBackend", {"NAME": "gone", "BACKEND": "tests.no_such_module.SMSBackend"}],
)
def test_a_path_that_cannot_be_imported_is_e020(settings, entry):
    configure(settings, [DELIVERING, entry])
    [error] = routing_errors()
    assert error.id == "ciam_otp.E020"


def test_e020_leaves_the_routes_unjudged(settings):
    """Routes name backends: with the list unreadable, E021 would only repeat E020."""
    configure(settings, [42], [{"REGIONS": ["CN"], "BACKENDS": ["nobody"]}])
    assert [error.id for error in routing_errors()] == ["ciam_otp.E020"]


# --- routes -------------------------------------------------------------------------------------


def test_a_region_route_takes_its_numbers_and_the_rest_use_every_backend(settings, three):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [{"REGIONS": ["CN"], "BACKENDS": ["cn", "spare"]}],
    }
    assert names(route_for(CN_MOBILE)) == ["cn", "spare"]
    assert names(route_for(HK_MOBILE)) == ["cn", "intl", "spare"]  # HK is not CN
    assert names(route_for(DE_NUMBER)) == ["cn", "intl", "spare"]
    assert routing_errors() == []


def test_regions_tell_apart_what_a_shared_prefix_cannot(settings, three):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [{"REGIONS": ["ca"], "BACKENDS": ["spare"]}],  # any case
    }
    assert names(route_for(CA_NUMBER)) == ["spare"]
    assert names(route_for(US_NUMBER)) == ["cn", "intl", "spare"]


def test_a_prefix_route_keeps_the_order_it_names(settings, three):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [{"PREFIXES": ["+852", "+853"], "BACKENDS": ["spare", "intl"]}],
    }
    assert names(route_for(HK_MOBILE)) == ["spare", "intl"]
    assert names(route_for("+85361234567")) == ["spare", "intl"]
    assert names(route_for(CN_MOBILE)) == ["cn", "intl", "spare"]


def test_the_first_matching_route_wins(settings, three):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [
            {"PREFIXES": ["+86136"], "BACKENDS": ["spare"]},
            {"REGIONS": ["CN"], "BACKENDS": ["cn"]},
            {"PREFIXES": ["+86"], "BACKENDS": ["intl"]},
        ],
    }
    assert names(route_for(CN_MOBILE)) == ["spare"]
    assert names(route_for("+8613912345678")) == ["cn"]


def test_a_number_without_a_region_still_matches_a_prefix(settings, three):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [
            {"REGIONS": ["GB"], "BACKENDS": ["cn"]},
            {"PREFIXES": ["+44"], "BACKENDS": ["intl"]},
        ],
    }
    # A reserved (fictional) UK range: phonenumbers gives it no region.
    assert names(route_for("+447700900123")) == ["intl"]
    assert names(route_for("+447400123456")) == ["cn"]
    # Guernsey shares +44 but is a region of its own: a "GB" route does not take it.
    assert names(route_for("+447911123456")) == ["intl"]


def test_a_route_may_name_backends_in_any_combination_of_regions_and_prefixes(settings, three):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [{"REGIONS": ["DE"], "PREFIXES": ["+852"], "BACKENDS": ["intl"]}],
    }
    assert names(route_for(DE_NUMBER)) == names(route_for(HK_MOBILE)) == ["intl"]
    assert names(route_for(CN_MOBILE)) == ["cn", "intl", "spare"]


@pytest.mark.parametrize(
    ("routes", "says"),
    [
        ({"REGIONS": ["CN"], "BACKENDS": ["cn"]}, "must be a list"),
        ([["CN", "cn"]], 'must be a dict of "REGIONS"'),
        ([{"REGION": ["CN"], "BACKENDS": ["cn"]}], 'must be a dict of "REGIONS"'),
        ([{"BACKENDS": ["cn"]}], "matches nothing"),
        ([{"REGIONS": [], "PREFIXES": [], "BACKENDS": ["cn"]}], "matches nothing"),
        ([{"PREFIXES": ["86"], "BACKENDS": ["cn"]}], "E.164 prefixes"),
        ([{"PREFIXES": ["+86 "], "BACKENDS": ["cn"]}], "E.164 prefixes"),
        ([{"PREFIXES": ["+"], "BACKENDS": ["cn"]}], "E.164 prefixes"),
        ([{"REGIONS": ["CN"], "BACKENDS": []}], "unknown: \\[\\]"),
        ([{"REGIONS": ["CN"]}], "unknown: \\[\\]"),
        ([{"REGIONS": ["CN"], "BACKENDS": ["cn", "tencent"]}], "unknown: \\['tencent'\\]"),
        # A string is not a list: "CN" would be the regions "C" and "N" and match nothing.
        ([{"REGIONS": "CN", "BACKENDS": ["cn"]}], "are lists"),
        ([{"PREFIXES": "+86", "BACKENDS": ["cn"]}], "are lists"),
        ([{"REGIONS": ["CN"], "BACKENDS": "cn"}], "are lists"),
        ([{"REGIONS": ["UK"], "BACKENDS": ["cn"]}], "names no region.*'UK'"),
        ([{"REGIONS": ["CHN"], "BACKENDS": ["cn"]}], "names no region.*'CHN'"),
    ],
)
def test_a_malformed_route_is_refused_and_reported_as_e021(settings, three, routes, says):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_ROUTES": routes}
    with pytest.raises(ImproperlyConfigured, match=says):
        route_for(CN_MOBILE)
    [error] = routing_errors()
    assert error.id == "ciam_otp.E021"
    assert "SMS_ROUTES" in error.msg


def test_an_unknown_name_in_a_route_lists_the_known_ones(settings, three):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [
            {"REGIONS": ["CN"], "BACKENDS": ["cn"]},
            {"PREFIXES": ["+1"], "BACKENDS": ["twilio"]},
        ],
    }
    [error] = routing_errors()
    assert 'CIAM_OTP["SMS_ROUTES"][1]["BACKENDS"]' in error.msg
    assert "'twilio'" in error.msg and "['cn', 'intl', 'spare']" in error.msg


def test_routes_by_default_names_with_a_single_backend(settings):
    configure(settings, None, [{"REGIONS": ["CN"], "BACKENDS": ["locmem"]}])
    assert names(route_for(CN_MOBILE)) == ["locmem"]
    assert routing_errors() == []


# --- the circuit's settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("circuit", "says"),
    [
        ({"FAILURES": 0, "WINDOW": 60, "COOL_DOWN": 30}, '"FAILURES"\\] must be 1 to 1000'),
        ({"FAILURES": 1001, "WINDOW": 60, "COOL_DOWN": 30}, '"FAILURES"\\] must be 1 to 1000'),
        ({"FAILURES": True, "WINDOW": 60, "COOL_DOWN": 30}, '"FAILURES"\\] must be'),
        ({"FAILURES": 5, "WINDOW": 60.5, "COOL_DOWN": 30}, '"WINDOW"\\] must be 1 to 86400'),
        ({"FAILURES": 5, "WINDOW": 60, "COOL_DOWN": "30"}, '"COOL_DOWN"\\] must be'),
        ({"FAILURES": 5, "WINDOW": 60, "COOL_DOWN": 86401}, '"COOL_DOWN"\\] must be'),
        ({"FAILURES": 5, "WINDOW": 60, "COOL_DOWN": 30, "RESET": 1}, "takes \\['COOL_DOWN'"),
        ([5, 60, 30], "takes \\['COOL_DOWN', 'FAILURES', 'WINDOW'\\] only"),
    ],
)
def test_a_malformed_circuit_is_e022(settings, circuit, says):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_CIRCUIT": circuit}
    [error] = routing_errors()
    assert error.id == "ciam_otp.E022"
    assert re.search(says, error.msg), error.msg


def test_every_bad_circuit_value_is_reported(settings):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_CIRCUIT": {"FAILURES": 0, "WINDOW": 0, "COOL_DOWN": None},
    }
    assert [e.msg.split("[")[-1] for e in routing_errors()] == [
        '"FAILURES"] must be 1 to 1000.',
        '"WINDOW"] must be 1 to 86400.',
        '"COOL_DOWN"] must be 1 to 86400.',
    ]


def test_a_partial_circuit_keeps_the_other_defaults(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_CIRCUIT": {"FAILURES": 2}}
    assert routing_errors() == []
    assert circuit._config() == (2, 60, 30)


def test_a_sound_configuration_passes_every_check(settings, three):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [{"REGIONS": ["CN", "HK"], "PREFIXES": ["+853"], "BACKENDS": ["cn"]}],
        "SMS_CIRCUIT": {"FAILURES": 1, "WINDOW": 86400, "COOL_DOWN": 1},
    }
    assert routing_errors() == []


def test_the_checks_are_registered_with_django(settings):
    configure(settings, [DELIVERING, 42], [{"REGIONS": ["CN"], "BACKENDS": ["x"]}])
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_CIRCUIT": {"WINDOW": -1}}
    found = {m.id for m in checks.run_checks() if m.id in ROUTING_IDS}
    assert found == {"ciam_otp.E020", "ciam_otp.E022"}
    assert all(
        m.is_serious() for m in checks.run_checks() if m.id in ROUTING_IDS
    )  # errors: they stop runserver and migrate


# --- every configured class answers for its own checks ----------------------------------------


def test_configured_backends_are_every_class_of_the_list_once_then_email(settings):
    configure(
        settings,
        [
            DELIVERING,
            {"NAME": "cn", "BACKEND": TENCENT},
            {"NAME": "second", "BACKEND": DELIVERING},
            "tests.test_breaker.Scripted",  # no BaseBackend: it has no checks to ask
        ],
    )
    assert loading.configured_backends() == [scripted.Delivering, Tencent, EmailBackend]


def test_a_provider_second_in_the_list_still_has_its_checks_run(settings):
    configure(settings, [LOCMEM, {"NAME": "cn", "BACKEND": TENCENT}])
    ids = [m.id for m in check_tencent_settings()]
    assert "ciam_otp.E103" in ids  # SDK_APP_ID missing: it would fail every send to "cn"
    assert "ciam_otp.E103" in {m.id for m in otp_checks.check_settings()}
    configure(settings, [LOCMEM])
    assert check_tencent_settings() == []


def test_a_malformed_list_falls_back_to_sms_backend_for_the_backend_checks(settings):
    configure(settings, [TENCENT, 42], SMS_BACKEND=TENCENT)
    assert Tencent in loading.configured_backends()
