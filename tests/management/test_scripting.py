"""The shared rules of the scripting commands: exit statuses, one-line errors, value checks."""

from __future__ import annotations

import argparse
import secrets

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from django_ciam_otp import crypto
from django_ciam_otp.management import scripting
from django_ciam_otp.management.scripting import EXIT_REFUSED, EXIT_USAGE, Refused, UsageError

COMMANDS = ["create_otp_client", "create_auth_source", "purge_otp_tokens"]


def test_errors_are_one_line_with_their_exit_status():
    assert UsageError("bad\nvalue").returncode == EXIT_USAGE == 2
    assert str(UsageError("bad\n  value")) == "bad value"
    assert Refused("taken").returncode == EXIT_REFUSED == 1
    assert isinstance(Refused("x"), CommandError)


@pytest.mark.parametrize(
    "args",
    [
        ["create_auth_source", "--id", "X", "--channel", "fax"],  # argparse's choices
        ["create_otp_client"],  # a required option missing
        ["purge_otp_tokens", "--no-such-option"],
    ],
)
def test_parse_errors_are_usage_errors_from_call_command_too(args):
    with pytest.raises(CommandError) as caught:
        call_command(*args)
    assert caught.value.returncode == EXIT_USAGE


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_says_its_default_or_that_it_is_required(name):
    parser = load_command_class("django_ciam_otp", name).create_parser("manage.py", name)
    own = [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        and action.dest not in {"version", "verbosity", "settings", "pythonpath", "traceback"}
        and action.dest not in {"no_color", "force_color", "skip_checks"}
    ]
    assert own
    for action in own:
        text = (action.help or "").lower()
        assert "default" in text or text.startswith("required"), action.option_strings


@pytest.mark.parametrize("value", ["0", "7", " 7 ", "+7", 7, 0])
def test_whole_number_takes_text_and_ints(value):
    assert scripting.whole_number(value, "--n", minimum=0, maximum=10, unit="things") == int(value)


@pytest.mark.parametrize("value", ["-1", "11", "1.5", "abc", "", "1_0", "٣", True, None, 2.0])
def test_whole_number_refuses_the_rest(value):
    with pytest.raises(UsageError) as caught:
        scripting.whole_number(value, "--n", minimum=0, maximum=10, unit="things")
    assert str(caught.value).startswith("--n must be")


@pytest.mark.parametrize(
    "value",
    [
        "TENANT_CLIENT_ID",  # the seed's ids
        "CLIENT_4_ID",
        "DEMO_SITE_CLIENT",
        "my-site",
        "a",
        "a.b~c_d-e",
        "x" * 64,
    ],
)
def test_client_ids_of_unreserved_characters_are_accepted(value):
    assert scripting.client_id(value) == value


def test_generated_client_ids_follow_the_rule():
    for _ in range(50):
        scripting.client_id(crypto.new_client_id())


@pytest.mark.parametrize(
    "value", ["bad id:", "", "x" * 65, "a:b", "a b", "a+b", "a%20b", "é", "a/b", "a\x00"]
)
def test_client_ids_that_need_encoding_or_are_too_long_are_refused(value):
    with pytest.raises(UsageError, match="--client-id must be 1 to 64 characters"):
        scripting.client_id(value)


def test_generated_and_random_secrets_are_accepted():
    for _ in range(50):
        for value in (crypto.new_client_secret(), secrets.token_hex(16)):  # 256 and 128 bits
            assert scripting.client_secret(value) == value


def test_a_passphrase_is_accepted():
    assert scripting.client_secret("correct horse battery staple 1917")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("short", "it has 5"),
        ("TENANT_CLIENT_SECRET", "it has 20"),  # the seed's demo secret: fine for the demo only
        ("a" * 40, "only 1 different"),
        ("abcabcabcabcabcabcabcabcabcabcabc", "only 3 different"),
        ("passwordpasswordpasswordpassword1", "8 characters in a row twice"),
        ("0123456789abcdef" * 2, "8 characters in a row twice"),
        ("Zq8#mP2!" + "x1y2z3w4" * 5, "8 characters in a row twice"),
        ("Zq8#mP2!" + "x" * 30, "8 characters in a row twice"),  # a run of 9 is 8 twice
        ("".join(chr(0x4E00 + i) for i in range(1100)), "it has 1100"),
    ],
)
def test_short_or_patterned_secrets_are_refused_without_being_echoed(value, problem):
    with pytest.raises(UsageError) as caught:
        scripting.client_secret(value)
    message = str(caught.value)
    assert problem in message
    assert value not in message
    assert "generated one" in message
