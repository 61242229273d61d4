"""The example project's pages for end users, through Django's test client (no browser).

Sign up, code login, password login, reset and change of email / phone: the
words each contract error becomes, the resend wait, no account enumeration on
reset, the otp_token kept out of the page, CSRF, and the Chinese translation.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone, translation

from django_ciam_otp import exceptions
from django_ciam_otp.backends.sms import locmem
from django_ciam_otp.models import OTPToken
from example_project.demo import errors
from example_project.demo.models import Profile

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
PHONE = "+8613612345678"


@pytest.fixture
def demo(settings: Any) -> None:
    """The example project's URLs and OTP settings, and its demo data."""
    settings.ROOT_URLCONF = "example_project.urls"
    settings.LOGIN_URL = "demo:login"
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SITE_CLIENT_ID": "DEMO_SITE_CLIENT",
        "USER_LOOKUP": "example_project.demo.users.find_user",
        "USER_ADDRESS": "example_project.demo.users.address_of",
    }
    call_command("load_demo_data", stdout=io.StringIO())


class Pages:
    """A browser-less visitor: posts run their on-commit callbacks (the code is delivered)."""

    def __init__(self, client: Client, capture: Any) -> None:
        self.client = client
        self.capture = capture

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, str], **kwargs: Any) -> Any:
        with self.capture(execute=True):
            return self.client.post(url, data, **kwargs)


@pytest.fixture
def pages(demo: None, client: Client, django_capture_on_commit_callbacks: Any) -> Pages:
    return Pages(client, django_capture_on_commit_callbacks)


def error_texts(response: Any) -> list[str]:
    text = response.content.decode()
    found = re.findall(r'<p class="error[^"]*"[^>]*>(.*?)</p>', text, re.S)
    return [html.unescape(e).strip() for e in found]


def last_email_code() -> str:
    match = re.search(r"^\s+(\d{4,10})\s*$", mail.outbox[-1].body, re.M)
    assert match, mail.outbox[-1].body
    return match.group(1)


def last_sms_code() -> str:
    return locmem.outbox[-1].code


def wrong(code: str) -> str:
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def make_user(email: str = "alice@example.com", phone: str | None = None) -> Any:
    user = get_user_model().objects.create_user(email, email=email, password=PASSWORD)
    if phone:
        Profile.objects.create(user=user, phone_number=phone)
    return user


def logged_in_user_id(client: Client) -> Any:
    return client.session.get("_auth_user_id")


# --- pages and plumbing --------------------------------------------------------------


def test_public_pages_render(pages: Pages) -> None:
    for url in ["/", "/signup/", "/login/", "/login/code/", "/password/reset/"]:
        response = pages.get(url)
        assert response.status_code == 200, url
        assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_account_pages_need_a_login(pages: Pages) -> None:
    for url in ["/account/", "/account/email/", "/account/phone/", "/account/email/code/"]:
        response = pages.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=/account/")


def test_code_and_password_steps_need_the_step_before(pages: Pages) -> None:
    assert pages.get("/signup/code/")["Location"] == "/signup/"
    assert pages.get("/signup/password/")["Location"] == "/signup/"
    assert pages.get("/login/code/verify/")["Location"] == "/login/code/"
    assert pages.get("/password/reset/code/")["Location"] == "/password/reset/"
    assert pages.get("/password/reset/new/")["Location"] == "/password/reset/"


def test_forms_are_csrf_protected(demo: None) -> None:
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/signup/", {"recipient": "a@example.com"}).status_code == 403
    assert strict.post("/login/", {"login": "a@example.com", "password": "x"}).status_code == 403
    assert mail.outbox == []


