"""What one send costs, and the rules each shortcut on the send path must keep.

The send path runs only the statements and round trips that earn their place
(``bench/probe.py`` measures them on the live stack; the Redis side is in
``tests/integration/test_redis_counters.py``). These tests pin the counts, so
a regression fails a test, and pin what each cut must not change: the
per-process table copies (``snapshots.py``) and how stale they may be, the
one-statement quota, the verify-side check behind a skipped supersede, and a
``retry_after`` that is always long enough.
"""

from __future__ import annotations

import datetime as dt
import re
from unittest import mock

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ciam_otp import abuse, counters, crypto, flows, snapshots, sql, tasks
from django_ciam_otp.exceptions import InsufficientSMSQuota, InvalidOTPToken
from django_ciam_otp.flows import quotas
from django_ciam_otp.models import AuthSource, BlockedPrefix, OTPToken, Quota, TokenStatus

PHONES = [f"1361234{n:04d}" for n in range(10)]  # one prefix block: 861361234
START = dt.datetime(2025, 5, 1, 8, 0, tzinfo=dt.UTC)


def statement(sql: str) -> str:
    """``UPDATE "ciam_otp_quota" SET ...`` -> ``UPDATE ciam_otp_quota``; ``BEGIN`` -> ``BEGIN``."""
    verb = sql.split(None, 1)[0].upper()
    match = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql)
    return f"{verb} {match.group(1)}" if match else verb


def login(phone: str, source: AuthSource) -> dict[str, str]:
    return {"usage": "login", "phone_number": phone, "auth_source_id": source.id}


@pytest.fixture
def no_delivery():
    """Tasks run eagerly in the tests; production publishes them (one broker round trip).

    Yields the batch task's publish (``dispatch.wake``); a task of a token's own
    (``deliver_otp``) is not published outside a caller's transaction.
    """
    with (
        mock.patch.object(tasks.deliver_due, "apply_async") as publish,
        mock.patch.object(tasks.deliver_otp, "apply_async") as own_task,
    ):
        yield publish
    assert not own_task.called


# --- the statements of one send --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_one_send_is_five_statements(api, client_factory, sms_source, no_delivery):
    """Client look-up (the baseline pays it too), one quota UPDATE, the INSERT.

    No auth source and no blocked-prefix look-up (per-process copies), one
    ``UPDATE ... RETURNING`` for the client's and the site-wide quota, and no
    supersede UPDATE for a first send to a recipient: the "sent lately" marker
    proves nothing older can be pending. Every cache runs the same count plan
    (``counters/``), so the fast suite's local-memory cache skips it as Redis
    does (it used to run it on every send: only the Redis path had the marker).
    """
    api_client = client_factory(sms_quota=100)
    Quota.objects.create(client=None, channel="sms", limit=100)
    assert api.send(login(PHONES[0], sms_source), auth=api_client).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = api.send(login(PHONES[1], sms_source), auth=api_client)
    assert response.status_code == 200, response.content
    assert [statement(q["sql"]) for q in queries.captured_queries] == [
        "SELECT ciam_otp_otpclient",
        "BEGIN",
        "UPDATE ciam_otp_quota",
        "INSERT ciam_otp_otptoken",
        "COMMIT",
    ], [q["sql"] for q in queries.captured_queries]
    assert list(Quota.objects.order_by("pk").values_list("used", flat=True)) == [2, 2]
    # The first send woke the batch task; the second found that wake-up still pending.
    assert no_delivery.call_count == 1


