"""The send's quota and its token in one statement (``Quota.objects.consume_and_insert``).

PostgreSQL alone has the data-modifying ``WITH`` the statement is, so these
run here: the row it writes is the row ``save()`` writes, a value too long for
its column fails instead of being cut, a refusal writes nothing (with no
transaction around it to roll back), concurrent sends never over-send with or
without one, a send outside a transaction makes no ``BEGIN`` and ``COMMIT``,
and ``post_save`` still comes (a ``pre_save`` receiver sends the token the
usual way instead, as it must see the row first).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from django.db import DataError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ciam_otp.exceptions import InsufficientEmailQuota, InsufficientSMSQuota
from django_ciam_otp.flows.quotas import consume_quota_and_store
from django_ciam_otp.models import OTPClient, OTPToken, Quota
from tests.conftest import Api, ApiClient

from .test_transitions import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def owner() -> OTPClient:
    return OTPClient.objects.create(name="c", client_id="c")


def new_token(owner: OTPClient, channel: str = "sms", **fields: Any) -> OTPToken:
    """A token as the send builds one: every field that matters set, nothing saved."""
    now = timezone.now()
    values: dict[str, Any] = {
        "token_hash": f"t-{now.timestamp()}-{id(fields)}",
        "client": owner,
        "channel": channel,
        "usage": "login",
        "recipient_hash": "r" * 64,
        "recipient_masked": "+86 136****5678",
        "code_hash": "h" * 64,
        "code_length": 6,
        "code_expires_at": now + dt.timedelta(seconds=60),
        "expires_at": now + dt.timedelta(seconds=300),
        "language": "zh-hans",
        "delivery_envelope": "sealed",
        "created_at": now,
        **fields,
    }
    return OTPToken(**values)


def statements(queries: CaptureQueriesContext) -> list[str]:
    """What was sent, without the transaction's own ``BEGIN`` and ``COMMIT``."""
    return [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]


def stored(pk: int) -> dict[str, Any]:
    row = OTPToken.objects.filter(pk=pk).values().get()
    del row["id"], row["token_hash"]
    return row


def test_the_row_written_is_the_row_save_writes(owner):
    Quota.objects.create(client=owner, channel="sms", limit=10)
    created = timezone.now().replace(microsecond=123456)
    fields = {
        "created_at": created,
        "code_expires_at": created + dt.timedelta(seconds=60),
        "expires_at": created + dt.timedelta(seconds=300),
        "fee": None,
        "auth_source_id": None,
        "is_test": True,
    }
    by_save = new_token(owner, token_hash="a", quota_consumed=True, **fields)
    by_save.save(force_insert=True)
    with transaction.atomic():
        by_statement = new_token(owner, token_hash="b", **fields)
        Quota.objects.consume_and_insert(
            owner.pk, "sms", by_statement, count=1, flag="quota_consumed"
        )
    assert by_statement.pk is not None and not by_statement._state.adding
    assert by_statement.quota_consumed is True
    assert stored(by_statement.pk) == stored(by_save.pk)


@pytest.mark.parametrize(
    "name",
    [
        f.name
        for f in OTPToken._meta.concrete_fields
        if getattr(f, "max_length", None) and not f.is_relation
    ],
)
def test_a_value_too_long_fails_instead_of_being_cut(owner, name):
    """The statement casts its values (a ``SELECT`` list has no column type): never to a length."""
    field = OTPToken._meta.get_field(name)
    token = new_token(owner, **{name: "x" * (field.max_length + 1)})
    with pytest.raises(DataError), transaction.atomic():
        Quota.objects.consume_and_insert(owner.pk, "sms", token, count=1, flag="quota_consumed")
    assert not OTPToken.objects.exists()


@pytest.mark.parametrize("count", [1, 0])
def test_a_refusal_writes_nothing(owner, count):
    """Outside any transaction: nothing is rolled back, the statement changed nothing."""
    Quota.objects.create(client=owner, channel="email", limit=3, used=3)
    Quota.objects.create(client=None, channel="email", limit=100, used=7)
    assert not connection.in_atomic_block
    with pytest.raises(InsufficientEmailQuota):
        Quota.objects.consume_and_insert(
            owner.pk, "email", new_token(owner, "email"), count=count, flag="quota_consumed"
        )
    assert not OTPToken.objects.exists()
    assert sorted(Quota.objects.values_list("used", flat=True)) == [3, 7]


def test_a_period_that_rolled_over_starts_again(owner):
    """The new count and period start are worked out from the locked row, then written."""
    long_ago = timezone.now() - dt.timedelta(days=3)
    quota = Quota.objects.create(
        client=owner, channel="sms", limit=5, used=5, period="daily", period_start=long_ago
    )
    token = new_token(owner)
    taken = Quota.objects.consume_and_insert(owner.pk, "sms", token, count=1, flag="quota_consumed")
    quota.refresh_from_db()
    assert quota.used == 1 and quota.period_start > long_ago
    assert [(q.pk, q.used, q.period_start) for q in taken] == [(quota.pk, 1, quota.period_start)]


