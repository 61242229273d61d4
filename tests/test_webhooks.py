"""``/otp/receipts/<name>/`` (webhooks.py): providers' delivery receipts move sent tokens.

An authentic receipt moves the token its backend sent with that message id from
``sent`` to ``delivered`` or ``undelivered``, once; an undelivered code gives its
quota back and verifies as a failed delivery. Anything not provably the
provider's is refused (403) before its body is read and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from django_ciam_otp import crypto, flows, signals
from django_ciam_otp.backends.sms import locmem
from django_ciam_otp.exceptions import DeliveryFailed
from django_ciam_otp.models import DeliveryStatus, OTPToken, Quota, TokenStatus

pytestmark = pytest.mark.django_db

PHONE = "13612345678"
E164 = "+86" + PHONE
SUPPORT = "tests.support.sms_backends"
SECRET = "acme-receipts-secret"
OTHER_SECRET = "other-receipts-secret"


@pytest.fixture(autouse=True)
def backends(settings: Any) -> None:
    """Two accounts of a provider that reports receipts, and one backend that takes none."""
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [
            {"NAME": "acme", "BACKEND": f"{SUPPORT}.Reporting", "OPTIONS": {"secret": SECRET}},
            {
                "NAME": "other",
                "BACKEND": f"{SUPPORT}.Reporting",
                "OPTIONS": {"secret": OTHER_SECRET},
            },
            {"NAME": "plain", "BACKEND": f"{SUPPORT}.Delivering"},
            {"NAME": "unsecured", "BACKEND": f"{SUPPORT}.Reporting"},
        ],
        # "acme" carries mainland numbers, "other" Hong Kong's.
        "SMS_ROUTES": [{"REGIONS": ["HK"], "BACKENDS": ["other"]}],
        "PHONE_REGIONS": ["CN", "HK"],
    }


@pytest.fixture
def receipts() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, token: OTPToken, delivered: bool, status: str, **kw: Any) -> None:
        seen.append({"token": token.pk, "delivered": delivered, "status": status})

    signals.otp_delivery_receipt.connect(receiver)
    yield seen
    signals.otp_delivery_receipt.disconnect(receiver)


@pytest.fixture
def provider() -> Client:
    """The provider's side: no cookies, no CSRF token (the view must not ask for one)."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def caller(client_factory: Any) -> Any:
    return client_factory(sms_quota=10)


def sent(api: Any, caller: Any, phone: str = PHONE) -> tuple[str, str, str]:
    """Send a code through HTTP (delivered in-process); its otp_token, code and message id."""
    response = api.send({"usage": "signup", "phone_number": phone}, auth=caller)
    assert response.status_code == 200, response.content
    message = locmem.outbox[-1]
    return response.json()["otp_token"], message.code, message.message_id


def post_receipts(
    provider: Client,
    *items: tuple[str, str],
    backend: str = "acme",
    secret: str | None = SECRET,
    body: str | None = None,
) -> Any:
    url = reverse("ciam_otp:receipts", kwargs={"backend": backend})
    if secret is not None:
        url += f"?secret={secret}"
    if body is None:
        body = json.dumps({"receipts": [{"id": mid, "status": status} for mid, status in items]})
    return provider.post(url, data=body, content_type="application/json")


def token_of(otp_token: str) -> OTPToken:
    return OTPToken.objects.get(token_hash=crypto.hash_token(otp_token))