def test_site_client_missing_is_explained(pages: Pages, settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SITE_CLIENT_ID": "NO_SUCH_CLIENT"}
    response = pages.post("/signup/", {"recipient": "a@example.com"})
    assert error_texts(response) == [str(errors.SITE_NOT_READY)]


def test_every_contract_error_has_a_sentence() -> None:
    def subclasses(cls: type) -> list[type]:
        return [cls, *[s for sub in cls.__subclasses__() for s in subclasses(sub)]]

    codes = {cls.code for cls in subclasses(exceptions.OTPError)}
    rate_limited = {cls.code for cls in subclasses(exceptions.RateLimited)}
    missing = codes - set(errors.MESSAGES) - rate_limited - {"invalid_otp"}
    assert missing == set()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (exceptions.InvalidOTP(attempts_remaining=1), "You can try 1 more time."),
        (exceptions.InvalidOTP(attempts_remaining=0), "Please ask for a new code."),
        (exceptions.SMSRateLimitExceeded(27), "Please wait 27 seconds"),
        (exceptions.EmailRateLimitExceeded(600), "Please wait 10 minutes"),
        (exceptions.RateLimitExceeded(7200), "try again in 2 hours"),
        (exceptions.DeliveryFailed(), "could not deliver"),
        (exceptions.OTPExpired(), "has expired"),
    ],
)
def test_error_sentences(error: exceptions.OTPError, expected: str) -> None:
    with translation.override("en"):
        assert expected in errors.describe(error)


# --- sign up -------------------------------------------------------------------------


def test_signup_by_email(pages: Pages) -> None:
    response = pages.post("/signup/", {"recipient": "  Alice@Example.COM "})
    assert response["Location"] == "/signup/code/"
    page = pages.get("/signup/code/").content.decode()
    assert "a***@example.com" in page
    token = pages.client.session["demo_otp"]["signup"]["otp_token"]
    assert token not in page  # the otp_token stays on the server

    response = pages.post("/signup/code/", {"code": last_email_code()})
    assert response["Location"] == "/signup/password/"
    assert "alice@example.com" in pages.get("/signup/password/").content.decode()
    response = pages.post(
        "/signup/password/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert response["Location"] == "/account/"

    user = get_user_model().objects.get()
    assert (user.username, user.email) == ("alice@example.com", "alice@example.com")
    assert user.check_password(PASSWORD)
    assert logged_in_user_id(pages.client) == str(user.pk)
    account = pages.get("/account/").content.decode()
    assert "alice@example.com" in account and "Welcome! Your account is ready." in account
    # the verified step is used up
    assert pages.get("/signup/password/")["Location"] == "/signup/"


def test_signup_by_phone_creates_a_profile(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "136 1234 5678"})
    pages.post("/signup/code/", {"code": last_sms_code()})
    pages.post("/signup/password/", {"new_password1": PASSWORD, "new_password2": PASSWORD})
    profile = Profile.objects.get()
    assert profile.phone_number == PHONE
    assert profile.user.username == PHONE and profile.user.email == ""


