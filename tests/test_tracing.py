"""django_ciam_otp.tracing: one span per send and verification, and nothing secret in it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from django_ciam_otp import send_otp, tracing, verify_otp
from django_ciam_otp.exceptions import InvalidOTP, MalformedPhoneNumber, OTPError

PHONE, E164 = "13612345678", "+8613612345678"
EXPORTER = InMemorySpanExporter()


def tracer_provider() -> TracerProvider:
    """The process's SDK provider, set once (OpenTelemetry refuses to replace it)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        current = TracerProvider()
        trace.set_tracer_provider(current)
    if not getattr(current, "ciam_otp_exporter", False):
        current.add_span_processor(SimpleSpanProcessor(EXPORTER))
        current.ciam_otp_exporter = True  # type: ignore[attr-defined]
    return current


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    tracer_provider()
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def assert_nothing_secret(span: ReadableSpan, *secrets: str) -> None:
    for key, value in (span.attributes or {}).items():
        assert key.startswith("ciam_otp."), key
        for secret in secrets:
            assert secret not in str(value), (key, value)
    for event in span.events:
        for value in (event.attributes or {}).values():
            for secret in secrets:
                assert secret not in str(value)


@pytest.mark.django_db
def test_a_send_and_its_verification_are_spans_without_code_or_recipient(
    api_client, sms_outbox, spans, django_capture_on_commit_callbacks
):
    client = api_client.client
    with django_capture_on_commit_callbacks(execute=True):
        sent = send_otp(client, usage="signup", phone_number=PHONE)
    code = sms_outbox[-1].code
    verify_otp(client, sent.otp_token, code, phone_number=PHONE, usage="signup")

    (send,) = named(spans, "ciam_otp.send")
    assert dict(send.attributes or {}) == {
        "ciam_otp.client_id": client.client_id,
        "ciam_otp.channel": "sms",
        "ciam_otp.usage": "signup",
        "ciam_otp.token_id": sent.token.pk,
        "ciam_otp.outcome": "queued",
    }
    (verify,) = named(spans, "ciam_otp.verify")
    assert dict(verify.attributes or {}) == {
        "ciam_otp.client_id": client.client_id,
        "ciam_otp.channel": "sms",
        "ciam_otp.usage": "signup",
        "ciam_otp.token_id": sent.token.pk,
        "ciam_otp.outcome": "verified",
    }
    for span in (send, verify):
        assert span.status.status_code == StatusCode.UNSET
        assert_nothing_secret(span, code, PHONE, E164, sent.otp_token)


@pytest.mark.django_db
def test_a_refusal_is_an_outcome_not_an_error(api_client, sms_outbox, spans):
    client = api_client.client
    with pytest.raises(MalformedPhoneNumber):
        send_otp(client, usage="signup", phone_number="12345")
    sent = send_otp(client, usage="signup", phone_number=PHONE)
    with pytest.raises(InvalidOTP):
        verify_otp(client, sent.otp_token, "000000x", phone_number=PHONE, usage="signup")

    refused, accepted = named(spans, "ciam_otp.send")
    assert refused.attributes == {"ciam_otp.outcome": "malformed_phone_number"}
    assert refused.status.status_code == StatusCode.UNSET and not refused.events
    (verify,) = named(spans, "ciam_otp.verify")
    assert verify.attributes and verify.attributes["ciam_otp.outcome"] == "invalid_otp"
    assert verify.attributes["ciam_otp.client_id"] == client.client_id
    assert_nothing_secret(verify, "000000x", PHONE, sent.otp_token)


@pytest.mark.django_db
def test_an_unexpected_exception_marks_the_span_as_an_error(api_client, monkeypatch, spans):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"provider refused {E164}")  # as an SDK's message may

    monkeypatch.setattr("django_ciam_otp.flows.counting.count", broken)
    with pytest.raises(RuntimeError):
        send_otp(api_client.client, usage="signup", phone_number=PHONE)
    (send,) = named(spans, "ciam_otp.send")
    assert send.status.status_code == StatusCode.ERROR
    (event,) = send.events
    assert event.name == "exception"
    assert dict(event.attributes or {}).keys() == {"exception.type", "exception.stacktrace"}
    assert event.attributes and event.attributes["exception.type"] == "builtins.RuntimeError"
    assert "broken" in str(event.attributes["exception.stacktrace"])
    assert E164 not in str(event.attributes)  # the frames' source lines, not the values
    assert "ciam_otp.outcome" not in (send.attributes or {})


def test_a_span_of_the_delivery_nests_and_takes_attributes_later(spans):
    with tracing.span("ciam_otp.send", channel="sms") as outer:
        with tracing.span("ciam_otp.deliver", token_id=7, backend="tencent") as inner:
            tracing.annotate(inner, outcome="sent", attempt=0, channel=None)
        tracing.annotate(outer, outcome="queued")
    deliver, send = spans.get_finished_spans()
    assert deliver.parent is not None and deliver.parent.span_id == send.context.span_id
    assert dict(deliver.attributes or {}) == {
        "ciam_otp.token_id": 7,
        "ciam_otp.backend": "tencent",
        "ciam_otp.outcome": "sent",
        "ciam_otp.attempt": 0,
    }


@pytest.mark.parametrize("name", ["code", "otp", "recipient", "phone_number", "secret"])
def test_attributes_outside_the_list_are_refused_even_when_off(name, settings, spans):
    with pytest.raises(ValueError, match="never go into a span"):
        tracing.span("ciam_otp.send", **{name: "x"})
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TRACING": False}
    with pytest.raises(ValueError, match="never go into a span"):
        tracing.span("ciam_otp.send", **{name: "x"})
    with tracing.span("ciam_otp.send") as current, pytest.raises(ValueError):
        tracing.annotate(current, **{name: "x"})


@pytest.mark.django_db
def test_no_spans_with_tracing_off(api_client, settings, spans):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "TRACING": False}
    assert not tracing.enabled()
    send_otp(api_client.client, usage="signup", phone_number=PHONE)
    with pytest.raises(OTPError):
        send_otp(api_client.client, usage="signup", phone_number="12345")
    with tracing.span("ciam_otp.deliver", backend="tencent") as current:
        tracing.annotate(current, outcome="sent")
        assert not current.is_recording()
    assert spans.get_finished_spans() == ()


def test_no_spans_without_opentelemetry(monkeypatch, spans):
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "opentelemetry", None)  # its import raises ImportError
        assert tracing.decide() is False
        with tracing.span("ciam_otp.verify", outcome="verified") as current:
            tracing.annotate(current, token_id=1)
            tracing.annotate_current(client_id="x")
    assert tracing.decide() is True
    assert spans.get_finished_spans() == ()