@pytest.mark.django_db(transaction=True)
def test_only_a_resend_supersedes(api, api_client, sms_source, no_delivery, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": []}
    supersede = "UPDATE ciam_otp_otptoken"
    done = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert api.send(login(PHONES[0], sms_source), auth=api_client).status_code == 200
        done.append([statement(q["sql"]) for q in queries.captured_queries])
    assert supersede not in done[0]
    assert done[1][-1] == supersede
    assert list(OTPToken.objects.order_by("pk").values_list("status", flat=True)) == [
        TokenStatus.SUPERSEDED,
        TokenStatus.PENDING,
    ]


def test_inside_a_transaction_the_tables_are_read(api, api_client, sms_source, no_delivery):
    """In a transaction the copies are neither used nor filled (it may see its own rows)."""
    api.send(login(PHONES[0], sms_source), auth=api_client)
    with CaptureQueriesContext(connection) as queries:
        assert api.send(login(PHONES[1], sms_source), auth=api_client).status_code == 200
    tables = {statement(q["sql"]) for q in queries.captured_queries}
    assert {"SELECT ciam_otp_authsource", "SELECT ciam_otp_blockedprefix"} <= tables


# --- the per-process copies of auth sources and blocked prefixes -----------------------------


@pytest.fixture
def clock():
    """``time.monotonic`` as the table copies see it."""
    now = [1000.0]
    with mock.patch.object(snapshots.time, "monotonic", side_effect=lambda: now[0]):
        yield now


@pytest.mark.django_db(transaction=True)
def test_an_auth_source_changed_elsewhere_applies_within_lookup_cache_seconds(
    api, api_client, sms_source, no_delivery, clock
):
    assert api.send(login(PHONES[0], sms_source), auth=api_client).status_code == 200
    # Another process disables it (no signal reaches this one).
    AuthSource.objects.filter(pk=sms_source.pk).update(enabled=False)
    clock[0] += 4.9
    assert api.send(login(PHONES[1], sms_source), auth=api_client).status_code == 200
    clock[0] += 0.2  # LOOKUP_CACHE_SECONDS (5) after the copy was taken
    response = api.send(login(PHONES[2], sms_source), auth=api_client)
    assert response.json()["error"] == "invalid_auth_source"


@pytest.mark.django_db(transaction=True)
def test_an_auth_source_saved_in_this_process_applies_at_once(
    api, api_client, sms_source, no_delivery, clock
):
    assert api.send(login(PHONES[0], sms_source), auth=api_client).status_code == 200
    sms_source.enabled = False
    sms_source.save()  # the admin's change form
    assert api.send(login(PHONES[1], sms_source), auth=api_client).json()["error"] == (
        "invalid_auth_source"
    )
    AuthSource.objects.filter(pk=sms_source.pk).update(enabled=True)
    snapshots.table_changed(AuthSource)  # the admin's enable action
    assert api.send(login(PHONES[2], sms_source), auth=api_client).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_no_copies_with_lookup_cache_seconds_zero(api, api_client, sms_source, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "LOOKUP_CACHE_SECONDS": 0}
    assert api.send(login(PHONES[0], sms_source), auth=api_client).status_code == 200
    AuthSource.objects.filter(pk=sms_source.pk).update(enabled=False)
    assert api.send(login(PHONES[1], sms_source), auth=api_client).json()["error"] == (
        "invalid_auth_source"
    )


@pytest.mark.django_db(transaction=True)
def test_blocks_and_unblocks(api, api_client, sms_source, no_delivery, clock):
    """A block saved here applies at once, one from elsewhere within 5 s; unblocking at once."""
    assert api.send(login(PHONES[0], sms_source), auth=api_client).status_code == 200
    abuse.block_prefix("861361234", abuse.Conversion(10, 0))  # this process's monitor
    refused = api.send(login(PHONES[1], sms_source), auth=api_client)
    assert refused.status_code == 429
    assert 3500 < int(refused["Retry-After"]) <= 3601

    abuse.unblock_prefix("861361234")  # the admin's action
    assert api.send(login(PHONES[2], sms_source), auth=api_client).status_code == 200

    # Another process blocks it (no signal reaches this one).
    BlockedPrefix.objects.filter(prefix="861361234").update(
        blocked_until=timezone.now() + dt.timedelta(hours=1)
    )
    assert api.send(login(PHONES[3], sms_source), auth=api_client).status_code == 200
    clock[0] += 5.1
    assert api.send(login(PHONES[4], sms_source), auth=api_client).status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_copy_read_before_a_change_is_not_kept(sms_source):
    """A load that raced with a save (another thread) must not outlive the save."""
    loaded = []

    def slow_load() -> dict[str, AuthSource]:
        value = {s.pk: s for s in AuthSource.objects.filter(enabled=True)}
        snapshots.auth_sources.clear()  # a save lands while this thread was reading
        loaded.append(value)
        return value

    with mock.patch.object(snapshots.auth_sources, "_load", side_effect=slow_load):
        snapshots.auth_sources.get()
        snapshots.auth_sources.get()
    assert len(loaded) == 2  # the first read was not kept


# --- quotas in one statement --------------------------------------------------------------


@pytest.fixture(params=["update-returning", "select-then-update"])
def quota_path(request):
    """Both ways of consuming quota: one UPDATE ... RETURNING, and the fallback for other DBs."""
    supported = request.param == "update-returning"
    with mock.patch.object(sql, "update_returning_supported", return_value=supported):
        yield request.param


@pytest.mark.django_db
def test_a_refusing_quota_rolls_back_the_other(client_factory, quota_path):
    client = client_factory(sms_quota=1).client
    Quota.objects.filter(client=client).update(used=1)
    Quota.objects.create(client=None, channel="sms", limit=10)
    with pytest.raises(InsufficientSMSQuota), transaction.atomic():
        quotas.consume_quota(client, "sms")
    assert sorted(Quota.objects.values_list("used", flat=True)) == [0, 1]


@pytest.mark.django_db(transaction=True)
def test_consume_quota_outside_a_transaction_keeps_nothing_on_refusal(client_factory, quota_path):
    client = client_factory(sms_quota=5).client
    Quota.objects.create(client=None, channel="sms", limit=0)
    with pytest.raises(InsufficientSMSQuota):
        quotas.consume_quota(client, "sms")
    assert sorted(Quota.objects.values_list("used", flat=True)) == [0, 0]
    Quota.objects.filter(client=None).update(limit=3)
    assert quotas.consume_quota(client, "sms") is True
    assert sorted(Quota.objects.values_list("used", flat=True)) == [1, 1]


@pytest.mark.django_db
def test_no_quota_means_nothing_consumed(client_factory, quota_path):
    assert quotas.consume_quota(client_factory().client, "sms") is False


@pytest.mark.django_db
def test_a_daily_quota_starts_again_the_next_day(client_factory, quota_path):
    with time_machine.travel(START, tick=False) as clock:  # 16:00 in Asia/Shanghai
        client = client_factory(sms_quota=2, quota_period="daily").client
        for _ in range(2):
            quotas.consume_quota(client, "sms")
        with pytest.raises(InsufficientSMSQuota), transaction.atomic():
            quotas.consume_quota(client, "sms")
        clock.shift(dt.timedelta(hours=9))  # 01:00 the next day, local time
        assert quotas.consume_quota(client, "sms") is True
        quota = Quota.objects.get()
        assert quota.used == 1
        assert quota.period_start == dt.datetime(2025, 5, 1, 16, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_quota_alarms_come_from_the_returned_counts(
    client_factory, quota_path, django_capture_on_commit_callbacks
):
    """Only a send that reaches a threshold (80 %, 100 %) queues the alarm check."""
    client = client_factory(sms_quota=5).client
    Quota.objects.create(client=None, channel="sms", limit=1000)
    seen = []
    with mock.patch.object(quotas, "_quota_alarm", side_effect=lambda q, u, p: seen.append(u)):
        for _ in range(5):
            with django_capture_on_commit_callbacks(execute=True):
                quotas.consume_quota(client, "sms")
    assert seen == [4, 5]


# --- a skipped supersede never lets an older code verify --------------------------------------


@pytest.mark.django_db
def test_an_older_token_is_refused_even_if_nothing_superseded_it(
    api_client, sms_outbox, settings, django_capture_on_commit_callbacks
):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": []}
    sent = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            result = flows.send_otp(api_client.client, usage="signup", phone_number=PHONES[0])
        sent.append((result, sms_outbox[-1].code))
    (older, older_code), (newer, newer_code) = sent
    # As if the supersede UPDATE had been skipped (its marker lost with a Redis restart).
    OTPToken.objects.filter(pk=older.token.pk).update(status=TokenStatus.PENDING)
    with pytest.raises(InvalidOTPToken):
        flows.verify_otp(
            api_client.client, older.otp_token, older_code, phone_number=PHONES[0], usage="signup"
        )
    verified = flows.verify_otp(
        api_client.client, newer.otp_token, newer_code, phone_number=PHONES[0], usage="signup"
    )
    assert verified.token.pk == newer.token.pk


# --- retry_after -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.999])
def test_waiting_retry_after_always_suffices_and_one_second_less_does_not(
    api, api_client, fraction
):
    body = {"usage": "signup", "phone_number": PHONES[0]}
    start = START + dt.timedelta(seconds=fraction)
    with time_machine.travel(start, tick=False) as clock:
        first = api.send(body, auth=api_client)
        wait = first.json()["retry_after"]
        assert 1 <= wait <= 31
        clock.move_to(start + dt.timedelta(seconds=wait - 1))
        refused = api.send(body, auth=api_client)
        assert refused.json()["error"] == "sms_rate_limit_exceeded"
        assert refused.json()["retry_after"] == int(refused["Retry-After"])
        at = start + dt.timedelta(seconds=wait - 1)
        clock.move_to(at + dt.timedelta(seconds=int(refused["Retry-After"]) - 1))
        assert api.send(body, auth=api_client).status_code == 400  # one second short
        clock.move_to(start + dt.timedelta(seconds=wait))
        assert api.send(body, auth=api_client).status_code == 200


def test_wait_for_counts_the_last_second_of_the_window():
    with time_machine.travel(dt.datetime.fromtimestamp(100.5, dt.UTC), tick=False):
        assert counters.wait_for(130) == 31  # the window holds through second 130
        assert counters.wait_for(100) == 1
        assert counters.wait_for(90) == 1


# --- the conversion monitor and a cache that is down --------------------------------------------


@pytest.mark.django_db  # a verification also looks for a block to lift (in the table)
def test_the_monitor_leaves_a_cache_that_is_down_alone():
    counters.trip_breaker()
    with mock.patch.object(counters.store, "get_store", side_effect=AssertionError("cache asked")):
        abuse.record_send("861361234", None)
        abuse.record_verification("861361234", 1)
        abuse.unblock_prefix("861361234")
        assert abuse.conversion("prefix:861361234") == abuse.Conversion(0, 0)


@pytest.mark.django_db  # a verification also looks for a block to lift (in the table)
def test_a_failing_cache_trips_the_breaker_for_the_monitor_too():
    broken = mock.Mock()
    broken.add.side_effect = ConnectionError("redis down")
    with mock.patch.object(counters.store, "counter_cache", return_value=broken):
        abuse.record_verification("861361234", 1)  # never fails a verification
    assert counters.cache_is_down()
    assert broken.add.call_count == 1  # the prefix's counter was not tried after the failure


# --- publishing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_wake_up_names_no_token_secret_and_the_row_holds_the_envelope_sealed(
    api_client, no_delivery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = flows.send_otp(api_client.client, usage="signup", phone_number=PHONES[0])
    kwargs = no_delivery.call_args.kwargs
    assert kwargs["args"] == () and "expires" not in kwargs
    assert kwargs["retry"] is True and kwargs["retry_policy"]["max_retries"] == 2
    token = OTPToken.objects.get()
    assert str(token.pk) in kwargs["argsrepr"]
    payload = crypto.unseal(token.delivery_envelope)
    assert payload["r"] == "+86" + PHONES[0] and payload["h"] == token.token_hash[:16]
    # Sealed: the number does not appear in the stored text (nor, by the same seal, the code).
    assert PHONES[0] not in token.delivery_envelope
    assert answer.otp_token not in token.delivery_envelope


@pytest.mark.django_db
def test_a_task_of_its_own_keeps_the_envelope_out_of_celery_logs(
    api_client, django_capture_on_commit_callbacks, settings
):
    """Outside the outbox (here: a database without ``UPDATE … RETURNING``)."""
    with (
        mock.patch.object(tasks.deliver_otp, "apply_async") as publish,
        mock.patch.object(sql, "update_returning_supported", return_value=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        flows.send_otp(api_client.client, usage="signup", phone_number=PHONES[0])
    kwargs = publish.call_args.kwargs
    token_pk, envelope = kwargs["args"]
    assert envelope not in kwargs["argsrepr"] and str(token_pk) in kwargs["argsrepr"]
    assert kwargs["retry"] is True and kwargs["retry_policy"]["max_retries"] == 2
    assert OTPToken.objects.get().delivery_envelope == ""
