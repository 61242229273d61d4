"""The production stack end to end: gunicorn, PostgreSQL, Redis, a Celery worker."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.servers import PYTHON, REPO, manage, wait_until

from .conftest import OTPClient, delivered, e164, new_phone, post, send_sms

pytestmark = pytest.mark.integration

SEED_CLIENT = OTPClient("TENANT_CLIENT_ID", "TENANT_CLIENT_SECRET")


def test_seed_request_is_delivered_by_the_worker_and_verifies(shared_stack, db):
    """The seed's own sample request, answered by gunicorn, delivered by the worker."""
    phone = new_phone()
    sent = send_sms(shared_stack.web.url, SEED_CLIENT, phone)
    assert sent.status == 200, sent.body
    assert sent.headers["Cache-Control"] == "no-store"
    token = sent.body["otp_token"]

    wait_until(lambda: delivered(shared_stack.sms_dir, {e164(phone)}), 15, what="the SMS file")
    (message,) = delivered(shared_stack.sms_dir, {e164(phone)})
    row = db.tokens("TENANT_CLIENT_ID")[-1]
    assert row["delivery_status"] == "sent"
    assert row["provider_message_id"] == message.path.name

    body = {"otp_token": token, "otp": message.code, "phone_number": phone, "usage": "login"}
    # Verified on the other web server: nothing is kept in a process.
    verified = post(shared_stack.webs[1].url, "/otp/verify", body, SEED_CLIENT)
    assert verified.status == 200, verified.body
    assert verified.body == {"verified": True, "usage": "login", "phone_number": e164(phone)}
    again = post(shared_stack.web.url, "/otp/verify", body, SEED_CLIENT)
    assert again.status == 400 and again.error == "invalid_otp_token"


def test_production_stack_passes_its_system_checks(shared_stack):
    """``manage.py check`` is clean on PostgreSQL + Redis + a broker, DEBUG off."""
    output = manage(shared_stack.env, "check", "--fail-level", "WARNING")
    assert "no issues" in output


def test_demo_defaults_with_debug_off_are_flagged(shared_stack):
    """The embedded demo's settings: ``check --deploy`` names every production danger."""
    env = {
        key: value
        for key, value in shared_stack.env.items()
        if key not in ("REDIS_URL", "CELERY_BROKER_URL", "OTP_SMS_BACKEND", "OTP_SMS_FILE_PATH")
    }
    env.update(DJANGO_SETTINGS_MODULE="example_project.settings", DJANGO_DEBUG="false")
    result = subprocess.run(
        [PYTHON, str(REPO / "manage.py"), "check", "--deploy"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    for warning in ("W010", "W011", "W012", "W013"):
        assert f"ciam_otp.{warning}" in output, output