def assert_error(response: Any, status: int, error: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json;charset=UTF-8"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error


def verify(api: Any, caller: Any, otp_token: str, code: str) -> Any:
    return api.verify(
        {"otp_token": otp_token, "otp": code, "phone_number": PHONE, "usage": "signup"},
        auth=caller,
    )


# --- authentic receipts -------------------------------------------------------------------------


def test_a_delivered_receipt_moves_the_token_once(api, caller, provider, sms_outbox, receipts):
    otp_token, code, message_id = sent(api, caller)
    assert token_of(otp_token).delivery_backend == "acme"

    response = post_receipts(provider, (message_id, "DELIVRD"))
    assert response.status_code == 200
    assert response.json() == {"result": 0, "taken": 1}  # the backend's own answer
    token = token_of(otp_token)
    assert token.delivery_status == DeliveryStatus.DELIVERED
    assert token.receipt_at is not None
    assert token.status == TokenStatus.PENDING
    assert receipts == [{"token": token.pk, "delivered": True, "status": "DELIVRD"}]
    assert Quota.objects.get().used == 1

    assert verify(api, caller, otp_token, code).status_code == 200  # the code still works


def test_an_undelivered_receipt_fails_the_code_and_keeps_its_quota_used(
    api, caller, provider, sms_outbox, receipts
):
    otp_token, code, message_id = sent(api, caller)
    assert Quota.objects.get().used == 1

    assert post_receipts(provider, (message_id, "UNDELIV")).status_code == 200
    token = token_of(otp_token)
    assert (token.delivery_status, token.status) == (
        DeliveryStatus.UNDELIVERED,
        TokenStatus.FAILED,
    )
    assert token.delivery_error == "undelivered: UNDELIV"
    assert Quota.objects.get().used == 1  # the provider billed it: quotas keep capping
    assert receipts == [{"token": token.pk, "delivered": False, "status": "UNDELIV"}]

    # Even the right code answers as a failed delivery: 400, the contract's invalid_otp_token.
    response = verify(api, caller, otp_token, code)
    assert_error(response, 400, "invalid_otp_token")
    assert "could not be delivered" in response.json()["error_description"]
    with pytest.raises(DeliveryFailed):
        flows.verify_otp(caller.client, otp_token, code, phone_number=PHONE, usage="signup")


@pytest.mark.parametrize(
    ("first", "then"), [("DELIVRD", "DELIVRD"), ("UNDELIV", "UNDELIV"), ("DELIVRD", "UNDELIV")]
)
def test_a_repeated_receipt_changes_nothing(
    api, caller, provider, sms_outbox, receipts, first, then
):
    otp_token, _, message_id = sent(api, caller)
    post_receipts(provider, (message_id, first))
    before = token_of(otp_token)
    used = Quota.objects.get().used

    response = post_receipts(provider, (message_id, then))
    assert response.status_code == 200  # acknowledged, or the provider retries it forever
    after = token_of(otp_token)
    assert (after.delivery_status, after.status, after.receipt_at) == (
        before.delivery_status,
        before.status,
        before.receipt_at,
    )
    assert Quota.objects.get().used == used
    assert len(receipts) == 1


def test_an_undelivered_receipt_after_a_verify_leaves_the_verification(
    api, caller, provider, sms_outbox, receipts
):
    otp_token, code, message_id = sent(api, caller)
    assert verify(api, caller, otp_token, code).status_code == 200
    post_receipts(provider, (message_id, "UNDELIV"))
    token = token_of(otp_token)
    assert token.status == TokenStatus.VERIFIED  # it reached someone after all
    assert token.delivery_status == DeliveryStatus.UNDELIVERED
    assert Quota.objects.get(client=caller.client).used == 1  # a used code keeps its quota


def test_a_backend_that_cannot_be_built_answers_503_not_500(settings, provider):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [
            {"NAME": "twilio", "BACKEND": "django_ciam_otp.backends.sms.twilio.SMSBackend"}
        ],
    }
    url = reverse("ciam_otp:receipts", kwargs={"backend": "twilio"})
    body = urlencode({"MessageSid": "SM1", "MessageStatus": "delivered"})
    response = provider.post(url, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_one_callback_may_carry_receipts_of_several_messages(
    api, caller, provider, sms_outbox, receipts
):
    first, _, first_id = sent(api, caller)
    second, _, second_id = sent(api, caller, phone="13612345679")
    response = post_receipts(provider, (first_id, "DELIVRD"), (second_id, "EXPIRED"))
    assert response.json() == {"result": 0, "taken": 2}
    assert token_of(first).delivery_status == DeliveryStatus.DELIVERED
    assert token_of(second).delivery_status == DeliveryStatus.UNDELIVERED
    assert [r["delivered"] for r in receipts] == [True, False]
    assert Quota.objects.get().used == 2


def test_a_receipt_for_a_message_nobody_sent_is_acknowledged_and_ignored(
    api, caller, provider, sms_outbox, receipts
):
    otp_token, _, _ = sent(api, caller)
    response = post_receipts(provider, ("locmem-no-such-message", "UNDELIV"))
    assert response.status_code == 200
    assert token_of(otp_token).delivery_status == DeliveryStatus.SENT
    assert receipts == []
    assert Quota.objects.get().used == 1


def test_receipts_match_by_backend_and_message_id(api, caller, provider, sms_outbox, receipts):
    """Another account's receipt naming this message id is not about this message."""
    otp_token, _, message_id = sent(api, caller)
    response = post_receipts(
        provider, (message_id, "UNDELIV"), backend="other", secret=OTHER_SECRET
    )
    assert response.status_code == 200
    assert token_of(otp_token).delivery_status == DeliveryStatus.SENT
    assert receipts == []

    hk_token, _, hk_id = sent(api, caller, phone="+85291234567")
    assert token_of(hk_token).delivery_backend == "other"
    post_receipts(provider, (hk_id, "DELIVRD"), backend="other", secret=OTHER_SECRET)
    assert token_of(hk_token).delivery_status == DeliveryStatus.DELIVERED
    assert token_of(otp_token).delivery_status == DeliveryStatus.SENT


def test_a_receipt_names_the_backend_that_sent_after_failover(
    settings, api, caller, provider, sms_outbox, receipts
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_BACKENDS": [
            {"NAME": "down", "BACKEND": f"{SUPPORT}.AlwaysTransient"},
            *settings.CIAM_OTP["SMS_BACKENDS"],
        ],
        "SMS_ROUTES": [],
    }
    otp_token, _, message_id = sent(api, caller)
    assert token_of(otp_token).delivery_backend == "acme"
    post_receipts(provider, (message_id, "DELIVRD"))
    assert token_of(otp_token).delivery_status == DeliveryStatus.DELIVERED


