"""The example project's pages on PostgreSQL: a look-alike address never gets into an account.

The demo's ``USER_LOOKUP`` (``example_project.demo.users.find_user``) finds
users with ``email__iexact``, which PostgreSQL folds beyond ASCII; the pages
must still treat a look-alike as nobody's address, and every written form of
an account's own address or number as the account's.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.test import Client

from django_ciam_otp.backends.sms import locmem
from example_project.demo.models import Profile

from .family import (
    ACCOUNT_PHONE,
    PHONE_FORMS,
    SAME_ADDRESS,
    Lookalike,
    canonical_email,
    family_params,
)
from .site import example_user_settings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "a-brand-new-passphrase"


class Pages:
    """A browser-less visitor: posts run their on-commit callbacks (the code is delivered)."""

    def __init__(self, client: Client, capture: Any) -> None:
        self.client = client
        self.capture = capture

    def post(self, url: str, data: dict[str, str]) -> Any:
        with self.capture(execute=True):
            return self.client.post(url, data)

    def logged_in_user_id(self) -> str | None:
        return self.client.session.get("_auth_user_id")


@pytest.fixture
def pages(settings: Any, client: Client, django_capture_on_commit_callbacks: Any) -> Pages:
    """The example project's URLs, its user look-up settings and demo data.

    As in tests/test_example_pages.py, with the ``USER_*`` keys read from the
    example project's settings (its ``USER_LOOKUP`` uses ``email__iexact``).
    """
    settings.ROOT_URLCONF = "example_project.urls"
    settings.LOGIN_URL = "demo:login"
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SITE_CLIENT_ID": "DEMO_SITE_CLIENT",
        **example_user_settings(),
    }
    call_command("load_demo_data", stdout=io.StringIO())
    return Pages(client, django_capture_on_commit_callbacks)


def make_account(address: str, phone: str | None = None) -> User:
    user = User.objects.create_user(address, email=address, password=PASSWORD)
    if phone:
        Profile.objects.create(user=user, phone_number=phone)
    return user


def last_email_code() -> str:
    match = re.search(r"^\s+(\d{4,10})\s*$", str(mail.outbox[-1].body), re.M)
    assert match, mail.outbox[-1].body
    return match.group(1)


def mailed_to() -> list[list[str]]:
    return [list(message.to) for message in mail.outbox]


# --- log in with a code ------------------------------------------------------------------


@pytest.mark.parametrize("lookalike", family_params())
def test_code_login_with_a_lookalike_never_logs_in_as_the_account(
    pages: Pages, lookalike: Lookalike
) -> None:
    account = make_account(lookalike.account)
    pages.post("/login/code/", {"recipient": lookalike.typed})
    assert [lookalike.account] not in mailed_to()
    if mail.outbox:
        pages.post("/login/code/verify/", {"code": last_email_code()})
    assert pages.logged_in_user_id() != str(account.pk)
    assert pages.logged_in_user_id() is None


@pytest.mark.parametrize(("stored", "typed"), SAME_ADDRESS)
def test_code_login_with_another_form_of_the_address_logs_in_as_the_account(
    pages: Pages, stored: str, typed: str
) -> None:
    account = make_account(stored)
    pages.post("/login/code/", {"recipient": typed})
    response = pages.post("/login/code/verify/", {"code": last_email_code()})
    assert response.status_code == 302
    assert pages.logged_in_user_id() == str(account.pk)


@pytest.mark.parametrize("written", PHONE_FORMS)
def test_code_login_with_any_form_of_the_number_logs_in_as_the_account(
    pages: Pages, written: str
) -> None:
    account = make_account("alice@example.com", phone=ACCOUNT_PHONE)
    pages.post("/login/code/", {"recipient": written})
    assert [message.phone_number for message in locmem.outbox] == [ACCOUNT_PHONE]
    pages.post("/login/code/verify/", {"code": locmem.outbox[-1].code})
    assert pages.logged_in_user_id() == str(account.pk)


# --- reset a password ---------------------------------------------------------------------


@pytest.mark.parametrize("lookalike", family_params())
def test_reset_with_a_lookalike_sends_no_mail(pages: Pages, lookalike: Lookalike) -> None:
    make_account(lookalike.account)
    response = pages.post("/password/reset/", {"recipient": lookalike.typed})
    assert response["Location"] == "/password/reset/code/"  # the same page as for anyone
    assert mailed_to() == []


@pytest.mark.parametrize(("stored", "typed"), SAME_ADDRESS)
def test_reset_with_another_form_of_the_address_mails_the_stored_address(
    pages: Pages, stored: str, typed: str
) -> None:
    account = make_account(stored)
    pages.post("/password/reset/", {"recipient": typed})
    assert mailed_to() == [[stored]]

    response = pages.post("/password/reset/code/", {"code": last_email_code()})
    assert response["Location"] == "/password/reset/new/"
    pages.post(
        "/password/reset/new/", {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    account.refresh_from_db()
    assert account.check_password(NEW_PASSWORD)


@pytest.mark.parametrize("written", PHONE_FORMS)
def test_reset_with_any_form_of_the_number_texts_the_stored_number(
    pages: Pages, written: str
) -> None:
    make_account("alice@example.com", phone=ACCOUNT_PHONE)
    pages.post("/password/reset/", {"recipient": written})
    assert [message.phone_number for message in locmem.outbox] == [ACCOUNT_PHONE]


# --- sign up ---------------------------------------------------------------------------


@pytest.mark.parametrize("lookalike", family_params())
def test_signup_with_a_lookalike_is_not_refused_as_used(pages: Pages, lookalike: Lookalike) -> None:
    make_account(lookalike.account)
    response = pages.post("/signup/", {"recipient": lookalike.typed})
    assert response.status_code == 302 and response["Location"] == "/signup/code/"
    assert len(mail.outbox) == 1
    assert canonical_email(mail.outbox[0].to[0]) == canonical_email(lookalike.typed)


@pytest.mark.parametrize(("stored", "typed"), SAME_ADDRESS)
def test_signup_with_another_form_of_the_address_is_refused_as_used(
    pages: Pages, stored: str, typed: str
) -> None:
    make_account(stored)
    response = pages.post("/signup/", {"recipient": typed})
    assert response.status_code == 302 and response["Location"] == "/signup/"  # the form again
    assert "already belongs to an account" in pages.client.get("/signup/").content.decode()
    assert mailed_to() == []
