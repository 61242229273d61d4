"""Double submits on the example pages, for real: two simultaneous POSTs with one session cookie.

A double click sends the same form twice before the first answer arrives. Two
threads post at the same moment to pytest-django's live server with the same
cookies, as a browser would; the person must end up where one submit takes
them, exactly once: one SMS, one account, logged in. (The browser tests do the
same with a real double click; ``test_example_pages.py`` covers the
sequential second submits.)
"""

from __future__ import annotations

import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from django_ciam_otp.backends.sms import locmem
from django_ciam_otp.models import OTPToken
from example_project.demo.models import Profile
from tests.conftest import use_example_project

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "13612345678"
PASSWORD = "correct-horse-battery"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Visitor:
    """One browser: a cookie jar, GETs that follow redirects, POSTs that report them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()

    def _open(self, path: str, data: dict[str, str] | None, follow: bool) -> tuple[int, str, str]:
        handlers: list[Any] = [urllib.request.HTTPCookieProcessor(self.jar)]
        if not follow:
            handlers.append(NoRedirect())
        opener = urllib.request.build_opener(*handlers)
        body = None
        if data is not None:
            body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.csrf()}).encode()
        try:
            with opener.open(self.base_url + path, data=body, timeout=30) as response:
                url = response.geturl().removeprefix(self.base_url)
                return response.status, url, response.read().decode()
        except urllib.error.HTTPError as exc:  # a 302 without following lands here
            return exc.code, exc.headers.get("Location", ""), exc.read().decode()

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def get(self, path: str) -> tuple[str, str]:
        status, url, page = self._open(path, None, follow=True)
        assert status == 200, (path, status)
        return url, page

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        status, location, _page = self._open(path, data, follow=False)
        return status, location

    def double_post(self, path: str, data: dict[str, str]) -> list[tuple[int, str]]:
        """The same form posted twice at the same moment, both with the cookies of before.

        As a double click: the second request leaves before the first answer (and
        the cookies it sets) has arrived. The answers' cookies are kept after.
        """
        url = self.base_url + path
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.csrf()}).encode()
        opener = urllib.request.build_opener(NoRedirect())
        start = threading.Barrier(2)
        answers: list[Any] = [None, None]

        def submit(i: int) -> None:
            request = urllib.request.Request(url, data=body, headers={"Cookie": cookies})
            start.wait()
            try:
                try:
                    response = opener.open(request, timeout=30)
                except urllib.error.HTTPError as exc:  # the 302
                    response = exc
                with response:
                    self.jar.extract_cookies(response, request)  # type: ignore[arg-type]
                    answers[i] = (response.status, response.headers.get("Location", ""))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                answers[i] = exc

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert all(isinstance(a, tuple) for a in answers), answers
        return answers


@pytest.fixture
def visitor(settings: Any, live_server: Any) -> Visitor:
    use_example_project(settings)
    return Visitor(live_server.url)


def logged_in_as(visitor: Visitor) -> tuple[str, str]:
    """The account page's (email address, mobile number)."""
    url, page = visitor.get("/account/")
    assert url == "/account/", url
    email = re.search(r'id="account-email">([^<]+)<', page)
    phone = re.search(r'id="account-phone">([^<]+)<', page)
    assert email and phone
    return email.group(1), phone.group(1)


def test_send_code_twice_sends_one_sms_and_goes_to_the_code_page(visitor: Visitor) -> None:
    visitor.get("/signup/")
    answers = visitor.double_post("/signup/", {"recipient": PHONE})
    assert answers == [(302, "/signup/code/")] * 2
    assert len(locmem.outbox) == 1
    url, page = visitor.get("/signup/code/")
    assert url == "/signup/code/" and "Please wait" not in page
    assert 'class="error' not in page


def test_continue_twice_with_the_right_code_moves_on_once(visitor: Visitor) -> None:
    visitor.get("/signup/")
    visitor.post("/signup/", {"recipient": PHONE})
    answers = visitor.double_post("/signup/code/", {"code": locmem.outbox[-1].code})
    assert answers == [(302, "/signup/password/")] * 2
    url, page = visitor.get("/signup/password/")
    assert url == "/signup/password/" and "+8613612345678" in page


