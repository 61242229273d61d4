"""POST /otp/send through HTTP: every usage and channel, every error code, the order of checks."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from django.contrib.auth import get_user_model

from django_ciam_otp.models import DeliveryStatus, OTPToken, Quota, TokenStatus

pytestmark = pytest.mark.django_db

PHONE = "13612345678"
E164 = "+8613612345678"
EMAIL = "MOCK_USERNAME@example.com"


def error_of(response) -> str:
    assert response["Content-Type"] == "application/json;charset=UTF-8", response["Content-Type"]
    body = response.json()
    assert set(body) <= {"error", "error_description", "retry_after", "attempts_remaining"}
    return body["error"]


# --- every usage x channel -------------------------------------------------------


@pytest.mark.parametrize("usage", ["login", "signup", "update_userinfo", "reset_password"])
def test_sms_every_usage(api, api_client, sms_source, sms_outbox, usage):
    if usage == "reset_password":
        get_user_model().objects.create(username="u", email="x@example.com")
    body = {"usage": usage, "phone_number": PHONE}
    if usage == "login":
        body["auth_source_id"] = sms_source.id
    response = api.send(body, auth=api_client)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    token = response.json()["otp_token"]
    assert len(token) >= 22  # >= 128 bits in URL-safe base64
    stored = OTPToken.objects.get()
    assert stored.usage == usage
    assert stored.channel == "sms"
    if usage == "reset_password":
        # no user has this phone (no phone field configured): nothing is sent
        assert sms_outbox == []
        assert stored.delivery_status == DeliveryStatus.SUPPRESSED
    else:
        assert [m.phone_number for m in sms_outbox] == [E164]
        assert stored.delivery_status == DeliveryStatus.SENT


@pytest.mark.parametrize("usage", ["login", "signup", "update_userinfo", "reset_password"])
def test_email_every_usage(api, api_client, email_source, mailoutbox, usage):
    if usage == "reset_password":
        get_user_model().objects.create(username="mock", email="mock_username@EXAMPLE.com")
    body = {"usage": usage, "email": EMAIL}
    if usage == "login":
        body["auth_source_id"] = email_source.id
    response = api.send(body, auth=api_client)
    assert response.status_code == 200, response.content
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    # A reset code goes to the address stored on the account: its local part as spelled
    # there, its domain in IDNA ASCII form.
    assert message.to == ["mock_username@example.com" if usage == "reset_password" else EMAIL]
    code_hash = OTPToken.objects.get().code_hash
    assert code_hash not in message.body


def test_usage_defaults_to_login(api, api_client, sms_source, sms_outbox):
    response = api.send({"phone_number": PHONE, "auth_source_id": sms_source.id}, auth=api_client)
    assert response.status_code == 200
    assert OTPToken.objects.get().usage == "login"


# --- client authentication --------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b"TEST_CLIENT_ID:wrong").decode(),
        "Basic " + base64.b64encode(b"unknown:TEST_CLIENT_SECRET").decode(),
        "Basic " + base64.b64encode(b":TEST_CLIENT_SECRET").decode(),
        "Basic " + base64.b64encode(b"TEST_CLIENT_ID:").decode(),
        "Basic " + base64.b64encode(b"a\x00b:c").decode(),
        "Basic " + base64.b64encode(b"%ZZ:%ZZ").decode(),
    ],
)
def test_bad_credentials_are_invalid_client(api, api_client, sms_source, header):
    response = api.send({"phone_number": PHONE, "auth_source_id": sms_source.id}, auth=header)
    assert response.status_code == 401
    assert error_of(response) == "invalid_client"
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not OTPToken.objects.exists()


def test_disabled_client_is_invalid_client(api, api_client, sms_source):
    api_client.client.enabled = False
    api_client.client.save()
    response = api.send({"phone_number": PHONE, "auth_source_id": sms_source.id}, auth=api_client)
    assert response.status_code == 401
    assert error_of(response) == "invalid_client"


@pytest.mark.parametrize(
    "client_id,secret",
    [
        ("id:with:colons", "secret:with:colons"),
        ("per%cent", "pl+us and space"),
        ("客户端", "密钥 ünïcödé"),
        ("a b+c%20d", "%2B:+"),
    ],
)
def test_special_characters_in_credentials(api, client_factory, sms_source, client_id, secret):
    api_client = client_factory(client_id=client_id, client_secret=secret)
    response = api.send({"phone_number": PHONE, "auth_source_id": sms_source.id}, auth=api_client)
    assert response.status_code == 200, response.content


def test_seed_sample_credentials_encoding(api, client_factory, sms_source):
    client_factory(client_id="TENANT_CLIENT_ID", client_secret="TENANT_CLIENT_SECRET")
    response = api.send(
        {"usage": "login", "phone_number": PHONE, "auth_source_id": sms_source.id},
        auth="Basic VEVOQU5UX0NMSUVOVF9JRDpURU5BTlRfQ0xJRU5UX1NFQ1JFVA==",
    )
    assert response.status_code == 200


# --- shape -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a string",
        42,
        None,
        {},
        {"usage": "logout", "phone_number": PHONE},
        {"usage": 1, "phone_number": PHONE},
        {"usage": "signup"},
        {"usage": "signup", "phone_number": PHONE, "email": EMAIL},
        {"usage": "login", "phone_number": PHONE},
        {"usage": "signup", "phone_number": 13612345678},
        {"usage": "signup", "email": ["a@example.com"]},
        {"usage": "login", "phone_number": PHONE, "auth_source_id": 7},
        {"usage": "login", "phone_number": PHONE, "auth_source_id": {"id": "x"}},
    ],
)
def test_invalid_request_shapes(api, api_client, sms_source, body):
    response = api.send(body, auth=api_client)
    assert response.status_code == 400, response.content
    assert error_of(response) == "invalid_request"
    assert not OTPToken.objects.exists()


@pytest.mark.parametrize("raw", ["{", "{'a': 1}", '{"a": NaN}', "\xff"])
def test_unparseable_json_is_invalid_request(api, api_client, raw):
    response = api.send(raw, auth=api_client)
    assert response.status_code == 400
    assert error_of(response) == "invalid_request"


def test_not_json_is_415(api, api_client):
    response = api.post(
        "/otp/send",
        "phone_number=13612345678",
        auth=api_client,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert error_of(response) == "invalid_request"


def test_wrong_method_is_405(client, api_client):
    response = client.get("/otp/send", HTTP_AUTHORIZATION=api_client.authorization)
    assert response.status_code == 405
    assert error_of(response) == "invalid_request"


def test_unknown_otp_path_is_json_404(client):
    response = client.post("/otp/nothing-here")
    assert response.status_code == 404
    assert error_of(response) == "invalid_request"


# --- recipients -------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "1361234567",  # 10 digits
        "136123456789",  # 12 digits
        "12012345678",  # no such mobile prefix
        "01012345678",  # a Beijing landline
        "+1 202 555 0143",  # another region, not enabled
        "136-ABCD-5678",  # letters
        "",
        "   ",
        "+",
        "1" * 200,
    ],
)
def test_malformed_phone_numbers(api, api_client, phone):
    response = api.send({"usage": "signup", "phone_number": phone}, auth=api_client)
    assert response.status_code == 400
    assert error_of(response) == "malformed_phone_number"


@pytest.mark.parametrize(
    "phone",
    [
        "13612345678",
        "+8613612345678",
        "8613612345678",
        "+86 136 1234 5678",
        "136-1234-5678",
        "0086 13612345678",
        "１３６１２３４５６７８",
        "+86 (136) 1234.5678",
    ],
)
def test_every_form_of_one_number_is_one_number(api, api_client, phone, sms_outbox):
    response = api.send({"usage": "signup", "phone_number": phone}, auth=api_client)
    assert response.status_code == 200, response.content
    assert sms_outbox[-1].phone_number == E164


@pytest.mark.parametrize("phone", ["19212345678", "16612345678", "19912345678", "14712345678"])
def test_all_mainland_carriers(api, api_client, phone):
    response = api.send({"usage": "signup", "phone_number": phone}, auth=api_client)
    assert response.status_code == 200


def test_other_regions_are_opt_in(api, api_client, settings, sms_outbox):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "PHONE_REGIONS": ["CN", "HK"]}
    response = api.send({"usage": "signup", "phone_number": "+852 5123 4567"}, auth=api_client)
    assert response.status_code == 200, response.content
    assert sms_outbox[-1].phone_number == "+85251234567"


@pytest.mark.parametrize(
    "email",
    [
        "plainaddress",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a@b@example.com",
        "a@example",
        "a@-example.com",
        "a b@example.com",
        "a@exa mple.com",
        "@example.com",
        "",
        "x" * 250 + "@example.com",
    ],
)
def test_malformed_emails(api, api_client, email):
    response = api.send({"usage": "signup", "email": email}, auth=api_client)
    assert response.status_code == 400
    assert error_of(response) == "malformed_email"


@pytest.mark.parametrize(
    ("email", "delivered_to"),
    [
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("bob@straße.de", "bob@xn--strae-oqa.de"),  # IDNA 2008: never strasse.de
        ("user+tag@sub.example.com", "user+tag@sub.example.com"),
    ],
)
def test_idn_domains_are_accepted_and_mailed_at_their_punycode(
    api, api_client, email, delivered_to, mailoutbox
):
    response = api.send({"usage": "signup", "email": email}, auth=api_client)
    assert response.status_code == 200, response.content
    assert [m.to for m in mailoutbox] == [[delivered_to]]


def test_non_ascii_before_the_at_needs_smtputf8(api, api_client, settings, mailoutbox):
    refused = api.send({"usage": "signup", "email": "用户@例子.广告"}, auth=api_client)
    assert error_of(refused) == "malformed_email"
    assert "EMAIL_ALLOW_SMTPUTF8" in refused.json()["error_description"]
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_ALLOW_SMTPUTF8": True}
    accepted = api.send({"usage": "signup", "email": "用户@例子.广告"}, auth=api_client)
    assert accepted.status_code == 200
    assert [m.to for m in mailoutbox] == [["用户@xn--fsqu00a.xn--4rr70v"]]


def test_denied_domain_is_invalid_email(api, api_client, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "EMAIL_DOMAIN_DENYLIST": ["mailinator.com"]}
    for email in ["a@mailinator.com", "a@MAILINATOR.com", "a@x.mailinator.com"]:
        response = api.send({"usage": "signup", "email": email}, auth=api_client)
        assert response.status_code == 400
        assert error_of(response) == "invalid_email"


# --- auth source ---------------------------------------------------------------------


def test_unknown_auth_source(api, api_client):
    response = api.send(
        {"usage": "login", "phone_number": PHONE, "auth_source_id": "NOPE"}, auth=api_client
    )
    assert response.status_code == 400
    assert error_of(response) == "invalid_auth_source"


def test_disabled_auth_source(api, api_client, sms_source):
    sms_source.enabled = False
    sms_source.save()
    response = api.send(
        {"usage": "login", "phone_number": PHONE, "auth_source_id": sms_source.id}, auth=api_client
    )
    assert error_of(response) == "invalid_auth_source"


def test_auth_source_channel_must_match(api, api_client, email_source):
    response = api.send(
        {"usage": "login", "phone_number": PHONE, "auth_source_id": email_source.id},
        auth=api_client,
    )
    assert error_of(response) == "invalid_auth_source"


def test_auth_source_length_and_validity_apply(api, api_client, sms_source, sms_outbox):
    sms_source.code_length = 8
    sms_source.code_validity = 120
    sms_source.save()
    response = api.send(
        {"usage": "login", "phone_number": PHONE, "auth_source_id": sms_source.id}, auth=api_client
    )
    assert response.status_code == 200
    code = sms_outbox[-1].code
    assert len(code) == 8 and code.isdigit()
    token = OTPToken.objects.get()
    assert round((token.code_expires_at - token.created_at).total_seconds()) == 120
    assert round((token.expires_at - token.created_at).total_seconds()) == 300


def test_default_code_is_six_digits_for_sixty_seconds(api, api_client, sms_outbox):
    api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client)
    assert len(sms_outbox[-1].code) == 6
    token = OTPToken.objects.get()
    assert round((token.code_expires_at - token.created_at).total_seconds()) == 60


# --- is-used ---------------------------------------------------------------------------


@pytest.mark.parametrize("usage", ["signup", "update_userinfo"])
def test_email_is_used(api, api_client, usage):
    get_user_model().objects.create(username="mock", email="Mock_Username@Example.COM")
    response = api.send({"usage": usage, "email": EMAIL}, auth=api_client)
    assert response.status_code == 400
    assert error_of(response) == "email_is_used"


@pytest.mark.parametrize("usage", ["signup", "update_userinfo"])
def test_phone_is_used_via_lookup(api, api_client, settings, usage):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "USER_LOOKUP": "tests.lookups.phone_lookup",
        "USER_ADDRESS": "tests.lookups.phone_address",
    }
    response = api.send({"usage": usage, "phone_number": "+86 13900001111"}, auth=api_client)
    assert error_of(response) == "phone_number_is_used"


def test_a_lookups_user_counts_only_with_a_readable_address(api, api_client, settings):
    """USER_LOOKUP finds candidates; without USER_ADDRESS their phone cannot be confirmed."""
    settings.CIAM_OTP = {**settings.CIAM_OTP, "USER_LOOKUP": "tests.lookups.phone_lookup"}
    response = api.send({"usage": "signup", "phone_number": "+86 13900001111"}, auth=api_client)
    assert response.status_code == 200


def test_reset_password_unknown_recipient_answers_like_a_known_one(
    api, api_client, mailoutbox, client_factory
):
    quota_client = client_factory(email_quota=5)
    get_user_model().objects.create(username="known", email="known@example.com")
    known = api.send({"usage": "reset_password", "email": "known@example.com"}, auth=quota_client)
    unknown = api.send(
        {"usage": "reset_password", "email": "nobody@example.com"}, auth=quota_client
    )
    assert known.status_code == unknown.status_code == 200
    assert set(known.json()) == set(unknown.json())
    assert known.headers.keys() == unknown.headers.keys()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["known@example.com"]
    assert Quota.objects.get().used == 1


# --- limits and quota -------------------------------------------------------------------


def test_sms_rate_limit_per_number(api, api_client, sms_source):
    body = {"usage": "login", "phone_number": PHONE, "auth_source_id": sms_source.id}
    assert api.send(body, auth=api_client).status_code == 200
    # another written form of the same number hits the same counter
    response = api.send({**body, "phone_number": "+86 136 1234 5678"}, auth=api_client)
    assert response.status_code == 400
    assert response.json()["error"] == "sms_rate_limit_exceeded"
    assert response.json()["error_description"] == "SMS rate limit exceeded for same phone number"
    assert int(response["Retry-After"]) >= 1
    assert response.json()["retry_after"] == int(response["Retry-After"])
    assert OTPToken.objects.count() == 1


def test_email_rate_limit_per_address(api, api_client):
    body = {"usage": "signup", "email": "a@example.com"}
    assert api.send(body, auth=api_client).status_code == 200
    response = api.send({**body, "email": "A@EXAMPLE.com"}, auth=api_client)
    assert error_of(response) == "email_rate_limit_exceeded"
    assert "Retry-After" in response


def test_recipient_limits_configurable_and_off(api, api_client, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": []}
    for _ in range(3):
        assert (
            api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).status_code == 200
        )


def test_hourly_limit(api, api_client, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": ["2/h"]}
    codes = [
        api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 400]


def test_client_rate_limit_is_429(api, api_client, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "CLIENT_RATE_LIMITS": ["2/m"], "SMS_RATE_LIMITS": []}
    statuses = [
        api.send({"usage": "signup", "phone_number": f"1361234567{i}"}, auth=api_client).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    response = api.send({"usage": "signup", "phone_number": "13912345678"}, auth=api_client)
    assert error_of(response) == "rate_limit_exceeded"
    assert int(response["Retry-After"]) >= 1


def test_ip_rate_limit_is_429(api, client_factory, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "IP_RATE_LIMITS": ["1/m"]}
    a, b = client_factory(), client_factory()
    assert api.send({"usage": "signup", "phone_number": PHONE}, auth=a).status_code == 200
    response = api.send({"usage": "signup", "phone_number": "13912345678"}, auth=b)
    assert response.status_code == 429
    assert error_of(response) == "rate_limit_exceeded"


def test_quota_used_up(api, client_factory, sms_outbox):
    api_client = client_factory(sms_quota=1)
    assert api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).status_code == 200
    response = api.send({"usage": "signup", "phone_number": "13912345678"}, auth=api_client)
    assert error_of(response) == "insufficient_sms_quota"
    assert len(sms_outbox) == 1
    assert Quota.objects.get().used == 1


def test_email_quota_used_up(api, client_factory):
    api_client = client_factory(email_quota=0)
    response = api.send({"usage": "signup", "email": EMAIL}, auth=api_client)
    assert error_of(response) == "insufficient_email_quota"


def test_site_wide_quota(api, client_factory):
    Quota.objects.create(client=None, channel="sms", limit=1)
    a, b = client_factory(), client_factory()
    assert api.send({"usage": "signup", "phone_number": PHONE}, auth=a).status_code == 200
    response = api.send({"usage": "signup", "phone_number": "13912345678"}, auth=b)
    assert error_of(response) == "insufficient_sms_quota"


def test_refused_requests_consume_no_quota(api, client_factory, sms_source):
    """Each earlier check refuses before the quota is touched."""
    api_client = client_factory(sms_quota=10)
    get_user_model().objects.create(username="u", email="used@example.com")
    refused = [
        {"usage": "nope", "phone_number": PHONE},
        {"usage": "signup", "phone_number": "123"},
        {"usage": "login", "phone_number": PHONE, "auth_source_id": "NOPE"},
    ]
    for body in refused:
        assert api.send(body, auth=api_client).status_code == 400
    assert api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).status_code == 200
    assert api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).status_code == 400
    assert Quota.objects.get(channel="sms").used == 1


def test_order_of_checks(api, client_factory, settings):
    """Shape beats recipient, recipient beats auth source, auth source beats is-used..."""
    api_client = client_factory(email_quota=0)
    get_user_model().objects.create(username="u", email="used@example.com")
    # bad usage and bad phone: shape wins
    assert (
        error_of(api.send({"usage": "x", "phone_number": "1"}, auth=api_client))
        == "invalid_request"
    )
    # bad phone and unknown source: recipient wins
    assert (
        error_of(
            api.send(
                {"usage": "login", "phone_number": "1", "auth_source_id": "NOPE"}, auth=api_client
            )
        )
        == "malformed_phone_number"
    )
    # unknown source on a used email: auth source wins
    assert (
        error_of(
            api.send(
                {"usage": "signup", "email": "used@example.com", "auth_source_id": "NOPE"},
                auth=api_client,
            )
        )
        == "invalid_auth_source"
    )
    # used email and no quota: is-used wins
    assert (
        error_of(api.send({"usage": "signup", "email": "used@example.com"}, auth=api_client))
        == "email_is_used"
    )
    # no quota: quota error, and nothing counted against the recipient's limit
    assert (
        error_of(api.send({"usage": "signup", "email": "new@example.com"}, auth=api_client))
        == "insufficient_email_quota"
    )
    Quota.objects.update(limit=1)
    assert (
        api.send({"usage": "signup", "email": "new@example.com"}, auth=api_client).status_code
        == 200
    )
    # bad auth beats everything
    assert error_of(api.send({"usage": "x"}, auth="Basic Zm9vOmJhcg==")) == "invalid_client"


# --- tokens ---------------------------------------------------------------------------------


def test_resend_supersedes_earlier_tokens(api, api_client, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "SMS_RATE_LIMITS": []}
    first = api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).json()[
        "otp_token"
    ]
    second = api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client).json()[
        "otp_token"
    ]
    assert first != second
    statuses = list(OTPToken.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == [TokenStatus.SUPERSEDED, TokenStatus.PENDING]


def test_resend_for_other_usage_keeps_token(api, api_client):
    api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client)
    api.send({"usage": "update_userinfo", "phone_number": PHONE}, auth=api_client)
    assert set(OTPToken.objects.values_list("status", flat=True)) == {TokenStatus.PENDING}


def test_nothing_secret_stored_or_logged(api, api_client, sms_outbox, caplog):
    caplog.set_level(logging.DEBUG)
    response = api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client)
    otp_token = response.json()["otp_token"]
    code = sms_outbox[-1].code
    row = OTPToken.objects.values().get()
    dumped = json.dumps(row, default=str)
    for secret in (otp_token, code, PHONE, E164, "TEST_CLIENT_SECRET"):
        assert secret not in dumped
        assert secret not in caplog.text
    client_row = json.dumps(list(type(api_client.client).objects.values()), default=str)
    assert "TEST_CLIENT_SECRET" not in client_row


def test_send_query_count_is_bounded(
    api, client_factory, django_assert_max_num_queries, sms_source
):
    api_client = client_factory(sms_quota=100)
    Quota.objects.create(client=None, channel="sms", limit=100)
    body = {"usage": "login", "phone_number": PHONE, "auth_source_id": sms_source.id}
    # Inside the test's transaction, so the auth source and blocked prefix are read
    # (production reuses a per-process copy), and the delivery runs eagerly here:
    # client, last_used_at, auth source, blocked prefix, savepoint, both quotas in one
    # UPDATE, INSERT, release, supersede; delivery (the batch task): claim, sent, the last
    # look after the wake-up flag is cleared, the look for other runs' claims. Exact
    # production counts: tests/flows/test_send_cost.py and
    # tests/integration/test_redis_counters.py.
    with django_assert_max_num_queries(13):
        assert api.send(body, auth=api_client).status_code == 200


# --- Idempotency-Key --------------------------------------------------------------------------


def test_idempotency_key_replays_first_answer(api, client_factory, sms_outbox):
    api_client = client_factory(sms_quota=10)
    body = {"usage": "signup", "phone_number": PHONE}
    first = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="abc-123")
    again = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="abc-123")
    assert first.status_code == again.status_code == 200
    assert first.json()["otp_token"] == again.json()["otp_token"]
    assert again["Cache-Control"] == "no-store"
    assert len(sms_outbox) == 1
    assert OTPToken.objects.count() == 1
    assert Quota.objects.get().used == 1


def test_idempotency_key_with_other_body_is_422(api, api_client):
    api.send({"usage": "signup", "phone_number": PHONE}, auth=api_client, HTTP_IDEMPOTENCY_KEY="k1")
    response = api.send(
        {"usage": "signup", "phone_number": "13912345678"},
        auth=api_client,
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert response.status_code == 422
    assert error_of(response) == "invalid_request"


def test_idempotency_key_is_per_client(api, client_factory, sms_outbox):
    a, b = client_factory(), client_factory()
    body = {"usage": "signup", "phone_number": PHONE}
    api.send(body, auth=a, HTTP_IDEMPOTENCY_KEY="same")
    response = api.send({**body, "usage": "update_userinfo"}, auth=b, HTTP_IDEMPOTENCY_KEY="same")
    assert response.status_code == 200
    assert len(sms_outbox) == 2


def test_idempotency_key_in_flight_is_409(api, api_client):
    from django_ciam_otp.idempotency import IdempotentRequest

    body = {"usage": "signup", "phone_number": PHONE}
    IdempotentRequest(api_client.client.pk, "busy", body).begin()  # another request holds it
    response = api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="busy")
    assert response.status_code == 409
    assert error_of(response) == "invalid_request"


def test_idempotency_key_released_after_error(api, client_factory):
    api_client = client_factory(sms_quota=0)
    body = {"usage": "signup", "phone_number": PHONE}
    assert (
        error_of(api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="r"))
        == "insufficient_sms_quota"
    )
    Quota.objects.update(limit=5)
    assert api.send(body, auth=api_client, HTTP_IDEMPOTENCY_KEY="r").status_code == 200


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "ключ"])
def test_bad_idempotency_key(api, api_client, key):
    response = api.send(
        {"usage": "signup", "phone_number": PHONE}, auth=api_client, HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
    assert error_of(response) == "invalid_request"
