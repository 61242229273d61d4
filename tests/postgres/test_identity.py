"""Who owns an address, on PostgreSQL: look-alikes never reach an account, its own forms always do.

A code that proves control of an account's address is delivered only to that
account's stored address, or the request is treated as for an unknown
recipient; the address a caller typed never receives a code for an account
whose stored address differs from it (SPEC.md section 2). Checked through the
HTTP API, the Python API and the authentication backend, for every member of
the family in ``family.py`` (characters PostgreSQL folds onto ASCII, and
confusables it does not), with the library's own look-up and with a site's
``USER_LOOKUP`` that trusts the database's folding.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.mail import EmailMessage
from django.test import RequestFactory

from django_ciam_otp import send_otp
from django_ciam_otp.models import AuthSource
from example_project.demo.models import Profile
from tests.conftest import Api, ApiClient

from .family import (
    ACCOUNT_PHONE,
    FAMILY,
    PHONE_FORMS,
    SAME_ADDRESS,
    Lookalike,
    canonical_email,
    family_params,
)
from .site import example_user_settings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PASSWORD = "correct-horse-battery"
SITE_LOOKUPS = [
    pytest.param("tests.postgres.lookups.find_by_iexact", id="site lookup iexact"),
    pytest.param("tests.postgres.lookups.find_by_lower", id="site lookup lower"),
]


def make_account(address: str) -> User:
    return User.objects.create_user(address, email=address, password=PASSWORD)


def recipients(outbox: list[EmailMessage]) -> list[list[str]]:
    return [list(message.to) for message in outbox]


def code_in(message: EmailMessage) -> str:
    match = re.search(r"^\s+(\d{4,10})\s*$", str(message.body), re.M)
    assert match, message.body
    return match.group(1)


def use_lookup(settings: Any, dotted_path: str) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "USER_LOOKUP": dotted_path}


# --- HTTP API: reset_password --------------------------------------------------------


@pytest.mark.parametrize("lookalike", family_params())
def test_api_reset_for_a_lookalike_answers_like_any_reset_and_sends_nothing(
    api: Api, api_client: ApiClient, mailoutbox: list[EmailMessage], lookalike: Lookalike
) -> None:
    make_account(lookalike.account)
    unknown = api.send({"usage": "reset_password", "email": "nobody@example.org"}, auth=api_client)

    response = api.send({"usage": "reset_password", "email": lookalike.typed}, auth=api_client)

    assert response.status_code == unknown.status_code == 200, response.content
    assert set(response.json()) == set(unknown.json())
    assert recipients(mailoutbox) == []


@pytest.mark.parametrize(("stored", "typed"), SAME_ADDRESS)
def test_api_reset_for_another_form_of_the_address_mails_the_stored_address(
    api: Api, api_client: ApiClient, mailoutbox: list[EmailMessage], stored: str, typed: str
) -> None:
    make_account(stored)
    response = api.send({"usage": "reset_password", "email": typed}, auth=api_client)
    assert response.status_code == 200, response.content
    assert recipients(mailoutbox) == [[stored]]


# --- HTTP API: signup and update_userinfo ----------------------------------------------


@pytest.mark.parametrize("usage", ["signup", "update_userinfo"])
@pytest.mark.parametrize("lookalike", family_params())
def test_api_lookalike_of_a_used_address_is_not_used(
    api: Api,
    api_client: ApiClient,
    mailoutbox: list[EmailMessage],
    lookalike: Lookalike,
    usage: str,
) -> None:
    make_account(lookalike.account)
    response = api.send({"usage": usage, "email": lookalike.typed}, auth=api_client)
    assert response.status_code == 200, response.content  # not email_is_used
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to != [lookalike.account]
    assert canonical_email(mailoutbox[0].to[0]) == canonical_email(lookalike.typed)


@pytest.mark.parametrize("usage", ["signup", "update_userinfo"])
@pytest.mark.parametrize(("stored", "typed"), SAME_ADDRESS)
def test_api_another_form_of_a_used_address_is_used(
    api: Api,
    api_client: ApiClient,
    mailoutbox: list[EmailMessage],
    stored: str,
    typed: str,
    usage: str,
) -> None:
    make_account(stored)
    response = api.send({"usage": usage, "email": typed}, auth=api_client)
    assert response.status_code == 400
    assert response.json()["error"] == "email_is_used"
    assert mailoutbox == []


# --- HTTP API: phone numbers ---------------------------------------------------------


@pytest.mark.parametrize("written", PHONE_FORMS)
def test_api_reset_by_any_form_of_the_number_texts_the_stored_number(
    api: Api, api_client: ApiClient, sms_outbox: list[Any], settings: Any, written: str
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, **example_user_settings()}
    Profile.objects.create(user=make_account("alice@example.com"), phone_number=ACCOUNT_PHONE)
    response = api.send({"usage": "reset_password", "phone_number": written}, auth=api_client)
    assert response.status_code == 200, response.content
    assert [message.phone_number for message in sms_outbox] == [ACCOUNT_PHONE]


@pytest.mark.parametrize("usage", ["signup", "update_userinfo"])
@pytest.mark.parametrize("written", PHONE_FORMS)
def test_api_any_form_of_a_used_number_is_used(
    api: Api,
    api_client: ApiClient,
    sms_outbox: list[Any],
    settings: Any,
    written: str,
    usage: str,
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, **example_user_settings()}
    Profile.objects.create(user=make_account("alice@example.com"), phone_number=ACCOUNT_PHONE)
    response = api.send({"usage": usage, "phone_number": written}, auth=api_client)
    assert response.status_code == 400
    assert response.json()["error"] == "phone_number_is_used"
    assert sms_outbox == []


# --- Python API ------------------------------------------------------------------------


@pytest.mark.parametrize("lookalike", family_params())
def test_python_reset_for_a_lookalike_sends_nothing(
    api_client: ApiClient,
    mailoutbox: list[EmailMessage],
    django_capture_on_commit_callbacks: Callable[..., Any],
    lookalike: Lookalike,
) -> None:
    make_account(lookalike.account)
    with django_capture_on_commit_callbacks(execute=True):
        result = send_otp(api_client.client, usage="reset_password", email=lookalike.typed)
    assert result.otp_token
    assert recipients(mailoutbox) == []


@pytest.mark.parametrize(("stored", "typed"), SAME_ADDRESS)
def test_python_reset_for_another_form_of_the_address_mails_the_stored_address(
    api_client: ApiClient,
    mailoutbox: list[EmailMessage],
    django_capture_on_commit_callbacks: Callable[..., Any],
    stored: str,
    typed: str,
) -> None:
    make_account(stored)
    with django_capture_on_commit_callbacks(execute=True):
        send_otp(api_client.client, usage="reset_password", email=typed)
    assert recipients(mailoutbox) == [[stored]]


# --- a site's own USER_LOOKUP that trusts the database --------------------------------


@pytest.mark.parametrize("lookup", SITE_LOOKUPS)
@pytest.mark.parametrize("lookalike", family_params())
def test_site_lookup_folding_a_lookalike_onto_an_account_gets_it_no_reset_code(
    api: Api,
    api_client: ApiClient,
    mailoutbox: list[EmailMessage],
    settings: Any,
    lookalike: Lookalike,
    lookup: str,
) -> None:
    use_lookup(settings, lookup)
    make_account(lookalike.account)
    response = api.send({"usage": "reset_password", "email": lookalike.typed}, auth=api_client)
    assert response.status_code == 200, response.content
    assert recipients(mailoutbox) == []


@pytest.mark.parametrize("lookup", SITE_LOOKUPS)
@pytest.mark.parametrize("lookalike", family_params())
def test_site_lookup_folding_a_lookalike_onto_an_account_does_not_make_it_used(
    api: Api,
    api_client: ApiClient,
    mailoutbox: list[EmailMessage],
    settings: Any,
    lookalike: Lookalike,
    lookup: str,
) -> None:
    use_lookup(settings, lookup)
    make_account(lookalike.account)
    response = api.send({"usage": "signup", "email": lookalike.typed}, auth=api_client)
    assert response.status_code == 200, response.content
    assert len(mailoutbox) == 1 and mailoutbox[0].to != [lookalike.account]


@pytest.mark.parametrize("lookup", SITE_LOOKUPS)
@pytest.mark.parametrize(("stored", "typed"), SAME_ADDRESS)
def test_site_lookup_reset_for_another_form_mails_the_stored_address(
    api: Api,
    api_client: ApiClient,
    mailoutbox: list[EmailMessage],
    settings: Any,
    stored: str,
    typed: str,
    lookup: str,
) -> None:
    use_lookup(settings, lookup)
    make_account(stored)
    response = api.send({"usage": "reset_password", "email": typed}, auth=api_client)
    assert response.status_code == 200, response.content
    assert recipients(mailoutbox) == [[stored]]


# --- the authentication backend ---------------------------------------------------------


def login_with_code(
    client: ApiClient,
    source: AuthSource,
    email: str,
    mailoutbox: list[EmailMessage],
    capture: Callable[..., Any],
) -> Any:
    """Send a login code to ``email``, read it from the mail, and ``authenticate()`` with it."""
    with capture(execute=True):
        result = send_otp(client.client, usage="login", email=email, auth_source_id=source.id)
    assert mailoutbox, "the login code was not mailed"
    request = RequestFactory().post("/login/")
    return authenticate(
        request,
        otp_token=result.otp_token,
        otp=code_in(mailoutbox[-1]),
        email=email,
        client=client.client,
    )


@pytest.mark.parametrize("lookup", [pytest.param(None, id="library lookup"), *SITE_LOOKUPS])
@pytest.mark.parametrize("lookalike", family_params())
def test_backend_never_logs_a_lookalike_in_as_the_account(
    api_client: ApiClient,
    email_source: AuthSource,
    mailoutbox: list[EmailMessage],
    django_capture_on_commit_callbacks: Callable[..., Any],
    settings: Any,
    lookalike: Lookalike,
    lookup: str | None,
) -> None:
    if lookup is not None:
        use_lookup(settings, lookup)
    make_account(lookalike.account)
    user = login_with_code(
        api_client, email_source, lookalike.typed, mailoutbox, django_capture_on_commit_callbacks
    )
    assert user is None


@pytest.mark.parametrize("lookalike", family_params())
def test_backend_auto_signup_makes_a_lookalike_its_own_account(
    api_client: ApiClient,
    email_source: AuthSource,
    mailoutbox: list[EmailMessage],
    django_capture_on_commit_callbacks: Callable[..., Any],
    settings: Any,
    lookalike: Lookalike,
) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "AUTO_SIGNUP": True}
    account = make_account(lookalike.account)
    user = login_with_code(
        api_client, email_source, lookalike.typed, mailoutbox, django_capture_on_commit_callbacks
    )
    assert user is not None and user.pk != account.pk
    assert canonical_email(user.email) == canonical_email(lookalike.typed)
    account.refresh_from_db()
    assert account.email == lookalike.account


@pytest.mark.parametrize(("stored", "typed"), SAME_ADDRESS)
def test_backend_logs_another_form_of_the_address_in_as_the_account(
    api_client: ApiClient,
    email_source: AuthSource,
    mailoutbox: list[EmailMessage],
    django_capture_on_commit_callbacks: Callable[..., Any],
    stored: str,
    typed: str,
) -> None:
    account = make_account(stored)
    user = login_with_code(
        api_client, email_source, typed, mailoutbox, django_capture_on_commit_callbacks
    )
    assert user is not None and user.pk == account.pk


def test_the_family_has_a_dozen_members_each_another_address() -> None:
    """Guards the oracle: every look-alike differs canonically from its account."""
    assert len(FAMILY) >= 12
    for lookalike in FAMILY:
        assert canonical_email(lookalike.typed) != canonical_email(lookalike.account)
    for param in SAME_ADDRESS:
        stored, typed = param.values
        assert canonical_email(str(typed)) == canonical_email(str(stored))