def test_signup_password_is_validated(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    pages.post("/signup/code/", {"code": last_email_code()})
    response = pages.post("/signup/password/", {"new_password1": "a", "new_password2": "b"})
    assert error_texts(response) == ["The two password fields didn’t match."]
    assert not get_user_model().objects.exists()


def test_signup_with_a_used_email_or_phone(pages: Pages) -> None:
    make_user("alice@example.com", phone=PHONE)
    response = pages.post("/signup/", {"recipient": "ALICE@example.com"})
    assert error_texts(response) == ["This email address already belongs to an account."]
    response = pages.post("/signup/", {"recipient": "+86 136 1234 5678"})
    assert error_texts(response) == ["This mobile number already belongs to an account."]
    assert mail.outbox == [] and locmem.outbox == []


def test_signup_taken_while_choosing_a_password(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    pages.post("/signup/code/", {"code": last_email_code()})
    make_user("alice@example.com")
    response = pages.post(
        "/signup/password/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert error_texts(response) == ["This email address already belongs to an account."]
    assert get_user_model().objects.count() == 1


@pytest.mark.parametrize(
    ("recipient", "message"),
    [
        ("136", "Enter a mainland China mobile number, for example 136 1234 5678."),
        ("+1 202 555 0100", "Enter a mainland China mobile number, for example 136 1234 5678."),
        ("alice@", "Enter a valid email address, for example name@example.com."),
        ("", "This field is required."),
    ],
)
def test_malformed_recipients(pages: Pages, recipient: str, message: str) -> None:
    response = pages.post("/signup/", {"recipient": recipient})
    assert response.status_code == 200
    assert error_texts(response) == [message]


def test_denied_email_domain(pages: Pages, settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_DOMAIN_DENYLIST": ["mailinator.com"]}
    response = pages.post("/signup/", {"recipient": "bob@mailinator.com"})
    assert error_texts(response) == [
        "We cannot send email to this address. Please use another one."
    ]


# --- entering codes ---------------------------------------------------------------------


def test_wrong_codes_then_too_many(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    code = last_email_code()
    for left in (4, 3, 2, 1):
        response = pages.post("/signup/code/", {"code": wrong(code)})
        times = "time" if left == 1 else "times"
        assert error_texts(response) == [
            f"That code is not right. You can try {left} more {times}."
        ]
    response = pages.post("/signup/code/", {"code": wrong(code)})
    assert error_texts(response) == ["That code is not right. Please ask for a new code."]
    response = pages.post("/signup/code/", {"code": code})
    assert error_texts(response) == [
        "Too many wrong codes. Please ask for a new code, or try again later."
    ]


def test_expired_code(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    code = last_email_code()
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=61), tick=False):
        response = pages.post("/signup/code/", {"code": code})
    assert error_texts(response) == ["This code has expired. Please ask for a new code."]


def test_dead_token(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    OTPToken.objects.update(expires_at=timezone.now())
    response = pages.post("/signup/code/", {"code": last_email_code()})
    assert error_texts(response) == ["This code can no longer be used. Please ask for a new code."]


def test_an_empty_code_costs_no_attempt(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    response = pages.post("/signup/code/", {"code": "  "})
    assert error_texts(response) == ["This field is required."]
    assert OTPToken.objects.get().attempts == 0


def test_a_posted_otp_token_is_ignored(pages: Pages) -> None:
    """The page verifies the token it keeps in the session, whatever the form says."""
    pages.post("/signup/", {"recipient": "alice@example.com"})
    code = last_email_code()
    response = pages.post("/signup/code/", {"code": code, "otp_token": "forged"})
    assert response["Location"] == "/signup/password/"


# --- resend and its wait -------------------------------------------------------------------


def resend_wait(page: str) -> int:
    match = re.search(r'id="resend"\s+data-wait="(\d+)"', page)
    assert match, page
    return int(match.group(1))


def test_resend_shows_the_wait_and_refuses_early(pages: Pages) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        pages.post("/signup/", {"recipient": "alice@example.com"})
        page = pages.get("/signup/code/").content.decode()
        wait = resend_wait(page)
        assert 0 < wait <= 30
        assert f"you can ask again in {wait} s" in page
        assert 'data-waiting-label="Send a new code in {seconds} s"' in page

        response = pages.post("/signup/code/", {"resend": "1"})
        assert response.status_code == 200
        assert error_texts(response) == [
            f"Please wait {errors.wait_text(wait)} before asking for another code for this address."
        ]
        assert resend_wait(response.content.decode()) == wait
    assert len(mail.outbox) == 1
    old_code = last_email_code()

    # django-ratelimit's window still counts at its last second, so one more than the wait
    with time_machine.travel(start + dt.timedelta(seconds=wait + 1), tick=False):
        assert resend_wait(pages.get("/signup/code/").content.decode()) == 0
        response = pages.post("/signup/code/", {"resend": "1"})
        assert response["Location"] == "/signup/code/"
        page = pages.get("/signup/code/").content.decode()
        assert "We sent a new code to a***@example.com." in page
        assert len(mail.outbox) == 2
        new_code = last_email_code()
        if new_code != old_code:
            response = pages.post("/signup/code/", {"code": old_code})
            assert error_texts(response)[0].startswith("That code is not right.")
        response = pages.post("/signup/code/", {"code": new_code})
        assert response["Location"] == "/signup/password/"


def test_early_resend_keeps_the_first_code(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    pages.post("/signup/code/", {"resend": "1"})
    response = pages.post("/signup/code/", {"code": last_email_code()})
    assert response["Location"] == "/signup/password/"


# --- reset: no account enumeration -------------------------------------------------------


def comparable(response: Any) -> str:
    """The page without its CSRF token and resend wait.

    The wait depends on the address (django-ratelimit staggers each key's
    window), not on whether an account uses it.
    """
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    text = re.sub(r'data-wait="\d+"', "", text)
    return re.sub(r"\b\d+ (s|seconds)\b", "", text)


def reset_journey(pages: Pages, recipient: str) -> list[Any]:
    """What someone sees asking for a reset code and typing a wrong one."""
    first = pages.post("/password/reset/", {"recipient": recipient})
    shown = pages.get("/password/reset/code/")
    wrong_code = pages.post("/password/reset/code/", {"code": "000000"})
    early_resend = pages.post("/password/reset/code/", {"resend": "1"})
    return [first, shown, wrong_code, early_resend]


def test_reset_pages_are_the_same_for_unknown_addresses(pages: Pages, settings: Any) -> None:
    make_user("alice@example.com")
    start = timezone.now().replace(second=1)
    with time_machine.travel(start, tick=False):
        known = reset_journey(pages, "alice@example.com")
    pages.client.cookies.clear()
    with time_machine.travel(start, tick=False):
        unknown = reset_journey(pages, "anna@example.com")  # no such account; same mask a***

    for a, b in zip(known, unknown, strict=True):
        assert a.status_code == b.status_code
        assert a.get("Location") == b.get("Location")
        assert comparable(a) == comparable(b)
    assert "a***@example.com" in known[1].content.decode()
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]  # nothing sent to anna


def test_reset_password(pages: Pages) -> None:
    user = make_user("alice@example.com")
    pages.post("/password/reset/", {"recipient": "Alice@example.com"})
    response = pages.post("/password/reset/code/", {"code": last_email_code()})
    assert response["Location"] == "/password/reset/new/"
    new = "a-brand-new-passphrase"
    response = pages.post("/password/reset/new/", {"new_password1": new, "new_password2": new})
    assert response["Location"] == "/login/"
    assert "Log in with your new password." in pages.get("/login/").content.decode()
    user.refresh_from_db()
    assert user.check_password(new)
    assert logged_in_user_id(pages.client) is None

    response = pages.post("/login/", {"login": "alice@example.com", "password": PASSWORD})
    assert error_texts(response) == ["Wrong email address, mobile number or password."]
    response = pages.post("/login/", {"login": "ALICE@example.com", "password": new})
    assert response["Location"] == "/account/"


# --- logging in -------------------------------------------------------------------------------


def test_password_login_by_phone_number_and_next(pages: Pages) -> None:
    user = make_user("alice@example.com", phone=PHONE)
    response = pages.post(
        "/login/?next=/account/phone/", {"login": "13612345678", "password": PASSWORD}
    )
    assert response["Location"] == "/account/phone/"
    assert logged_in_user_id(pages.client) == str(user.pk)


def test_password_login_refuses_alike(pages: Pages) -> None:
    make_user("alice@example.com")
    answers = [
        pages.post("/login/", {"login": login, "password": password})
        for login, password in [
            ("alice@example.com", "wrong"),
            ("nobody@example.com", PASSWORD),
            ("not an address", PASSWORD),
        ]
    ]
    for response in answers:
        assert error_texts(response) == ["Wrong email address, mobile number or password."]


def test_password_login_ignores_outside_next(pages: Pages) -> None:
    make_user("alice@example.com")
    response = pages.post(
        "/login/?next=https://evil.example/", {"login": "alice@example.com", "password": PASSWORD}
    )
    assert response["Location"] == "/account/"


def test_login_by_sms_code(pages: Pages) -> None:
    user = make_user("alice@example.com", phone=PHONE)
    response = pages.post("/login/code/", {"recipient": "13612345678"})
    assert response["Location"] == "/login/code/verify/"
    assert OTPToken.objects.get().auth_source_id == "MOCK_SMS_OTP_AUTH_SOURCE_ID"
    response = pages.post("/login/code/verify/", {"code": wrong(last_sms_code())})
    assert error_texts(response) == ["That code is not right. You can try 4 more times."]
    response = pages.post("/login/code/verify/", {"code": last_sms_code()})
    assert response["Location"] == "/account/"
    assert logged_in_user_id(pages.client) == str(user.pk)


def test_login_by_email_code_keeps_next(pages: Pages) -> None:
    make_user("alice@example.com")
    pages.post("/login/code/?next=/account/email/", {"recipient": "alice@example.com"})
    assert OTPToken.objects.get().auth_source_id == "MOCK_EMAIL_OTP_AUTH_SOURCE_ID"
    response = pages.post("/login/code/verify/", {"code": last_email_code()})
    assert response["Location"] == "/account/email/"


def test_login_code_for_an_unknown_number(pages: Pages) -> None:
    pages.post("/login/code/", {"recipient": "13612345678"})
    response = pages.post("/login/code/verify/", {"code": last_sms_code()})
    assert error_texts(response) == [
        "The code is right, but no account uses this mobile number. Sign up first."
    ]
    assert logged_in_user_id(pages.client) is None


def test_login_code_without_auth_source(pages: Pages) -> None:
    from django_ciam_otp.models import AuthSource

    AuthSource.objects.update(enabled=False)
    response = pages.post("/login/code/", {"recipient": "13612345678"})
    assert error_texts(response) == ["Logging in with a code is not set up on this site yet."]


def test_logout_is_a_post(pages: Pages) -> None:
    make_user("alice@example.com")
    pages.post("/login/", {"login": "alice@example.com", "password": PASSWORD})
    assert pages.get("/logout/").status_code == 405
    assert pages.post("/logout/", {})["Location"] == "/"
    assert logged_in_user_id(pages.client) is None


# --- changing email or phone (update_userinfo) -------------------------------------------


@pytest.fixture
def alice(pages: Pages) -> Any:
    user = make_user("alice@example.com")
    pages.client.force_login(user)
    return user


def test_add_a_phone_number(pages: Pages, alice: Any) -> None:
    response = pages.post("/account/phone/", {"recipient": "136-1234-5678"})
    assert response["Location"] == "/account/phone/code/"
    assert OTPToken.objects.get().usage == "update_userinfo"
    response = pages.post("/account/phone/code/", {"code": last_sms_code()})
    assert response["Location"] == "/account/"
    assert Profile.objects.get(user=alice).phone_number == PHONE
    assert f"Your mobile number is now {PHONE}." in pages.get("/account/").content.decode()


def test_change_email(pages: Pages, alice: Any) -> None:
    pages.post("/account/email/", {"recipient": "alice@new.example"})
    pages.post("/account/email/code/", {"code": last_email_code()})
    alice.refresh_from_db()
    assert alice.email == "alice@new.example"


def test_change_to_a_used_or_own_recipient(pages: Pages, alice: Any) -> None:
    make_user("bob@example.com", phone=PHONE)
    response = pages.post("/account/email/", {"recipient": "BOB@example.com"})
    assert error_texts(response) == ["This email address already belongs to an account."]
    response = pages.post("/account/phone/", {"recipient": "13612345678"})
    assert error_texts(response) == ["This mobile number already belongs to an account."]
    response = pages.post("/account/email/", {"recipient": "alice@example.com"})
    assert error_texts(response) == ["This is already your email address."]
    response = pages.post("/account/email/", {"recipient": "13612345678"})
    assert error_texts(response) == ["Enter an email address."]


def test_change_phone_taken_meanwhile(pages: Pages, alice: Any) -> None:
    pages.post("/account/phone/", {"recipient": "13612345678"})
    make_user("bob@example.com", phone=PHONE)
    response = pages.post("/account/phone/code/", {"code": last_sms_code()})
    assert error_texts(response) == ["This mobile number already belongs to an account."]
    assert not Profile.objects.filter(user=alice).exists()


def test_pending_change_belongs_to_its_user(pages: Pages, alice: Any) -> None:
    pages.post("/account/email/", {"recipient": "alice@new.example"})
    session = pages.client.session
    session["demo_otp"]["email"]["user_id"] = alice.pk + 1000
    session.save()
    assert pages.get("/account/email/code/")["Location"] == "/account/email/"


# --- Simplified Chinese ---------------------------------------------------------------------


def test_pages_in_simplified_chinese(pages: Pages) -> None:
    pages.client.cookies["django_language"] = "zh-hans"
    page = pages.get("/signup/").content.decode()
    assert '<html lang="zh-hans">' in page
    assert "创建账号" in page
    response = pages.post("/signup/", {"recipient": "136"})
    assert error_texts(response) == ["请输入中国大陆手机号码，例如 136 1234 5678。"]
    pages.post("/signup/", {"recipient": "alice@example.com"})
    response = pages.post("/signup/code/", {"code": wrong(last_email_code())})
    assert error_texts(response) == ["验证码不正确。您还可以尝试 4 次。"]
    assert "验证码" in mail.outbox[-1].subject  # the code message follows the page's language


def test_language_switcher(pages: Pages) -> None:
    response = pages.post("/i18n/setlang/", {"language": "zh-hans", "next": "/login/"})
    assert response["Location"] == "/login/"
    assert "登录" in pages.get("/login/").content.decode()
