"""verify_otp (Python) and POST /otp/verify (HTTP): every answer, attempts, replays, lockouts."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth import authenticate, get_user_model
from django.test import RequestFactory

from django_ciam_otp import send_otp, signals, verify_otp
from django_ciam_otp.exceptions import (
    InvalidOTP,
    InvalidOTPToken,
    InvalidRequest,
    OTPExpired,
    TooManyAttempts,
)
from django_ciam_otp.models import OTPToken, RecipientThrottle, TokenStatus

pytestmark = pytest.mark.django_db

PHONE = "13612345678"
E164 = "+8613612345678"


@pytest.fixture
def no_recipient_limits(settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": [], "EMAIL_RATE_LIMITS": []}


@pytest.fixture
def sent(api_client, sms_outbox, django_capture_on_commit_callbacks):
    """Send a signup code by SMS; return (otp_token, code)."""

    def _send(phone=PHONE, usage="signup", client=None):
        with django_capture_on_commit_callbacks(execute=True):
            result = send_otp(client or api_client.client, usage=usage, phone_number=phone)
        return result.otp_token, sms_outbox[-1].code

    return _send


def wrong(code: str) -> str:
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def test_correct_code_verifies_once(api_client, sent):
    token, code = sent()
    result = verify_otp(
        api_client.client, token, code, phone_number="+86 136 1234 5678", usage="signup"
    )
    assert result.as_dict() == {"verified": True, "usage": "signup", "phone_number": E164}
    with pytest.raises(InvalidOTPToken):
        verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")


def test_wrong_code_uses_an_attempt(api_client, sent):
    token, code = sent()
    with pytest.raises(InvalidOTP) as info:
        verify_otp(api_client.client, token, wrong(code), phone_number=PHONE, usage="signup")
    assert info.value.extra["attempts_remaining"] == 4
    assert OTPToken.objects.get().attempts == 1
    # the right code still works afterwards
    verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")


def test_max_attempts_kill_the_token(api_client, sent):
    token, code = sent()
    for _ in range(5):
        with pytest.raises(InvalidOTP):
            verify_otp(api_client.client, token, wrong(code), phone_number=PHONE, usage="signup")
    with pytest.raises(TooManyAttempts):
        verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")
    assert OTPToken.objects.get().status == TokenStatus.LOCKED


def test_max_attempts_setting(api_client, sent, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "MAX_VERIFY_ATTEMPTS": 2}
    token, code = sent()
    for _ in range(2):
        with pytest.raises(InvalidOTP):
            verify_otp(api_client.client, token, wrong(code), phone_number=PHONE, usage="signup")
    with pytest.raises(TooManyAttempts):
        verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")


@pytest.mark.parametrize(
    "change",
    [
        {"phone_number": "13900001111"},
        {"usage": "update_userinfo"},
        {"usage": "login"},
    ],
)
def test_token_is_bound_to_recipient_and_usage(api_client, sent, change):
    token, code = sent()
    kwargs = {"phone_number": PHONE, "usage": "signup", **change}
    with pytest.raises(InvalidOTPToken):
        verify_otp(api_client.client, token, code, **kwargs)


def test_token_is_bound_to_client(api_client, client_factory, sent):
    token, code = sent()
    other = client_factory()
    with pytest.raises(InvalidOTPToken):
        verify_otp(other.client, token, code, phone_number=PHONE, usage="signup")


def test_token_bound_to_channel(api_client, sent):
    token, code = sent()
    with pytest.raises(InvalidOTPToken):
        verify_otp(api_client.client, token, code, email="a@example.com", usage="signup")


def test_unknown_token(api_client, sent):
    sent()
    with pytest.raises(InvalidOTPToken):
        verify_otp(api_client.client, "x" * 43, "123456", phone_number=PHONE, usage="signup")


def test_code_expires_before_token(api_client, sent):
    token, code = sent()
    with time_machine.travel(dt.timedelta(seconds=61)):
        with pytest.raises(OTPExpired):
            verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")


def test_token_expires_after_five_minutes(api_client, sent):
    token, code = sent()
    with time_machine.travel(dt.timedelta(seconds=301)):
        with pytest.raises(InvalidOTPToken):
            verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")


def test_superseded_token_is_unusable(api_client, sent, no_recipient_limits):
    first, first_code = sent()
    second, second_code = sent()
    with pytest.raises(InvalidOTPToken):
        verify_otp(api_client.client, first, first_code, phone_number=PHONE, usage="signup")
    verify_otp(api_client.client, second, second_code, phone_number=PHONE, usage="signup")


def test_recipient_failures_are_capped_across_resends(
    api_client, sent, settings, no_recipient_limits
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "MAX_RECIPIENT_FAILURES": 7}
    failures = 0
    while failures < 7:
        token, code = sent()
        for _ in range(3):
            if failures == 7:
                break
            with pytest.raises(InvalidOTP):
                verify_otp(
                    api_client.client, token, wrong(code), phone_number=PHONE, usage="signup"
                )
            failures += 1
    token, code = sent()
    with pytest.raises(TooManyAttempts):
        verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")
    # the lockout ends
    with time_machine.travel(dt.timedelta(hours=1, seconds=1)):
        token, code = sent()
        verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")


def test_success_resets_recipient_failures(api_client, sent):
    token, code = sent()
    with pytest.raises(InvalidOTP):
        verify_otp(api_client.client, token, wrong(code), phone_number=PHONE, usage="signup")
    assert RecipientThrottle.objects.get().failures == 1
    verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")
    assert RecipientThrottle.objects.get().failures == 0


@pytest.mark.parametrize(
    "otp_token,otp", [(None, "1"), ("t", None), (1, "1"), ("t", 123456), ("", "1")]
)
def test_bad_types(api_client, otp_token, otp):
    with pytest.raises(InvalidRequest):
        verify_otp(api_client.client, otp_token, otp, phone_number=PHONE)


def test_signals_carry_no_code(api_client, sent):
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    for signal in (signals.otp_verified, signals.otp_verification_failed):
        signal.connect(receiver, weak=False)
    try:
        token, code = sent()
        with pytest.raises(InvalidOTP):
            verify_otp(api_client.client, token, wrong(code), phone_number=PHONE, usage="signup")
        verify_otp(api_client.client, token, code, phone_number=PHONE, usage="signup")
    finally:
        for signal in (signals.otp_verified, signals.otp_verification_failed):
            signal.disconnect(receiver)
    assert [k.get("error") for k in seen] == ["invalid_otp", None]
    text = repr(seen)
    assert code not in text and E164 not in text and PHONE not in text
    assert seen[1]["recipient_masked"] == "+86136****5678"


# --- HTTP ---------------------------------------------------------------------------------


def test_http_verify(api, api_client, sms_outbox):
    token = api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).json()[
        "otp_token"
    ]
    code = sms_outbox[-1].code
    response = api.verify(
        {"otp_token": token, "otp": wrong(code), "phone_number": PHONE, "usage": "signup"},
        auth=api_client,
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_otp",
        "error_description": "The verification code is wrong.",
        "attempts_remaining": 4,
    }
    response = api.verify(
        {"otp_token": token, "otp": code, "phone_number": PHONE, "usage": "signup"}, auth=api_client
    )
    assert response.status_code == 200
    assert response.json() == {"verified": True, "usage": "signup", "phone_number": E164}
    assert response["Cache-Control"] == "no-store"
    replay = api.verify(
        {"otp_token": token, "otp": code, "phone_number": PHONE, "usage": "signup"}, auth=api_client
    )
    assert replay.json()["error"] == "invalid_otp_token"


def test_http_verify_needs_client_auth(api, api_client):
    response = api.verify({"otp_token": "t", "otp": "1", "phone_number": PHONE}, auth=None)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_http_verify_bad_body(api, api_client):
    for body in ([], {"otp": "1", "phone_number": PHONE}, {"otp_token": "t", "otp": "1"}):
        response = api.verify(body, auth=api_client)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


def test_http_verify_other_clients_token(api, api_client, client_factory, sms_outbox):
    token = api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).json()[
        "otp_token"
    ]
    response = api.verify(
        {"otp_token": token, "otp": sms_outbox[-1].code, "phone_number": PHONE, "usage": "signup"},
        auth=client_factory(),
    )
    assert response.json()["error"] == "invalid_otp_token"


# --- authentication backend ---------------------------------------------------------------


@pytest.fixture
def site_client(api_client, settings, sms_source):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SITE_CLIENT_ID": api_client.client.client_id,
        "USER_LOOKUP": None,
        "USER_PHONE_FIELD": "first_name",  # the test user model has no phone field
    }
    return api_client


def _login_code(api_client, sms_source, sms_outbox, capture, phone=PHONE):
    with capture(execute=True):
        result = send_otp(
            api_client.client, usage="login", phone_number=phone, auth_source_id=sms_source.id
        )
    return result.otp_token, sms_outbox[-1].code


def test_authenticate_logs_in_by_code(
    site_client, sms_source, sms_outbox, django_capture_on_commit_callbacks
):
    user = get_user_model().objects.create(username="alice", first_name=E164)
    token, code = _login_code(
        site_client, sms_source, sms_outbox, django_capture_on_commit_callbacks
    )
    request = RequestFactory().post("/")
    assert authenticate(request, otp_token=token, otp=wrong(code), phone_number=PHONE) is None
    assert request.ciam_otp_error.code == "invalid_otp"
    assert authenticate(request, otp_token=token, otp=code, phone_number=PHONE) == user


def test_authenticate_unknown_user_without_auto_signup(
    site_client, sms_source, sms_outbox, django_capture_on_commit_callbacks
):
    token, code = _login_code(
        site_client, sms_source, sms_outbox, django_capture_on_commit_callbacks
    )
    assert authenticate(None, otp_token=token, otp=code, phone_number=PHONE) is None
    assert not get_user_model().objects.exists()


def test_authenticate_auto_signup(
    site_client, settings, sms_source, sms_outbox, django_capture_on_commit_callbacks
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "AUTO_SIGNUP": True}
    token, code = _login_code(
        site_client, sms_source, sms_outbox, django_capture_on_commit_callbacks
    )
    user = authenticate(None, otp_token=token, otp=code, phone_number=PHONE)
    assert user is not None and user.username == E164 and not user.has_usable_password()


def test_authenticate_ignores_password_logins(site_client):
    assert authenticate(None, username="a", password="b") is None


def test_authenticate_inactive_user(
    site_client, sms_source, sms_outbox, django_capture_on_commit_callbacks
):
    get_user_model().objects.create(username="bob", first_name=E164, is_active=False)
    token, code = _login_code(
        site_client, sms_source, sms_outbox, django_capture_on_commit_callbacks
    )
    assert authenticate(None, otp_token=token, otp=code, phone_number=PHONE) is None