# --- refused before the body is read -------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [None, "", "wrong", OTHER_SECRET, SECRET.upper(), SECRET + "x", SECRET[:-1]],
    ids=["missing", "empty", "wrong", "another-backends", "case", "longer", "shorter"],
)
def test_without_the_shared_secret_nothing_changes(
    api, caller, provider, sms_outbox, receipts, secret
):
    otp_token, _, message_id = sent(api, caller)
    response = post_receipts(provider, (message_id, "UNDELIV"), secret=secret)
    assert_error(response, 403, "access_denied")
    token = token_of(otp_token)
    assert (token.delivery_status, token.status) == (DeliveryStatus.SENT, TokenStatus.PENDING)
    assert Quota.objects.get().used == 1
    assert receipts == []


def test_the_secret_is_not_taken_from_the_body(api, caller, provider, sms_outbox, receipts):
    otp_token, _, message_id = sent(api, caller)
    url = reverse("ciam_otp:receipts", kwargs={"backend": "acme"})
    body = urlencode({"secret": SECRET, "id": message_id, "status": "UNDELIV"})
    response = provider.post(url, data=body, content_type="application/x-www-form-urlencoded")
    assert_error(response, 403, "access_denied")
    assert token_of(otp_token).delivery_status == DeliveryStatus.SENT


def test_a_backend_without_a_secret_refuses_every_receipt(
    settings, api, caller, provider, sms_outbox, receipts
):
    settings.CIAM_OTP = {
        **settings.CIAM_OTP,
        "SMS_ROUTES": [{"REGIONS": ["CN"], "BACKENDS": ["unsecured"]}],
    }
    otp_token, _, message_id = sent(api, caller)
    assert token_of(otp_token).delivery_backend == "unsecured"
    for secret in (None, "", "anything"):
        response = post_receipts(
            provider, (message_id, "DELIVRD"), backend="unsecured", secret=secret
        )
        assert_error(response, 403, "access_denied")
    assert token_of(otp_token).delivery_status == DeliveryStatus.SENT


def test_an_unauthenticated_malformed_body_is_refused_not_read(provider):
    response = post_receipts(provider, secret="wrong", body="{not json")
    assert_error(response, 403, "access_denied")


@pytest.mark.parametrize(
    "body",
    ["{not json", "", json.dumps({"receipts": [{"id": "x"}]}), json.dumps({"receipts": 5}), "[]"],
)
def test_an_authentic_body_that_cannot_be_read_is_400(
    api, caller, provider, sms_outbox, receipts, body
):
    otp_token, _, _ = sent(api, caller)
    response = post_receipts(provider, body=body)
    assert_error(response, 400, "invalid_request")
    assert token_of(otp_token).delivery_status == DeliveryStatus.SENT
    assert receipts == []


# --- which URLs take receipts -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["nobody", "plain", "reporting", "ACME"])
def test_a_name_that_takes_no_receipts_is_404(provider, backend):
    response = post_receipts(provider, ("x", "DELIVRD"), backend=backend)
    assert_error(response, 404, "invalid_request")


def test_a_malformed_name_is_the_contracts_404(provider):
    response = provider.post(
        "/otp/receipts/acme-cn/?secret=" + SECRET, data="{}", content_type="application/json"
    )
    assert_error(response, 404, "invalid_request")


@pytest.mark.parametrize("path", ["/otp/receipts/acme/", "/otp/receipts/acme"])
def test_the_receipts_url_is_named_after_the_backend(provider, path):
    assert reverse("ciam_otp:receipts", kwargs={"backend": "acme"}).rstrip("/") == path.rstrip("/")
    response = provider.post(
        f"{path}?secret={SECRET}",
        data=json.dumps({"receipts": []}),
        content_type="application/json",
    )
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_taken(api, caller, provider, sms_outbox, receipts, method):
    otp_token, _, message_id = sent(api, caller)
    url = reverse("ciam_otp:receipts", kwargs={"backend": "acme"})
    response = getattr(provider, method)(f"{url}?secret={SECRET}&id={message_id}&status=UNDELIV")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"error": "invalid_request", "error_description": "Use POST."}
    assert token_of(otp_token).delivery_status == DeliveryStatus.SENT
    assert receipts == []


def test_a_multipart_body_is_refused_unread(api, caller, provider, sms_outbox, receipts):
    """Its file parts would be spooled to disk before any backend checked who sent it."""
    otp_token, _, message_id = sent(api, caller)
    url = reverse("ciam_otp:receipts", kwargs={"backend": "acme"})
    response = provider.post(f"{url}?secret={SECRET}", data={"id": message_id, "f": b"x" * 10})
    assert_error(response, 415, "invalid_request")
    assert token_of(otp_token).delivery_status == DeliveryStatus.SENT


def test_an_oversized_body_is_refused_unread(provider, settings):
    url = reverse("ciam_otp:receipts", kwargs={"backend": "acme"})
    response = provider.post(
        f"{url}?secret={SECRET}",
        data=b"[" + b" " * (3 * 1024 * 1024) + b"]",
        content_type="application/json",
    )
    assert_error(response, 413, "invalid_request")
