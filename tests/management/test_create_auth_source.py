"""``create_auth_source``: creates; ``--update`` changes only the options given; channels stay."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_ciam_otp.models import AuthSource, Channel

pytestmark = pytest.mark.django_db


def run(*args: str, **options) -> dict:
    out = io.StringIO()
    call_command("create_auth_source", *args, "--json", stdout=out, stderr=io.StringIO(), **options)
    return json.loads(out.getvalue())


def fields(source_id: str) -> tuple:
    source = AuthSource.objects.get(pk=source_id)
    return (source.channel, source.code_length, source.code_validity, source.name, source.enabled)


def test_creates_with_the_documented_defaults():
    assert run("--id", "SMS_LOGIN", "--channel", "sms") == {"id": "SMS_LOGIN", "created": True}
    assert fields("SMS_LOGIN") == ("sms", 6, 60, "", True)


def test_creates_with_the_options_given():
    run("--id", "E", "--channel", "email", "--code-length", "8", "--validity", "300",
        "--name", "Email login", "--disabled")  # fmt: skip
    assert fields("E") == ("email", 8, 300, "Email login", False)


def test_an_identical_rerun_is_a_no_op_for_deploy_scripts():
    args = ("--id", "SMS", "--channel", "sms", "--code-length", "8", "--validity", "120")
    run(*args)
    before = AuthSource.objects.get(pk="SMS").updated_at
    assert run(*args) == {"id": "SMS", "created": False}
    assert AuthSource.objects.get(pk="SMS").updated_at == before
    out = io.StringIO()
    call_command("create_auth_source", *args, stdout=out)
    assert "nothing changed" in out.getvalue()


def test_the_issue_a_rerun_with_another_channel_changes_nothing_and_exits_1(cli):
    run("--id", "SMS", "--channel", "sms", "--code-length", "8", "--validity", "120")
    result = cli("create_auth_source", "--id", "SMS", "--channel", "email", "--json")
    assert result.status == 1
    assert result.stdout == ""
    assert result.stderr_lines == [
        "Refused: Auth source 'SMS' sends by sms; its channel cannot change to email "
        "(tokens already issued are bound to it): create a new auth source with another "
        "--id instead."
    ]
    assert fields("SMS") == ("sms", 8, 120, "", True)


def test_a_different_rerun_without_update_is_refused_naming_the_differences(cli):
    run("--id", "SMS", "--channel", "sms", "--code-length", "8", "--validity", "120")
    result = cli("create_auth_source", "--id", "SMS", "--channel", "sms")
    assert result.status == 1
    assert result.stderr_lines == [
        "Refused: Auth source 'SMS' already exists with code length 8, not 6; validity 120, "
        "not 60: add --update to change only the options given."
    ]
    assert fields("SMS") == ("sms", 8, 120, "", True)


def test_update_changes_only_the_options_given():
    run("--id", "SMS", "--channel", "sms", "--code-length", "8", "--validity", "120", "--name", "A")
    assert run("--id", "SMS", "--update", "--validity", "300") == {"id": "SMS", "created": False}
    assert fields("SMS") == ("sms", 8, 300, "A", True)
    run("--id", "SMS", "--update", "--disabled", "--channel", "sms")  # its own channel is fine
    assert fields("SMS") == ("sms", 8, 300, "A", False)
    run("--id", "SMS", "--update", "--enabled", "--name", "")
    assert fields("SMS") == ("sms", 8, 300, "", True)


def test_update_says_what_changed():
    run("--id", "SMS", "--channel", "sms")
    out = io.StringIO()
    call_command("create_auth_source", "--id", "SMS", "--update", "--code-length", "8", stdout=out)
    assert out.getvalue() == "Updated auth source SMS: code length 6 -> 8.\n"


def test_update_refuses_a_channel_change(cli):
    run("--id", "SMS", "--channel", "sms")
    result = cli("create_auth_source", "--id", "SMS", "--update", "--channel", "email",
                 "--validity", "30")  # fmt: skip
    assert result.status == 1
    assert result.stderr.startswith("Refused: Auth source 'SMS' sends by sms;")
    assert fields("SMS") == ("sms", 6, 60, "", True)  # nothing else changed either


def test_update_of_a_new_id_creates_it_and_needs_a_channel(cli):
    result = cli("create_auth_source", "--id", "NEW", "--update", "--validity", "30")
    assert result.status == 2
    assert result.stderr_lines == [
        "UsageError: No auth source has the id 'NEW': creating it needs --channel."
    ]
    assert not AuthSource.objects.exists()
    assert run("--id", "NEW", "--update", "--channel", "email", "--validity", "30") == {
        "id": "NEW",
        "created": True,
    }
    assert fields("NEW") == ("email", 6, 30, "", True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--id", "bad id"], "--id 'bad id': Use letters, digits"),
        (["--id", "x:y"], "--id 'x:y': Use letters, digits"),
        (["--id", "x" * 65], "at most 64 characters"),
        (["--id", ""], "cannot be blank"),
        (["--channel", "fax"], "invalid choice: 'fax'"),
        (["--code-length", "3"], "--code-length must be 4 to 10 digits, got 3."),
        (["--code-length", "11"], "--code-length must be 4 to 10 digits, got 11."),
        (["--code-length", "six"], "--code-length must be a whole number of digits"),
        (["--validity", "9"], "--validity must be 10 to 3600 seconds, got 9."),
        (["--validity", "3601"], "--validity must be 10 to 3600 seconds, got 3601."),
        (["--validity", "-60"], "--validity must be 10 to 3600 seconds, got -60."),
        (["--name", "n" * 101], "at most 100 characters"),
        (["--enabled", "--disabled"], "not allowed with argument"),
    ],
)
def test_bad_values_are_usage_errors_and_write_nothing(args, message):
    defaults = {"--id": "SRC", "--channel": "sms"}
    given = dict(zip(args[::2], args[1::2], strict=False))
    argv = [*args]
    for option, value in defaults.items():
        if option not in given:
            argv += [option, value]
    with pytest.raises(CommandError) as caught:
        call_command("create_auth_source", *argv)
    assert caught.value.returncode == 2
    assert message in str(caught.value)
    assert not AuthSource.objects.exists()


def test_creating_needs_a_channel(cli):
    result = cli("create_auth_source", "--id", "SRC")
    assert result.status == 2
    assert result.stderr_lines == ["UsageError: --channel is required to create an auth source."]


def test_keyword_values_are_checked_like_command_line_ones():
    with pytest.raises(CommandError, match="--channel must be one of sms, email") as caught:
        call_command("create_auth_source", source_id="S", channel="fax")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="--validity must be 10 to 3600") as caught:
        call_command("create_auth_source", source_id="S", channel="sms", validity=5)
    assert caught.value.returncode == 2
    assert run(source_id="S", channel=Channel.SMS, code_length=7) == {"id": "S", "created": True}
    assert fields("S")[:2] == ("sms", 7)


def test_short_codes_are_created_with_a_warning_on_stderr(cli):
    result = cli("create_auth_source", "--id", "S", "--channel", "sms", "--code-length", "4",
                 "--json")  # fmt: skip
    assert result.status == 0
    assert json.loads(result.stdout) == {"id": "S", "created": True}  # stdout stays JSON
    assert "4-digit codes are weak" in result.stderr
    assert "NIST SP 800-63B" in result.stderr


def test_manage_py_channel_change_exits_1_on_one_line(manage_py):
    created = manage_py("create_auth_source", "--id", "MP_SMS", "--channel", "sms", "--json")
    assert created.status == 0, created.stderr
    assert json.loads(created.stdout) == {"id": "MP_SMS", "created": True}
    # --skip-checks: the example project's own check warnings are not this command's output.
    run = manage_py("create_auth_source", "--id", "MP_SMS", "--channel", "email", "--skip-checks")
    assert run.status == 1
    assert len(run.stderr_lines) == 1, run.stderr
    assert run.stderr.startswith("Refused: Auth source 'MP_SMS' sends by sms;")


def test_manage_py_parse_error_is_one_line_not_a_usage_block(manage_py_no_db):
    run = manage_py_no_db("create_auth_source", "--id", "X", "--channel", "fax")
    assert run.status == 2
    assert len(run.stderr_lines) == 1, run.stderr
    assert run.stderr.startswith("UsageError: argument --channel: invalid choice: 'fax'")
    assert run.stderr.endswith("(see manage.py create_auth_source --help)\n")