def test_continue_twice_with_a_wrong_code_costs_one_attempt(visitor: Visitor) -> None:
    visitor.get("/signup/")
    visitor.post("/signup/", {"recipient": PHONE})
    code = locmem.outbox[-1].code
    wrong = str((int(code) + 1) % 10**6).zfill(6)
    answers = visitor.double_post("/signup/code/", {"code": wrong})
    assert answers == [(302, "/signup/code/")] * 2
    assert OTPToken.objects.get().attempts == 1
    _url, page = visitor.get("/signup/code/")
    assert "You can try 4 more times." in page


def test_save_password_twice_creates_one_account_and_logs_it_in(visitor: Visitor) -> None:
    visitor.get("/signup/")
    visitor.post("/signup/", {"recipient": PHONE})
    visitor.post("/signup/code/", {"code": locmem.outbox[-1].code})
    visitor.get("/signup/password/")
    answers = visitor.double_post(
        "/signup/password/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert answers == [(302, "/account/")] * 2
    assert get_user_model().objects.count() == 1
    assert Profile.objects.get().phone_number == "+8613612345678"
    assert logged_in_as(visitor)[1] == "+8613612345678"


def test_code_login_twice_logs_in(visitor: Visitor) -> None:
    user = get_user_model().objects.create_user("alice@example.com", email="alice@example.com")
    Profile.objects.create(user=user, phone_number="+8613612345678")
    visitor.get("/login/code/")
    visitor.post("/login/code/", {"recipient": PHONE})
    answers = visitor.double_post("/login/code/verify/", {"code": locmem.outbox[-1].code})
    assert answers == [(302, "/account/")] * 2
    assert logged_in_as(visitor)[0] == "alice@example.com"


def test_code_login_twice_for_a_new_number_goes_on_to_sign_up(visitor: Visitor) -> None:
    visitor.get("/login/code/")
    visitor.post("/login/code/", {"recipient": PHONE})
    answers = visitor.double_post("/login/code/verify/", {"code": locmem.outbox[-1].code})
    assert answers == [(302, "/signup/password/")] * 2
    url, _page = visitor.get("/signup/password/")
    assert url == "/signup/password/"
    assert len(locmem.outbox) == 1


def test_change_phone_twice_changes_it_once(visitor: Visitor) -> None:
    get_user_model().objects.create_user("alice@example.com", "alice@example.com", PASSWORD)
    visitor.get("/login/")
    visitor.post("/login/", {"login": "alice@example.com", "password": PASSWORD})
    visitor.get("/account/phone/")
    assert (
        visitor.double_post("/account/phone/", {"recipient": PHONE})
        == [(302, "/account/phone/code/")] * 2
    )
    assert len(locmem.outbox) == 1
    answers = visitor.double_post("/account/phone/code/", {"code": locmem.outbox[-1].code})
    assert answers == [(302, "/account/")] * 2
    _url, page = visitor.get("/account/")
    assert page.count("Your mobile number is now +8613612345678.") == 1
    assert Profile.objects.get().phone_number == "+8613612345678"


def test_reset_twice_sends_one_email(visitor: Visitor) -> None:
    get_user_model().objects.create_user("alice@example.com", "alice@example.com", PASSWORD)
    visitor.get("/password/reset/")
    answers = visitor.double_post("/password/reset/", {"recipient": "alice@example.com"})
    assert answers == [(302, "/password/reset/code/")] * 2
    assert len(mail.outbox) == 1


def test_send_a_new_code_twice_sends_one(visitor: Visitor, settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": []}  # no wait to sit out
    visitor.get("/signup/")
    visitor.post("/signup/", {"recipient": PHONE})
    _url, page = visitor.get("/signup/code/")
    code_for = re.search(r'name="code_for" value="([^"]+)"', page)
    assert code_for
    answers = visitor.double_post("/signup/code/", {"resend": "1", "code_for": code_for.group(1)})
    assert answers == [(302, "/signup/code/")] * 2
    assert len(locmem.outbox) == 2  # the first code and one new one
    _url, page = visitor.get("/signup/code/")
    assert page.count("We sent a new code to +86136****5678.") == 1
    assert 'class="error' not in page
