"""Run send and verify in-process on PostgreSQL; print their SQL plans and timings as JSON.

``python -m tests.integration.probe_queries CLIENT_ID ROUNDS PHONE_BASE``, with the
integration environment (``DATABASE_URL``, …). Used by ``test_housekeeping``
to check that every statement touching the token table is answered from an
index, and how long a send and a verify take, with and without a million old
rows. Celery runs eagerly here and codes go to the in-memory outbox, so the
probe sees the delivery's statements too and can verify with the real code.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time


def main(client_id: str, rounds: int, phone_base: int) -> dict[str, object]:
    os.environ.pop("CELERY_BROKER_URL", None)  # eager tasks: delivery in this process
    os.environ["OTP_SMS_BACKEND"] = "django_ciam_otp.backends.sms.locmem.SMSBackend"
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_ciam_otp import send_otp, verify_otp
    from django_ciam_otp.backends.sms import locmem
    from django_ciam_otp.models import OTPClient

    client = OTPClient.objects.get(client_id=client_id)
    send_times: list[float] = []
    verify_times: list[float] = []
    statements: list[str] = []
    for n in range(rounds):
        phone = f"136{phone_base + n:04d}1234"
        locmem.outbox.clear()
        with CaptureQueriesContext(connection) as sent:
            started = time.perf_counter()
            result = send_otp(
                client,
                usage="login",
                phone_number=phone,
                auth_source_id="MOCK_SMS_OTP_AUTH_SOURCE_ID",
            )
            send_times.append(time.perf_counter() - started)
        (message,) = locmem.outbox
        with CaptureQueriesContext(connection) as verified:
            started = time.perf_counter()
            verify_otp(client, result.otp_token, message.code, phone_number=phone, usage="login")
            verify_times.append(time.perf_counter() - started)
        if n == 0:
            statements = [q["sql"] for q in [*sent.captured_queries, *verified.captured_queries]]

    plans = []
    with connection.cursor() as cursor:
        for sql in statements:
            if "ciam_otp_otptoken" not in sql or sql.lstrip().upper().startswith(
                ("SAVEPOINT", "RELEASE")
            ):
                continue
            cursor.execute("EXPLAIN " + sql)
            plans.append({"sql": sql, "plan": "\n".join(row[0] for row in cursor.fetchall())})
    return {
        "send_median_ms": statistics.median(send_times) * 1000,
        "verify_median_ms": statistics.median(verify_times) * 1000,
        "plans": plans,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
