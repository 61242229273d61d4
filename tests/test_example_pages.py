"""The example project's pages for end users, through Django's test client (no browser).

Sign up, code login, password login, reset and change of email / phone: the
words each contract error becomes, the resend wait, no account enumeration on
reset, the otp_token kept out of the page, CSRF, and the Chinese translation;
post/redirect/get after every submit, ``no-store`` pages, the code box's
forgiving input, a used-up code, and second submits that continue the flow
(the concurrent ones are in ``test_example_double_submit.py``).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone, translation

from django_ciam_otp import exceptions
from django_ciam_otp.backends.sms import locmem
from django_ciam_otp.models import OTPToken
from example_project.demo import errors
from example_project.demo.models import Profile
from tests.conftest import use_example_project

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
PHONE = "+8613612345678"


@pytest.fixture
def demo(settings: Any) -> None:
    """The example project's URLs and OTP settings, and its demo data."""
    use_example_project(settings)


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

    def submit(self, url: str, data: dict[str, str], **kwargs: Any) -> Any:
        """POST, then GET where the answer redirects (every POST is answered with a redirect)."""
        response = self.post(url, data, **kwargs)
        assert response.status_code == 302, response.status_code
        return self.client.get(response["Location"])


@pytest.fixture
def pages(demo: None, client: Client, django_capture_on_commit_callbacks: Any) -> Pages:
    return Pages(client, django_capture_on_commit_callbacks)


def error_texts(response: Any) -> list[str]:
    text = response.content.decode()
    found = re.findall(r'<p class="error[^"]*"[^>]*>(.*?)</p>', text, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", e)).strip() for e in found]


def last_email_code() -> str:
    match = re.search(r"^\s+(\d{4,10})\s*$", mail.outbox[-1].body, re.M)
    assert match, mail.outbox[-1].body
    return match.group(1)


def last_sms_code() -> str:
    return locmem.outbox[-1].code


def wrong(code: str, n: int = 1) -> str:
    """The ``n``-th wrong code after ``code`` (each a different one)."""
    return str((int(code) + n) % 10 ** len(code)).zfill(len(code))


def make_user(email: str = "alice@example.com", phone: str | None = None) -> Any:
    user = get_user_model().objects.create_user(email, email=email, password=PASSWORD)
    if phone:
        Profile.objects.create(user=user, phone_number=phone)
    return user


def logged_in_user_id(client: Client) -> Any:
    return client.session.get("_auth_user_id")


# --- pages and plumbing --------------------------------------------------------------

PUBLIC_PAGES = ["/", "/signup/", "/login/", "/login/code/", "/password/reset/"]


def test_public_pages_render(pages: Pages) -> None:
    for url in PUBLIC_PAGES:
        response = pages.get(url)
        assert response.status_code == 200, url
        assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_no_page_is_stored_by_the_browser(pages: Pages) -> None:
    """Back after logging out or in shows nothing from the server's earlier answers."""
    user = make_user("alice@example.com", phone=PHONE)
    pages.client.force_login(user)
    pages.post("/account/email/", {"recipient": "alice@new.example"})
    urls = [
        *PUBLIC_PAGES,
        "/account/",
        "/account/email/",
        "/account/phone/",
        "/account/email/code/",
    ]
    for url in urls:
        response = pages.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
        assert "private" in response["Cache-Control"], url


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


def test_a_failed_submit_is_redirected_and_shown_once(pages: Pages) -> None:
    """Post/redirect/get for failures too: Back and Reload never send the form again."""
    response = pages.post("/signup/", {"recipient": "136"})
    assert response.status_code == 302 and response["Location"] == "/signup/"
    page = pages.get("/signup/")
    assert error_texts(page) == ["Enter a mainland China mobile number, for example 136 1234 5678."]
    assert 'value="136"' in page.content.decode()  # what was typed is kept
    assert "<title>Error: Create an account" in page.content.decode()
    again = pages.get("/signup/")
    assert error_texts(again) == []
    assert "<title>Create an account ·" in again.content.decode()


def test_a_failed_login_keeps_the_login_not_the_password(pages: Pages) -> None:
    make_user("alice@example.com")
    page = pages.submit("/login/?next=/account/", {"login": "alice@example.com", "password": "x"})
    text = page.content.decode()
    assert error_texts(page) == ["Wrong email address, mobile number or password."]
    assert 'value="alice@example.com"' in text and 'value="x"' not in text
    assert 'name="next" value="/account/"' in text
    # errors of the whole form take the focus (a screen reader reads them first)
    assert re.search(r'<div class="banner" id="form-errors" tabindex="-1" autofocus>', text)
    assert not re.search(r"<input[^>]*autofocus", text)


def described_by(page: str) -> dict[str, list[str]]:
    """``{input id: [ids its aria-describedby names]}``."""
    found = {}
    for tag in re.findall(r"<input[^>]*>", page):
        input_id = re.search(r'\bid="([^"]+)"', tag)
        ids = re.search(r'aria-describedby="([^"]+)"', tag)
        if input_id and ids:
            found[input_id.group(1)] = ids.group(1).split()
    return found


def test_errors_and_help_have_the_ids_their_fields_name(pages: Pages, settings: Any) -> None:
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}
    ]
    pages.post("/signup/", {"recipient": "alice@example.com"})
    shown = [pages.submit("/signup/code/", {"code": "12"})]
    pages.post("/signup/code/", {"code": last_email_code()})
    shown.append(pages.submit("/signup/password/", {"new_password1": "a", "new_password2": "a"}))
    shown.append(pages.submit("/signup/", {"recipient": "nobody@"}))
    for response in shown:
        page = response.content.decode()
        pointers = described_by(page)
        assert pointers, page
        for input_id, ids in pointers.items():
            for target in ids:
                assert page.count(f'id="{target}"') == 1, (input_id, target)
        assert 'aria-invalid="true"' in page
        assert 'role="alert"' not in page  # announced by focus, not by an alert at load
    code_page = shown[0].content.decode()
    assert described_by(code_page)["id_code"] == ["id_code_helptext", "id_code_error"]
    assert re.search(r"<input[^>]*autofocus[^>]*id=\"id_code\"", code_page)


