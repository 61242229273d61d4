"""``create_otp_client``: checked ids and secrets, documented quotas, SPEC §6 JSON."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_ciam_otp.models import OTPClient, Quota, QuotaPeriod

pytestmark = pytest.mark.django_db

STRONG_SECRET = "3f9a1c0b7e2d4a6f8b1c3e5d7f9a2b4c"  # 32 hex digits, 128 bits


def create(*args: str, **options) -> dict[str, str]:
    out = io.StringIO()
    call_command("create_otp_client", *args, "--json", stdout=out, **options)
    return json.loads(out.getvalue())


def test_json_is_the_contracts_and_the_generated_secret_works():
    data = create("--name", "Mobile app")
    assert set(data) == {"client_id", "client_secret"}
    client = OTPClient.objects.get(client_id=data["client_id"])
    assert client.name == "Mobile app"
    assert client.check_secret(data["client_secret"])
    assert len(data["client_secret"]) >= 43  # 256 bits, URL-safe
    assert not Quota.objects.exists()  # no quota given: none of its own


def test_own_id_and_secret():
    data = create("--name", "Site", "--client-id", "my-site", "--client-secret", STRONG_SECRET)
    assert data == {"client_id": "my-site", "client_secret": STRONG_SECRET}
    assert OTPClient.objects.get(client_id="my-site").check_secret(STRONG_SECRET)


def test_text_output_shows_the_secret_once_with_a_warning():
    out = io.StringIO()
    call_command("create_otp_client", "--name", "x", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("client_id:")
    assert lines[1].startswith("client_secret:")
    assert "cannot be shown again" in lines[2]


@pytest.mark.parametrize(
    ("args", "limits", "period"),
    [
        (["--sms-quota", "100"], {"sms": 100}, QuotaPeriod.NONE),
        (["--email-quota", "0", "--quota-period", "daily"], {"email": 0}, QuotaPeriod.DAILY),
        (
            ["--sms-quota", "5", "--email-quota", "7", "--quota-period", "monthly"],
            {"sms": 5, "email": 7},
            QuotaPeriod.MONTHLY,
        ),
    ],
)
def test_quotas(args, limits, period):
    client_id = create("--name", "q", *args)["client_id"]
    quotas = Quota.objects.filter(client__client_id=client_id)
    assert {q.channel: q.limit for q in quotas} == limits
    assert {q.period for q in quotas} == {period}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--client-id", "bad id:"], "--client-id must be 1 to 64 characters"),
        (["--client-id", "x" * 65], "--client-id must be 1 to 64 characters"),
        (["--client-secret", "short"], "--client-secret must be 32 to 1024 characters"),
        (["--client-secret", "a" * 64], "only 1 different characters"),
        (["--client-secret", ""], "it has 0"),
        (["--sms-quota", "-1"], "--sms-quota must be 0 to"),
        (["--email-quota", "lots"], "--email-quota must be a whole number of messages"),
        (["--quota-period", "daily"], "--quota-period needs --sms-quota or --email-quota"),
        (["--quota-period", "weekly"], "invalid choice"),
    ],
)
def test_bad_values_are_usage_errors_and_create_nothing(args, message):
    with pytest.raises(CommandError, match=message) as caught:
        call_command("create_otp_client", "--name", "x", *args)
    assert caught.value.returncode == 2
    assert not OTPClient.objects.exists()


@pytest.mark.parametrize("name", ["", "   ", "n" * 101])
def test_a_blank_or_long_name_is_a_usage_error(name):
    with pytest.raises(CommandError) as caught:
        call_command("create_otp_client", "--name", name)
    assert caught.value.returncode == 2


def test_keyword_values_are_checked_like_command_line_ones():
    with pytest.raises(CommandError, match="--client-secret") as caught:
        call_command("create_otp_client", name="x", client_secret="short")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="--quota-period must be one of") as caught:
        call_command("create_otp_client", name="x", sms_quota=1, quota_period="weekly")
    assert caught.value.returncode == 2
    assert create(name="x", sms_quota=3)  # ints, as Python callers pass them


def test_a_taken_client_id_is_refused_with_status_1(cli):
    create("--name", "first", "--client-id", "my-site")
    run = cli("create_otp_client", "--name", "second", "--client-id", "my-site", "--json")
    assert run.status == 1
    assert run.stdout == ""
    assert run.stderr_lines == ["Refused: A client with client_id 'my-site' already exists."]
    assert OTPClient.objects.get(client_id="my-site").name == "first"


def test_the_issues_bad_id_and_weak_secret_exit_2_on_one_line(cli):
    run = cli("create_otp_client", "--name", "x", "--client-id", "bad id:")
    assert (run.status, len(run.stderr_lines)) == (2, 1)
    assert run.stderr.startswith("UsageError: --client-id must be")
    run = cli("create_otp_client", "--name", "x", "--client-secret", "short")
    assert (run.status, len(run.stderr_lines)) == (2, 1)
    assert "short" not in run.stderr  # a secret is never echoed
    assert not OTPClient.objects.exists()


def test_manage_py_weak_secret(manage_py_no_db):
    run = manage_py_no_db("create_otp_client", "--name", "x", "--client-secret", "short")
    assert run.status == 2
    assert len(run.stderr_lines) == 1, run.stderr
    assert run.stderr.startswith("UsageError: --client-secret must be")


def test_manage_py_taken_id(manage_py):
    first = manage_py("create_otp_client", "--name", "a", "--client-id", "taken-id", "--json")
    assert first.status == 0, first.stderr
    assert json.loads(first.stdout)["client_id"] == "taken-id"
    # --skip-checks: the example project's own check warnings are not this command's output.
    run = manage_py("create_otp_client", "--name", "b", "--client-id", "taken-id", "--skip-checks")
    assert run.status == 1
    assert run.stderr_lines == ["Refused: A client with client_id 'taken-id' already exists."]
