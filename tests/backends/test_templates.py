"""The shipped templates: plain text stays plain, HTML stays escaped."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

CONTEXT: dict[str, Any] = {
    "code": "482915",
    "usage": "login",
    "usage_display": "Q&A <beta> 'club'",
    "validity_seconds": 120,
    "validity_minutes": 2,
    "recipient": "alice@example.com",
}


def test_sms_text_is_not_html_escaped() -> None:
    text = render_to_string("django_ciam_otp/sms/message.txt", CONTEXT).strip()
    assert text == (
        "Your verification code for Q&A <beta> 'club' is 482915. "
        "It is valid for 2 minutes. Do not share it."
    )


def test_email_subject_and_text_are_not_html_escaped() -> None:
    subject = render_to_string("django_ciam_otp/email/subject.txt", CONTEXT)
    text = render_to_string("django_ciam_otp/email/message.txt", CONTEXT)
    assert subject.strip() == "Your verification code for Q&A <beta> 'club'"
    assert text.startswith("Your verification code for Q&A <beta> 'club' is:")


def test_email_html_is_escaped() -> None:
    html = render_to_string("django_ciam_otp/email/message.html", CONTEXT)
    assert "Q&amp;A &lt;beta&gt; &#x27;club&#x27;" in html
    assert "<beta>" not in html