def test_the_phone_box_is_a_tel_input(pages: Pages) -> None:
    pages.client.force_login(make_user("alice@example.com"))
    phone = pages.get("/account/phone/").content.decode()
    [tag] = re.findall(r"<input[^>]*id_recipient[^>]*>", phone)
    assert re.findall(r'\btype="([^"]+)"', tag) == ["tel"]
    email = pages.get("/account/email/").content.decode()
    [tag] = re.findall(r"<input[^>]*id_recipient[^>]*>", email)
    assert re.findall(r'\btype="([^"]+)"', tag) == ["email"]


def test_site_client_missing_is_explained(pages: Pages, settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SITE_CLIENT_ID": "NO_SUCH_CLIENT"}
    response = pages.submit("/signup/", {"recipient": "a@example.com"})
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
    assert "We sent a code to <strong>a***@example.com</strong>." in page
    assert "6-digit code, valid for 1 minute." in page
    assert "<title>Enter the code – Create an account ·" in page
    token = pages.client.session["demo_otp"]["signup"]["otp_token"]
    assert token not in page  # the otp_token stays on the server

    response = pages.post("/signup/code/", {"code": last_email_code()})
    assert response["Location"] == "/signup/password/"
    page = pages.get("/signup/password/").content.decode()
    assert "alice@example.com" in page
    assert "<title>Choose a password – Create an account ·" in page
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
    response = pages.submit("/signup/password/", {"new_password1": "a", "new_password2": "b"})
    assert error_texts(response) == ["The two password fields didn’t match."]
    assert "<title>Error: Choose a password – Create an account ·" in response.content.decode()
    assert not get_user_model().objects.exists()


def test_signup_with_a_used_email_or_phone(pages: Pages) -> None:
    make_user("alice@example.com", phone=PHONE)
    response = pages.submit("/signup/", {"recipient": "ALICE@example.com"})
    assert error_texts(response) == ["This email address already belongs to an account."]
    response = pages.submit("/signup/", {"recipient": "+86 136 1234 5678"})
    assert error_texts(response) == ["This mobile number already belongs to an account."]
    assert mail.outbox == [] and locmem.outbox == []


def test_signup_taken_while_choosing_a_password(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    pages.post("/signup/code/", {"code": last_email_code()})
    make_user("alice@example.com")
    response = pages.post(
        "/signup/password/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert response["Location"] == "/signup/"  # back to the start, saying why
    page = pages.get("/signup/")
    assert error_texts(page) == ["This email address already belongs to an account."]
    assert 'value="alice@example.com"' in page.content.decode()
    assert get_user_model().objects.count() == 1
    assert logged_in_user_id(pages.client) is None


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
    response = pages.submit("/signup/", {"recipient": recipient})
    assert response.status_code == 200
    assert error_texts(response) == [message]


def test_denied_email_domain(pages: Pages, settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_DOMAIN_DENYLIST": ["mailinator.com"]}
    response = pages.submit("/signup/", {"recipient": "bob@mailinator.com"})
    assert error_texts(response) == [
        "We cannot send email to this address. Please use another one."
    ]


# --- entering codes ---------------------------------------------------------------------


def attempts() -> int:
    return OTPToken.objects.latest("pk").attempts


def test_wrong_codes_then_too_many(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    code = last_email_code()
    for left in (4, 3, 2, 1):
        response = pages.submit("/signup/code/", {"code": wrong(code, 5 - left)})
        times = "time" if left == 1 else "times"
        assert error_texts(response) == [
            f"That code is not right. You can try {left} more {times}."
        ]
        page = response.content.decode()
        assert "<title>Error: Enter the code – Create an account ·" in page
        assert re.search(r'<input(?![^>]*value=)[^>]*id="id_code"', page)  # the box is cleared
    response = pages.submit("/signup/code/", {"code": wrong(code, 5)})
    # the code is used up: the box goes, "Send a new code" becomes the main button
    assert error_texts(response) == ["That code is not right. Please ask for a new code."]
    page = response.content.decode()
    assert 'id="id_code"' not in page
    assert re.search(r'<button type="submit" name="resend" value="1" class="button"', page)
    assert 'aria-describedby="code-dead"' in page
    # a last try at the right code is not even sent to verify_otp
    response = pages.submit("/signup/code/", {"code": code})
    assert error_texts(response) == ["That code is not right. Please ask for a new code."]
    assert attempts() == 5


def test_the_same_wrong_code_twice_costs_one_attempt(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    bad = wrong(last_email_code())
    first = pages.submit("/signup/code/", {"code": bad})
    second = pages.submit("/signup/code/", {"code": f" {bad[:3]}-{bad[3:]} "})
    assert (
        error_texts(first)
        == error_texts(second)
        == ["That code is not right. You can try 4 more times."]
    )
    assert attempts() == 1


@pytest.mark.parametrize(
    "written",
    [
        "{code}",
        " {code} ",
        "{fullwidth}",
        "{code[0]}{code[1]}{code[2]}-{code[3]}{code[4]}{code[5]}",
        "{code[0]}{code[1]}{code[2]} {code[3]}{code[4]}{code[5]}",
        "{sms}",
    ],
    ids=["plain", "spaces", "full-width", "dash", "space", "whole-sms"],
)
def test_the_code_box_takes_the_code_as_people_write_it(pages: Pages, written: str) -> None:
    pages.post("/signup/", {"recipient": "136 1234 5678"})
    code, sms = locmem.outbox[-1].code, locmem.outbox[-1].text
    fullwidth = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    typed = written.format(code=code, fullwidth=fullwidth, sms=sms)
    response = pages.post("/signup/code/", {"code": typed})
    assert response["Location"] == "/signup/password/"
    assert attempts() == 0


def test_the_sms_can_end_with_a_webotp_line(pages: Pages, settings: Any) -> None:
    """``SMS_WEBOTP_DOMAIN``: "@host #code" last, and the whole message still pastes as a code."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_WEBOTP_DOMAIN": "shop.example.com"}
    pages.post("/signup/", {"recipient": "136 1234 5678"})
    sms = locmem.outbox[-1]
    assert sms.text.splitlines()[-1] == f"@shop.example.com #{sms.code}"
    assert sms.text.splitlines()[0].startswith(f"Your verification code for Sign up is {sms.code}.")
    response = pages.post("/signup/code/", {"code": sms.text})
    assert response["Location"] == "/signup/password/"


def test_the_sms_has_no_webotp_line_by_default(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "136 1234 5678"})
    assert "#" not in locmem.outbox[-1].text and "\n" not in locmem.outbox[-1].text


@pytest.mark.parametrize("typed", ["12345", "1234567", "abcdef", "123456 or 654321"])
def test_input_without_one_code_costs_no_attempt(pages: Pages, typed: str) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    response = pages.submit("/signup/code/", {"code": typed})
    assert error_texts(response) == ["Enter the 6 digits of the code."]
    assert attempts() == 0


def test_the_code_box_follows_the_auth_source(pages: Pages) -> None:
    from django_ciam_otp.models import AuthSource

    AuthSource.objects.filter(id="MOCK_SMS_OTP_AUTH_SOURCE_ID").update(
        code_length=8, code_validity=120
    )
    make_user("alice@example.com", phone=PHONE)
    pages.post("/login/code/", {"recipient": "13612345678"})
    page = pages.get("/login/code/verify/").content.decode()
    assert "8-digit code, valid for 2 minutes." in page
    assert 'data-code-length="8"' in page
    assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page
    response = pages.submit("/login/code/verify/", {"code": "123456"})
    assert error_texts(response) == ["Enter the 8 digits of the code."]
    response = pages.post("/login/code/verify/", {"code": last_sms_code()})
    assert response["Location"] == "/account/"


def test_expired_code(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    code = last_email_code()
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=61), tick=False):
        response = pages.submit("/signup/code/", {"code": code})
    assert error_texts(response) == ["This code has expired. Please ask for a new code."]
    assert 'id="id_code"' not in response.content.decode()


def test_dead_token(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    OTPToken.objects.update(expires_at=timezone.now())
    response = pages.submit("/signup/code/", {"code": last_email_code()})
    assert error_texts(response) == ["This code can no longer be used. Please ask for a new code."]


def test_an_empty_code_costs_no_attempt(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    response = pages.submit("/signup/code/", {"code": "  "})
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
        assert 'data-waiting-label="Send a new code in {time}"' in page

        response = pages.post("/signup/code/", {"resend": "1"})
        assert response["Location"] == "/signup/code/"
        refused = pages.get("/signup/code/")
        assert error_texts(refused) == [
            f"Please wait {errors.wait_text(wait)} before asking for another code for this address."
        ]
        # the number in the sentence counts down in the page, with the button's
        assert f'<span class="countdown" data-countdown="{wait}">' in refused.content.decode()
        assert resend_wait(refused.content.decode()) == wait
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
            response = pages.submit("/signup/code/", {"code": old_code})
            assert error_texts(response)[0].startswith("That code is not right.")
        response = pages.post("/signup/code/", {"code": new_code})
        assert response["Location"] == "/signup/password/"


def test_a_refused_wait_is_shown_as_what_is_left(pages: Pages) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        pages.post("/signup/", {"recipient": "alice@example.com"})
        wait = resend_wait(pages.get("/signup/code/").content.decode())
        pages.post("/signup/code/", {"resend": "1"})
    elapsed = wait // 2  # the window is staggered per address: wait is 1 to 30 s
    with time_machine.travel(start + dt.timedelta(seconds=elapsed), tick=False):
        shown = pages.get("/signup/code/")
    left = errors.wait_text(wait - elapsed)
    assert error_texts(shown) == [
        f"Please wait {left} before asking for another code for this address."
    ]


def test_early_resend_keeps_the_first_code(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    pages.post("/signup/code/", {"resend": "1"})
    response = pages.post("/signup/code/", {"code": last_email_code()})
    assert response["Location"] == "/signup/password/"


def test_a_used_up_code_offers_a_new_one(pages: Pages) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        pages.post("/signup/", {"recipient": "alice@example.com"})
        code = last_email_code()
        for n in range(1, 6):
            pages.post("/signup/code/", {"code": wrong(code, n)})
    with time_machine.travel(start + dt.timedelta(seconds=31), tick=False):
        page = pages.get("/signup/code/").content.decode()
        assert 'id="id_code"' not in page and resend_wait(page) == 0
        assert pages.post("/signup/code/", {"resend": "1"})["Location"] == "/signup/code/"
        page = pages.get("/signup/code/").content.decode()
        assert 'id="id_code"' in page  # a new code: the box is back
        response = pages.post("/signup/code/", {"code": last_email_code()})
        assert response["Location"] == "/signup/password/"


# --- second submits (the concurrent ones: test_example_double_submit.py) ------------------


def test_sending_again_to_the_same_address_goes_to_the_code_page(pages: Pages) -> None:
    """A double click on "Send code", or Back and the same address: the code already sent."""
    assert pages.post("/signup/", {"recipient": "136 1234 5678"})["Location"] == "/signup/code/"
    assert pages.post("/signup/", {"recipient": "+8613612345678"})["Location"] == "/signup/code/"
    assert len(locmem.outbox) == 1
    assert error_texts(pages.get("/signup/code/")) == []
    # another address is another code
    pages.post("/signup/", {"recipient": "alice@example.com"})
    assert len(mail.outbox) == 1


def test_continue_twice_moves_on(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    code = last_email_code()
    assert pages.post("/signup/code/", {"code": code})["Location"] == "/signup/password/"
    assert pages.post("/signup/code/", {"code": code})["Location"] == "/signup/password/"


def test_save_password_twice_logs_the_new_account_in(pages: Pages) -> None:
    pages.post("/signup/", {"recipient": "alice@example.com"})
    pages.post("/signup/code/", {"code": last_email_code()})
    old_session = pages.client.cookies["sessionid"].value
    data = {"new_password1": PASSWORD, "new_password2": PASSWORD}
    assert pages.post("/signup/password/", data)["Location"] == "/account/"
    # the second submit comes with the session the first replaced at log-in
    pages.client.cookies["sessionid"] = old_session
    assert pages.post("/signup/password/", data)["Location"] == "/account/"
    user = get_user_model().objects.get()
    assert logged_in_user_id(pages.client) == str(user.pk)
    assert pages.get("/account/").content.decode().count("Welcome! Your account is ready.") == 1


def test_save_password_again_after_the_answer_goes_to_the_account(pages: Pages) -> None:
    """A second submit sent after the first answer comes with the new session: still fine."""
    pages.post("/signup/", {"recipient": "alice@example.com"})
    pages.post("/signup/code/", {"code": last_email_code()})
    data = {"new_password1": PASSWORD, "new_password2": PASSWORD}
    assert pages.post("/signup/password/", data)["Location"] == "/account/"
    assert pages.post("/signup/password/", data)["Location"] == "/account/"
    assert get_user_model().objects.count() == 1
    assert pages.get("/account/").content.decode().count("Welcome! Your account is ready.") == 1


def test_code_login_again_after_the_answer_goes_on(pages: Pages) -> None:
    user = make_user("alice@example.com", phone=PHONE)
    pages.post("/login/code/", {"recipient": "13612345678"})
    code = last_sms_code()
    assert pages.post("/login/code/verify/", {"code": code})["Location"] == "/account/"
    assert pages.post("/login/code/verify/", {"code": code})["Location"] == "/account/"
    assert logged_in_user_id(pages.client) == str(user.pk)


def test_the_old_session_alone_does_not_log_in(pages: Pages) -> None:
    """The second submit must prove what the first did (here: the new password)."""
    pages.post("/signup/", {"recipient": "alice@example.com"})
    pages.post("/signup/code/", {"code": last_email_code()})
    old_session = pages.client.cookies["sessionid"].value
    pages.post("/signup/password/", {"new_password1": PASSWORD, "new_password2": PASSWORD})
    pages.client.cookies["sessionid"] = old_session
    response = pages.post("/signup/password/", {"new_password1": "x", "new_password2": "x"})
    assert response["Location"] == "/signup/"
    assert logged_in_user_id(pages.client) is None


def test_code_login_twice_logs_in(pages: Pages) -> None:
    user = make_user("alice@example.com", phone=PHONE)
    pages.post("/login/code/", {"recipient": "13612345678"})
    code = last_sms_code()
    old_session = pages.client.cookies["sessionid"].value
    assert pages.post("/login/code/verify/", {"code": code})["Location"] == "/account/"
    pages.client.cookies["sessionid"] = old_session
    assert pages.post("/login/code/verify/", {"code": code})["Location"] == "/account/"
    assert logged_in_user_id(pages.client) == str(user.pk)
    pages.client.cookies["sessionid"] = old_session
    assert pages.post("/login/code/verify/", {"code": wrong(code)})["Location"] == "/login/code/"


def test_new_password_twice_while_logged_in_stays_logged_in(pages: Pages) -> None:
    """Changing the password changes the session key; the second submit still ends logged in."""
    user = make_user("alice@example.com")
    pages.client.force_login(user)
    pages.post("/password/reset/", {"recipient": "alice@example.com"})
    pages.post("/password/reset/code/", {"code": last_email_code()})
    old_session = pages.client.cookies["sessionid"].value
    new = "a-brand-new-passphrase"
    data = {"new_password1": new, "new_password2": new}
    assert pages.post("/password/reset/new/", data)["Location"] == "/account/"
    pages.client.cookies["sessionid"] = old_session
    assert pages.post("/password/reset/new/", data)["Location"] == "/account/"
    assert logged_in_user_id(pages.client) == str(user.pk)
    assert pages.get("/account/").content.decode().count("Your password has been changed.") == 1


def test_new_password_twice_logged_out_logs_nobody_in(pages: Pages) -> None:
    make_user("alice@example.com")
    pages.post("/password/reset/", {"recipient": "alice@example.com"})
    pages.post("/password/reset/code/", {"code": last_email_code()})
    new = "a-brand-new-passphrase"
    data = {"new_password1": new, "new_password2": new}
    assert pages.post("/password/reset/new/", data)["Location"] == "/login/"
    assert pages.post("/password/reset/new/", data)["Location"] == "/login/"
    assert logged_in_user_id(pages.client) is None


# --- reset: no account enumeration -------------------------------------------------------


def comparable(response: Any) -> str:
    """The page without its CSRF token, the reference of its code, and the resend wait.

    The wait depends on the address (django-ratelimit staggers each key's
    window), not on whether an account uses it.
    """
    text = re.sub(
        r'name="(csrfmiddlewaretoken|code_for)" value="[^"]+"', "", response.content.decode()
    )
    text = re.sub(r'data-(wait|countdown)="\d+"', "", text)
    return re.sub(r"\b\d+ (s|seconds?)\b", "", text)


def reset_journey(pages: Pages, recipient: str) -> list[Any]:
    """What someone sees asking for a reset code, typing a wrong one, and more."""
    first = pages.post("/password/reset/", {"recipient": recipient})
    shown = pages.get("/password/reset/code/")
    wrong_code = pages.post("/password/reset/code/", {"code": "000000"})
    wrong_shown = pages.get("/password/reset/code/")
    early_resend = pages.post("/password/reset/code/", {"resend": "1"})
    resend_shown = pages.get("/password/reset/code/")
    again = pages.post("/password/reset/", {"recipient": recipient})
    for _ in range(4):
        pages.post("/password/reset/code/", {"code": f"00000{_ + 1}"})
    used_up = pages.get("/password/reset/code/")
    return [first, shown, wrong_code, wrong_shown, early_resend, resend_shown, again, used_up]


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
    shown = known[1].content.decode()
    assert (
        "If this belongs to an account, we sent a code to <strong>a***@example.com</strong>."
        in shown
    )
    assert "We sent a code" not in shown
    assert 'id="id_code"' not in known[-1].content.decode()  # both used up alike
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]  # nothing sent to anna


def test_reset_resend_says_the_same_for_everyone(pages: Pages) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        pages.post("/password/reset/", {"recipient": "anna@example.com"})
    with time_machine.travel(start + dt.timedelta(seconds=31), tick=False):
        pages.post("/password/reset/code/", {"resend": "1"})
        page = pages.get("/password/reset/code/").content.decode()
    assert "If this belongs to an account, we sent a new code to a***@example.com." in page
    assert mail.outbox == []


def test_reset_password(pages: Pages) -> None:
    user = make_user("alice@example.com")
    pages.post("/password/reset/", {"recipient": "Alice@example.com"})
    response = pages.post("/password/reset/code/", {"code": last_email_code()})
    assert response["Location"] == "/password/reset/new/"
    assert "<title>Choose a new password – Reset your password ·" in (
        pages.get("/password/reset/new/").content.decode()
    )
    new = "a-brand-new-passphrase"
    response = pages.post("/password/reset/new/", {"new_password1": new, "new_password2": new})
    assert response["Location"] == "/login/"
    assert "Log in with your new password." in pages.get("/login/").content.decode()
    user.refresh_from_db()
    assert user.check_password(new)
    assert logged_in_user_id(pages.client) is None

    response = pages.submit("/login/", {"login": "alice@example.com", "password": PASSWORD})
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
        pages.submit("/login/", {"login": login, "password": password})
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
    response = pages.submit("/login/code/verify/", {"code": wrong(last_sms_code())})
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


def test_login_code_for_an_unknown_number_goes_on_to_sign_up(pages: Pages) -> None:
    """No dead end and no second SMS: the verified number chooses a password."""
    pages.post("/login/code/", {"recipient": "13612345678"})
    response = pages.post("/login/code/verify/", {"code": last_sms_code()})
    assert response["Location"] == "/signup/password/"
    assert logged_in_user_id(pages.client) is None
    page = pages.get("/signup/password/").content.decode()
    assert "No account uses this mobile number yet. Choose a password to create one." in page
    assert "+8613612345678" in page
    response = pages.post(
        "/signup/password/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert response["Location"] == "/account/"
    assert Profile.objects.get().phone_number == PHONE
    assert logged_in_user_id(pages.client) == str(Profile.objects.get().user_id)
    assert len(locmem.outbox) == 1


def test_login_code_for_an_unknown_number_with_auto_signup(pages: Pages, settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "AUTO_SIGNUP": True}
    pages.post("/login/code/", {"recipient": "alice@example.com"})
    response = pages.post("/login/code/verify/", {"code": last_email_code()})
    assert response["Location"] == "/account/"
    user = get_user_model().objects.get()
    assert user.email == "alice@example.com"
    assert logged_in_user_id(pages.client) == str(user.pk)


def test_login_code_for_an_account_that_may_not_log_in(pages: Pages) -> None:
    user = make_user("alice@example.com")
    user.is_active = False
    user.save()
    pages.post("/login/code/", {"recipient": "alice@example.com"})
    response = pages.post("/login/code/verify/", {"code": last_email_code()})
    assert response["Location"] == "/login/code/"
    assert error_texts(pages.get("/login/code/")) == [
        "The code is right, but this account cannot log in."
    ]
    assert logged_in_user_id(pages.client) is None
    assert pages.get("/signup/password/")["Location"] == "/signup/"


def test_login_code_without_auth_source(pages: Pages) -> None:
    from django_ciam_otp.models import AuthSource

    AuthSource.objects.update(enabled=False)
    response = pages.submit("/login/code/", {"recipient": "13612345678"})
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
    code = last_sms_code()
    response = pages.post("/account/phone/code/", {"code": code})
    assert response["Location"] == "/account/"
    assert Profile.objects.get(user=alice).phone_number == PHONE
    assert f"Your mobile number is now {PHONE}." in pages.get("/account/").content.decode()
    # a second submit of the same code continues to the account
    assert pages.post("/account/phone/code/", {"code": code})["Location"] == "/account/"


def test_change_email(pages: Pages, alice: Any) -> None:
    pages.post("/account/email/", {"recipient": "alice@new.example"})
    pages.post("/account/email/code/", {"code": last_email_code()})
    alice.refresh_from_db()
    assert alice.email == "alice@new.example"


def test_change_to_a_used_or_own_recipient(pages: Pages, alice: Any) -> None:
    make_user("bob@example.com", phone=PHONE)
    response = pages.submit("/account/email/", {"recipient": "BOB@example.com"})
    assert error_texts(response) == ["This email address already belongs to an account."]
    response = pages.submit("/account/phone/", {"recipient": "13612345678"})
    assert error_texts(response) == ["This mobile number already belongs to an account."]
    response = pages.submit("/account/email/", {"recipient": "alice@example.com"})
    assert error_texts(response) == ["This is already your email address."]
    response = pages.submit("/account/email/", {"recipient": "13612345678"})
    assert error_texts(response) == ["Enter an email address."]


def test_change_phone_taken_meanwhile(pages: Pages, alice: Any) -> None:
    pages.post("/account/phone/", {"recipient": "13612345678"})
    make_user("bob@example.com", phone=PHONE)
    response = pages.submit("/account/phone/code/", {"code": last_sms_code()})
    assert error_texts(response) == ["This mobile number already belongs to an account."]
    assert not Profile.objects.filter(user=alice).exists()


def test_pending_change_belongs_to_its_user(pages: Pages, alice: Any) -> None:
    pages.post("/account/email/", {"recipient": "alice@new.example"})
    session = pages.client.session
    session["demo_otp"]["email"]["user_id"] = alice.pk + 1000
    session.save()
    assert pages.get("/account/email/code/")["Location"] == "/account/email/"


# --- Simplified Chinese (every page: test_example_translations.py) -------------------------


def test_pages_in_simplified_chinese(pages: Pages) -> None:
    pages.client.cookies["django_language"] = "zh-hans"
    page = pages.get("/signup/").content.decode()
    assert '<html lang="zh-hans">' in page
    assert "创建账号" in page
    response = pages.submit("/signup/", {"recipient": "136"})
    assert error_texts(response) == ["请输入中国大陆手机号码，例如 136 1234 5678。"]
    pages.post("/signup/", {"recipient": "alice@example.com"})
    response = pages.submit("/signup/code/", {"code": wrong(last_email_code())})
    assert error_texts(response) == ["验证码不正确。您还可以尝试 4 次。"]
    assert "验证码" in mail.outbox[-1].subject  # the code message follows the page's language


def test_language_switcher(pages: Pages) -> None:
    response = pages.post("/i18n/setlang/", {"language": "zh-hans", "next": "/login/"})
    assert response["Location"] == "/login/"
    assert "登录" in pages.get("/login/").content.decode()
