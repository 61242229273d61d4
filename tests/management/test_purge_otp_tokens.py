"""``purge_otp_tokens``: deletes expired tokens, prints a count, refuses a negative age."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_ciam_otp import flows
from django_ciam_otp.management.commands.purge_otp_tokens import OLDER_THAN_MAX
from django_ciam_otp.models import OTPToken


def expired_tokens(client, *ages: dt.timedelta) -> list[OTPToken]:
    """One token per age, each expired that long ago."""
    tokens = []
    for n, age in enumerate(ages):
        token = flows.send_otp(client, usage="signup", phone_number=f"1361234567{n}").token
        OTPToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - age)
        tokens.append(token)
    return tokens


@pytest.mark.django_db
def test_deletes_the_expired_tokens_and_prints_how_many(client_factory):
    client = client_factory().client
    expired_tokens(client, dt.timedelta(minutes=1), dt.timedelta(hours=2))
    live = flows.send_otp(client, usage="signup", phone_number="13612345679").token
    out = io.StringIO()
    call_command("purge_otp_tokens", stdout=out)
    assert out.getvalue() == "2\n"
    assert list(OTPToken.objects.values_list("pk", flat=True)) == [live.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("older_than", ["3600", 3600])
def test_older_than_keeps_the_recently_expired(client_factory, older_than):
    recent, old = expired_tokens(
        client_factory().client, dt.timedelta(minutes=10), dt.timedelta(hours=2)
    )
    out = io.StringIO()
    call_command("purge_otp_tokens", older_than=older_than, stdout=out)
    assert out.getvalue().strip() == "1"
    assert list(OTPToken.objects.values_list("pk", flat=True)) == [recent.pk]


@pytest.mark.parametrize("value", ["-1", "-3600", "1.5", "abc", "", "1e3", str(OLDER_THAN_MAX + 1)])
def test_a_negative_fractional_or_huge_age_is_a_usage_error(cli, value):
    run = cli("purge_otp_tokens", f"--older-than={value}")
    assert run.status == 2
    assert run.stdout == ""
    assert len(run.stderr_lines) == 1
    assert run.stderr.startswith("UsageError: --older-than must be")


@pytest.mark.parametrize("value", [-1, "-1"])
def test_call_command_refuses_a_negative_age_too(value):
    with pytest.raises(CommandError, match="--older-than must be 0 to") as caught:
        call_command("purge_otp_tokens", older_than=value)
    assert caught.value.returncode == 2


def test_manage_py_exits_2_with_one_line_and_no_traceback(manage_py_no_db):
    run = manage_py_no_db("purge_otp_tokens", "--older-than", "-1")
    assert run.status == 2, run.stderr
    assert run.stderr_lines == ["UsageError: --older-than must be 0 to 3153600000 seconds, got -1."]
    assert run.stdout == ""
