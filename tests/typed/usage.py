"""How a site calls the public Python API, written to be type-checked (tests/test_public_api.py).

Never run: mypy reads it. Each ``reveal``-free line states a type the API
promises; the lines marked ``# type: ignore[...]`` must stay errors (the test
runs mypy with ``--warn-unused-ignores``, so an API that accepted them would
fail it).
"""

from __future__ import annotations

from django_ciam_otp import SendResult, VerifyResult, send_otp, verify_otp
from django_ciam_otp.exceptions import OTPError, RateLimited


def sign_up(email: str) -> str:
    sent: SendResult = send_otp(usage="signup", email=email)
    token: str = sent.otp_token
    wait: int = sent.retry_after
    assert wait >= 0
    return token


def confirm(token: str, code: str, email: str) -> bool:
    try:
        result: VerifyResult = verify_otp(None, token, code, email=email, usage="signup")
    except RateLimited as exc:
        seconds: int = exc.retry_after
        return seconds < 0
    except OTPError as exc:
        name: str = exc.code
        return not name
    recipient: str = result.recipient
    return bool(recipient)


def misuse() -> None:
    send_otp(usage="signup", phone=13612345678)  # type: ignore[call-arg]
    verify_otp(None, 123, "123456", email="a@example.com")  # type: ignore[arg-type]
    sent = send_otp(usage="login", phone_number="13612345678", auth_source_id="SMS")
    sent.otp_token + 1  # type: ignore[operator]
