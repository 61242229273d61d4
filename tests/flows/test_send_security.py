"""The send path's security promises (outside review): no enumeration, no free oracle,
no shadowing of accounts, no denial by others, no leftovers inside a caller's transaction."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ciam_otp import send_otp, snapshots, verify_otp
from django_ciam_otp.exceptions import TemporarilyUnavailable
from django_ciam_otp.models import BlockedPrefix, DeliveryStatus, OTPToken, Quota, TestRecipient
from tests.conftest import ApiClient, use_example_project
from tests.support.brokers import DeadBroker

pytestmark = pytest.mark.django_db

KNOWN_PHONE = "+8613900001111"  # an account's (tests.lookups.USED_PHONES)
UNKNOWN_PHONE = "+8613900001112"  # nobody's, in the same number block
NEIGHBOURS = [f"+86139000012{i:02d}" for i in range(10)]


@pytest.fixture
def phone_accounts(settings: Any) -> None:
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "USER_LOOKUP": "tests.lookups.phone_lookup",
        "USER_ADDRESS": "tests.lookups.phone_address",
    }


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("django_ciam_otp.tasks.deliver_otp", DeadBroker)
    monkeypatch.setattr("django_ciam_otp.tasks.deliver_due", DeadBroker)


def fresh_state() -> None:
    for cache in caches.all():
        cache.clear()
    BlockedPrefix.objects.all().delete()
    snapshots.clear_all()


def shape(response: Any) -> tuple[int, str | None, frozenset[str], frozenset[str]]:
    body = response.json()
    return (
        response.status_code,
        body.get("error"),
        frozenset(body),
        frozenset(k for k in response.headers if k.lower() != "content-length"),
    )


# --- reset_password: an unknown recipient answers exactly like a known one ------------------

Setup = Callable[[Any, ApiClient, dict[str, Any]], None]


def nothing(api: Any, caller: ApiClient, settings: Any) -> None:
    pass


def recent_reset(api: Any, caller: ApiClient, recipient: dict[str, Any]) -> None:
    api.send({"usage": "reset_password", **recipient}, auth=caller)


def prefix_velocity(api: Any, caller: ApiClient, recipient: dict[str, Any]) -> None:
    for number in NEIGHBOURS[:2]:
        api.send({"usage": "signup", "phone_number": number}, auth=caller)


def unproven_prefix(api: Any, caller: ApiClient, recipient: dict[str, Any]) -> None:
    for number in NEIGHBOURS[:3]:
        api.send({"usage": "signup", "phone_number": number}, auth=caller)


def blocked_prefix(api: Any, caller: ApiClient, recipient: dict[str, Any]) -> None:
    BlockedPrefix.objects.create(
        prefix="861390000", blocked_until=timezone.now() + dt.timedelta(hours=1)
    )
    snapshots.clear_all()


def quota_used_up(api: Any, caller: ApiClient, recipient: dict[str, Any]) -> None:
    Quota.objects.filter(client=caller.client).update(used=1)


def client_limit(api: Any, caller: ApiClient, recipient: dict[str, Any]) -> None:
    api.send({"usage": "signup", "phone_number": NEIGHBOURS[5]}, auth=caller)


SITUATIONS: dict[str, tuple[Setup, dict[str, Any]]] = {
    "fresh": (nothing, {}),
    "recipient limit": (recent_reset, {}),
    "prefix velocity": (prefix_velocity, {"PREFIX_RATE_LIMITS": ["2/m"]}),
    "unproven prefix": (
        unproven_prefix,
        {"CONVERSION_MONITOR": {"NEW_PREFIX_NUMBERS": 2, "MIN_SENDS": 100}},
    ),
    "blocked prefix": (blocked_prefix, {}),
    "quota used up": (quota_used_up, {}),
    "client limit": (client_limit, {"CLIENT_RATE_LIMITS": ["1/m"]}),
    "ip limit": (client_limit, {"IP_RATE_LIMITS": ["1/m"]}),
}


@pytest.mark.parametrize("situation", SITUATIONS)
def test_reset_for_an_unknown_number_answers_like_a_known_one(
    api, client_factory, settings, phone_accounts, sms_outbox, situation
):
    setup, extra = SITUATIONS[situation]
    settings.CIAM_OTP = {**settings.CIAM_OTP, **extra}
    caller = client_factory(sms_quota=1)
    answers = {}
    for name, number in (("known", KNOWN_PHONE), ("unknown", UNKNOWN_PHONE)):
        fresh_state()
        Quota.objects.update(used=0)
        setup(api, caller, {"phone_number": number})
        sent_before = len(sms_outbox)
        used_before = Quota.objects.get().used
        response = api.send({"usage": "reset_password", "phone_number": number}, auth=caller)
        answers[name] = shape(response)
        if name == "unknown":  # sends nothing and consumes nothing, whatever the answer
            assert len(sms_outbox) == sent_before
            assert Quota.objects.get().used == used_before
    assert answers["known"] == answers["unknown"], situation
    if situation == "fresh":
        assert answers["known"][0] == 200
        assert [m.phone_number for m in sms_outbox] == [KNOWN_PHONE]
    else:
        assert answers["known"][0] in (400, 429), answers


@pytest.mark.django_db(transaction=True)  # the publish runs at the send's own commit
def test_reset_for_an_unknown_address_answers_like_a_known_one_with_the_broker_down(
    api, client_factory, broker_down
):
    get_user_model().objects.create(username="known", email="known@example.com")
    caller = client_factory(email_quota=5)
    known = api.send({"usage": "reset_password", "email": "known@example.com"}, auth=caller)
    unknown = api.send({"usage": "reset_password", "email": "nobody@example.com"}, auth=caller)
    assert shape(known) == shape(unknown)
    assert known.status_code == 503
    assert not OTPToken.objects.exists()
    assert Quota.objects.get().used == 0


def test_an_unknown_reset_runs_the_same_statements_as_a_known_one(client_factory):
    """Same SQL, in the same order (values aside): no timing class between them."""
    get_user_model().objects.create(username="known", email="known@example.com")
    caller = client_factory(email_quota=5).client

    def statements(email: str) -> list[str]:
        fresh_state()
        with CaptureQueriesContext(connection) as queries:
            send_otp(caller, usage="reset_password", email=email)
        return [
            re.sub(r"'[^']*'|\b\d+\b|\"s\d+_x\d+\"", "?", q["sql"])
            for q in queries.captured_queries
        ]

    known = statements("known@example.com")
    unknown = statements("nobody@example.com")
    assert known == unknown
    assert any(sql.startswith("UPDATE") and "quota" in sql for sql in known)


def test_an_unknown_reset_publishes_a_task_that_sends_nothing(
    client_factory, django_capture_on_commit_callbacks, mailoutbox
):
    caller = client_factory().client
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = send_otp(caller, usage="reset_password", email="nobody@example.com")
    assert len(callbacks) == 1  # the publish, as for a real reset
    token = OTPToken.objects.get(pk=result.token.pk)
    assert token.delivery_status == DeliveryStatus.SUPPRESSED
    assert mailoutbox == []


# --- is-used answers are charged to the caller ---------------------------------------------


@pytest.mark.parametrize("limit", ["CLIENT_RATE_LIMITS", "IP_RATE_LIMITS"])
@pytest.mark.parametrize("usage", ["signup", "update_userinfo"])
def test_is_used_answers_are_charged_to_the_callers_limits(api, api_client, settings, limit, usage):
    settings.CIAM_OTP = {**settings.CIAM_OTP, limit: ["3/m"]}
    get_user_model().objects.create(username="taken", email="taken@example.com")
    answers = [
        api.send({"usage": usage, "email": "taken@example.com"}, auth=api_client).json()["error"]
        for _ in range(5)
    ]
    assert answers == ["email_is_used"] * 3 + ["rate_limit_exceeded"] * 2
    # ... and a free address now too: the oracle cost the caller its allowance.
    free = api.send({"usage": usage, "email": "free@example.com"}, auth=api_client)
    assert free.status_code == 429
    assert "Retry-After" in free.headers


def test_the_signup_page_is_throttled_too(client, settings):
    """The example project's sign-up page asks the same service with the visitor's IP."""
    use_example_project(settings)
    settings.CIAM_OTP = {**settings.CIAM_OTP, "IP_RATE_LIMITS": ["3/m"]}
    get_user_model().objects.create(username="taken", email="taken@example.com")
    pages = [
        client.post("/signup/", {"recipient": "taken@example.com"}, follow=True).content.decode()
        for _ in range(4)
    ]
    assert all("already" in page for page in pages[:3])
    assert "already" not in pages[3]
    assert "wait" in pages[3].lower() or "too many" in pages[3].lower()


# --- test recipients never shadow accounts ---------------------------------------------------


@pytest.fixture
def test_recipients_on(settings: Any) -> None:
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TEST_RECIPIENTS_ENABLED": True}


def test_a_test_recipient_cannot_be_an_accounts_address(test_recipients_on):
    get_user_model().objects.create(username="alice", email="alice@example.com")
    for typed in ("alice@example.com", "ALICE@Example.com"):
        row = TestRecipient(channel="email", recipient=typed, code="123456")
        with pytest.raises(ValidationError, match="belongs to an account"):
            row.full_clean()
    TestRecipient(channel="email", recipient="reviewer@example.com", code="123456").full_clean()


def test_the_admin_form_refuses_an_accounts_address(test_recipients_on):
    from django_ciam_otp.admin import TestRecipientForm

    get_user_model().objects.create(username="alice", email="alice@example.com")
    form = TestRecipientForm(
        data={"channel": "email", "recipient": "Alice@example.com", "code": "123456"}
    )
    assert not form.is_valid()
    assert "belongs to an account" in str(form.errors)


@pytest.mark.parametrize("usage", ["login", "reset_password"])
def test_a_test_recipient_that_became_an_account_is_an_ordinary_recipient(
    api_client,
    email_source,
    test_recipients_on,
    mailoutbox,
    django_capture_on_commit_callbacks,
    usage,
):
    TestRecipient.objects.create(channel="email", recipient="qa@example.com", code="123456")
    alice = get_user_model().objects.create(username="qa", email="qa@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        result = send_otp(
            api_client.client,
            usage=usage,
            email="qa@example.com",
            auth_source_id=email_source.id if usage == "login" else None,
        )
    assert result.token.is_test is False
    assert [m.to for m in mailoutbox] == [[alice.email]]  # a real code, really sent
    from django_ciam_otp.exceptions import InvalidOTP

    with pytest.raises(InvalidOTP):  # the fixed code is just a wrong code now
        verify_otp(
            api_client.client, result.otp_token, "123456", email="qa@example.com", usage=usage
        )


def test_a_test_token_issued_before_the_account_existed_no_longer_verifies(
    api_client, email_source, test_recipients_on
):
    from django_ciam_otp.exceptions import InvalidOTPToken

    TestRecipient.objects.create(channel="email", recipient="qa@example.com", code="123456")
    result = send_otp(
        api_client.client, usage="login", email="qa@example.com", auth_source_id=email_source.id
    )
    assert result.token.is_test
    get_user_model().objects.create(username="qa", email="qa@example.com")
    with pytest.raises(InvalidOTPToken):
        verify_otp(api_client.client, result.otp_token, "123456", email="qa@example.com")


# --- no one else can use up a person's allowance ---------------------------------------------


def test_verifying_lifts_the_limits_for_that_usage(
    api_client, client_factory, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_RATE_LIMITS": ["1/30s", "2/h", "3/d"]}
    stranger = client_factory()
    with django_capture_on_commit_callbacks(execute=True):
        result = send_otp(stranger.client, usage="signup", email="bob@example.com")
    code = last_code(mailoutbox)
    with pytest.raises(Exception, match="rate limit"):
        send_otp(api_client.client, usage="signup", email="bob@example.com")
    with pytest.raises(Exception, match="rate limit"):  # other usages keep their counters
        send_otp(api_client.client, usage="update_userinfo", email="bob@example.com")
        send_otp(api_client.client, usage="update_userinfo", email="bob@example.com")
    verify_otp(stranger.client, result.otp_token, code, email="bob@example.com", usage="signup")
    # Bob proved the address: his own site may send him a sign-up code at once.
    send_otp(api_client.client, usage="signup", email="bob@example.com")


def last_code(outbox: list[Any]) -> str:
    import re

    found = re.findall(r"\b(\d{6})\b", outbox[-1].body)
    assert found, outbox[-1].body
    return found[0]


def test_one_clients_share_of_a_recipients_allowance(api, client_factory, settings):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "EMAIL_RATE_LIMITS": ["4/h"],
        "RECIPIENT_SHARE_PER_CLIENT": 0.5,
    }
    greedy, other = client_factory(), client_factory()
    body = {"usage": "signup", "email": "carol@example.com"}
    answers = [api.send(body, auth=greedy).status_code for _ in range(3)]
    assert answers == [200, 200, 400]  # half of 4 per hour
    assert [api.send(body, auth=other).status_code for _ in range(3)] == [200, 200, 400]


def test_the_share_is_off_by_default(api, api_client, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_RATE_LIMITS": ["4/h"]}
    body = {"usage": "signup", "email": "carol@example.com"}
    assert [api.send(body, auth=api_client).status_code for _ in range(5)] == [200] * 4 + [400]


# --- sub-addresses share one allowance --------------------------------------------------------


def test_plus_tags_share_the_per_address_limits(api, api_client, mailoutbox):
    first = api.send({"usage": "signup", "email": "dave+1@example.com"}, auth=api_client)
    second = api.send({"usage": "signup", "email": "dave+2@example.com"}, auth=api_client)
    third = api.send({"usage": "signup", "email": "DAVE@example.com"}, auth=api_client)
    assert first.status_code == 200
    assert second.json()["error"] == third.json()["error"] == "email_rate_limit_exceeded"
    assert [m.to for m in mailoutbox] == [["dave+1@example.com"]]  # delivered as typed


def test_a_plus_tag_is_still_its_own_identity(api_client, django_capture_on_commit_callbacks):
    from django_ciam_otp.exceptions import InvalidOTPToken

    result = send_otp(api_client.client, usage="signup", email="erin+x@example.com")
    with pytest.raises(InvalidOTPToken):  # the token is bound to the exact address
        verify_otp(api_client.client, result.otp_token, "000000", email="erin@example.com")


# --- inside the caller's transaction (ATOMIC_REQUESTS) -----------------------------------------


def test_inside_an_outer_transaction_a_dead_broker_is_reported_and_leaves_nothing(
    client_factory, broker_down, monkeypatch
):
    caller = client_factory(sms_quota=5)
    with transaction.atomic():
        with pytest.raises(TemporarilyUnavailable):
            send_otp(caller.client, usage="signup", phone_number=KNOWN_PHONE)
        assert not OTPToken.objects.exists()
        assert Quota.objects.get().used == 0
        # The caller's transaction is still usable, and nothing was counted:
        # with the broker back, the same send is not refused by the 30-second limit.
        monkeypatch.undo()
        send_otp(caller.client, usage="signup", phone_number=KNOWN_PHONE)
    assert Quota.objects.get().used == 1


def test_inside_an_outer_transaction_a_send_is_delivered_once(client_factory, sms_outbox):
    caller = client_factory(sms_quota=5)
    with transaction.atomic():
        result = send_otp(caller.client, usage="signup", phone_number=KNOWN_PHONE)
    assert [m.phone_number for m in sms_outbox] == [KNOWN_PHONE]
    assert OTPToken.objects.get(pk=result.token.pk).delivery_status == DeliveryStatus.SENT
    assert Quota.objects.get().used == 1


def test_a_task_published_before_its_token_committed_looks_again(db):
    from django_ciam_otp import crypto, delivery

    waiting = crypto.seal({"h": "0" * 16, "c": "123456", "r": KNOWN_PHONE, "w": 1})
    outcome = delivery.deliver(987654, waiting)
    assert outcome is not None and outcome.counts is False and outcome.countdown < 1
    last = delivery.deliver(987654, waiting, attempt=delivery.UNSEEN_TOKEN_TRIES)
    assert last is None  # the caller's transaction rolled back: nothing to send
    plain = crypto.seal({"h": "0" * 16, "c": "123456", "r": KNOWN_PHONE})
    assert delivery.deliver(987654, plain) is None


def test_verifying_clears_the_limits_once_a_day_not_every_time(
    api_client, mailoutbox, django_capture_on_commit_callbacks, settings
):
    """Whoever receives the codes can verify them: clearing must not lift the limits for good."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_RATE_LIMITS": ["2/d"]}
    caller = api_client.client

    def send_and_verify() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            sent = send_otp(caller, usage="signup", email="pump@example.com")
        verify_otp(
            caller, sent.otp_token, last_code(mailoutbox), email="pump@example.com", usage="signup"
        )

    send_and_verify()
    send_and_verify()  # the first verification cleared the counter: allowed again
    send_and_verify()
    with pytest.raises(Exception, match="rate limit"):  # the second cleared nothing
        send_otp(caller, usage="signup", email="pump@example.com")