def test_a_zero_limit_refuses_and_no_quota_allows(owner):
    with transaction.atomic():
        free = new_token(owner)
        assert (
            Quota.objects.consume_and_insert(owner.pk, "sms", free, count=1, flag="quota_consumed")
            == []
        )
    assert free.quota_consumed is False and OTPToken.objects.filter(pk=free.pk).exists()
    Quota.objects.create(client=None, channel="sms", limit=0)
    with pytest.raises(InsufficientSMSQuota), transaction.atomic():
        Quota.objects.consume_and_insert(
            owner.pk, "sms", new_token(owner), count=1, flag="quota_consumed"
        )
    assert OTPToken.objects.count() == 1


def test_a_check_takes_nothing_and_marks_no_quota_consumed(owner):
    """``count=0`` (a reset for an address without an account): the room is checked, no more."""
    Quota.objects.create(client=owner, channel="sms", limit=5, used=4)
    with transaction.atomic():
        token = new_token(owner)
        Quota.objects.consume_and_insert(owner.pk, "sms", token, count=0, flag="quota_consumed")
    assert Quota.objects.get().used == 4
    assert OTPToken.objects.get(pk=token.pk).quota_consumed is False


@pytest.mark.parametrize("in_transaction", [False, True])
def test_concurrent_sends_never_over_send(owner, in_transaction):
    """Each statement waits on the quota rows' locks and reads them as the send before left them."""
    Quota.objects.create(client=owner, channel="sms", limit=5)
    Quota.objects.create(client=None, channel="sms", limit=7, used=1)

    def send() -> int:
        with transaction.atomic() if in_transaction else contextlib.nullcontext():
            taken = Quota.objects.consume_and_insert(
                owner.pk, "sms", new_token(owner), count=1, flag="quota_consumed"
            )
        return len(taken)

    answers = race(send)
    assert answers.count(2) == 5
    assert all(isinstance(a, InsufficientSMSQuota) for a in answers if a != 2)
    assert sorted(Quota.objects.values_list("used", flat=True)) == [5, 6]
    assert OTPToken.objects.filter(quota_consumed=True).count() == 5


def test_the_send_stores_its_token_in_the_quota_statement(owner):
    Quota.objects.create(client=owner, channel="sms", limit=5)
    token = new_token(owner)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        consume_quota_and_store(owner, token, count=1)
    sent = statements(queries)
    assert len(sent) == 1 and sent[0].startswith("WITH locked AS (SELECT")
    assert OTPToken.objects.get(pk=token.pk).quota_consumed is True


def test_a_send_outside_a_transaction_opens_none(
    api: Api, api_client: ApiClient, sms_source: Any, sms_outbox: list[Any]
) -> None:
    """The client look-up and the quota-and-token statement: no ``BEGIN``, no ``COMMIT``."""
    Quota.objects.create(client=None, channel="sms", limit=5)
    body = {"usage": "login", "phone_number": "13612345678", "auth_source_id": sms_source.id}
    with CaptureQueriesContext(connection) as queries:
        response = api.send(body, auth=api_client)
    assert response.status_code == 200, response.content
    sent = [q["sql"].split()[0] for q in queries.captured_queries]
    assert "BEGIN" not in sent and "COMMIT" not in sent
    assert [q["sql"] for q in queries.captured_queries if "ciam_otp_quota" in q["sql"]] == [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH locked")
    ]
    assert Quota.objects.get().used == 1
    assert OTPToken.objects.get().quota_consumed is True


def test_post_save_comes_as_after_save(owner):
    seen: list[tuple[Any, ...]] = []

    def receiver(sender: Any, instance: OTPToken, created: bool, **kwargs: Any) -> None:
        seen.append((sender, instance.pk, created, kwargs["using"], kwargs["raw"]))

    post_save.connect(receiver, sender=OTPToken)
    try:
        with transaction.atomic():
            token = new_token(owner)
            consume_quota_and_store(owner, token, count=1)
    finally:
        post_save.disconnect(receiver, sender=OTPToken)
    assert seen == [(OTPToken, token.pk, True, "default", False)]


def test_a_pre_save_receiver_sees_the_token_before_it_is_written(owner):
    """It may change the row, so the token is saved the usual way (two statements)."""

    def receiver(sender: Any, instance: OTPToken, **kwargs: Any) -> None:
        instance.language = "fr"

    pre_save.connect(receiver, sender=OTPToken)
    try:
        assert not Quota.objects.can_insert_with(OTPToken, "default")
        Quota.objects.create(client=owner, channel="sms", limit=5)
        token = new_token(owner)
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            consume_quota_and_store(owner, token, count=1)
    finally:
        pre_save.disconnect(receiver, sender=OTPToken)
    assert Quota.objects.can_insert_with(OTPToken, "default")
    assert [s.split()[0] for s in statements(queries)] == ["UPDATE", "INSERT"]
    stored_token = OTPToken.objects.get(pk=token.pk)
    assert (stored_token.language, stored_token.quota_consumed) == ("fr", True)
