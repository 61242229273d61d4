"""metrics.views.metrics_view: the exposition, in one process and merged over several."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from django_ciam_otp import metrics
from django_ciam_otp.metrics.views import metrics_view

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db
def test_get_shows_the_counters_and_the_database_gauges(client_factory, rf: RequestFactory):
    client_factory(client_id="shop", sms_quota=10)
    metrics.send_accepted("sms", "login", "queued")
    response = metrics_view(rf.get("/metrics"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-cache" in response["Cache-Control"]
    found = samples(response.content.decode())
    sent = (
        "ciam_otp_sends_total",
        frozenset({"channel": "sms", "usage": "login", "outcome": "queued"}.items()),
    )
    assert found[sent] >= 1
    shop = frozenset({"client": "shop", "channel": "sms"}.items())
    assert found[("ciam_otp_quota_remaining", shop)] == 10
    assert found[("ciam_otp_quota_limit", shop)] == 10
    assert found[("ciam_otp_blocked_prefixes", frozenset())] == 0


@pytest.mark.django_db
def test_openmetrics_when_the_scraper_asks_for_it(rf: RequestFactory):
    accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = metrics_view(rf.get("/metrics", HTTP_ACCEPT=accept))
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


def test_only_get_and_head(rf: RequestFactory):
    assert metrics_view(rf.post("/metrics")).status_code == 405


def test_not_found_with_metrics_off(rf: RequestFactory, settings):
    settings.CIAM_OTP = {**settings.CIAM_OTP, "METRICS": False}
    assert metrics_view(rf.get("/metrics")).status_code == 404


#: A process of a gunicorn or Celery prefork pool: records, and in "serve" mode scrapes.
PROCESS = textwrap.dedent(
    """
    import os, sys
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    django.setup()
    from django_ciam_otp import metrics
    metrics.send_accepted("sms", "signup", "queued")
    metrics.delivery("tencent", "sms", "sent", latency=0.3)
    if sys.argv[2] == "serve":
        from celery.signals import worker_process_shutdown
        from django.core.management import call_command
        from django.test import RequestFactory
        from django_ciam_otp.metrics.celery import mark_process_dead
        from django_ciam_otp.metrics.views import metrics_view
        from django_ciam_otp.models import Quota
        call_command("migrate", verbosity=0)
        Quota.objects.create(client=None, channel="sms", limit=50, used=8)
        assert any(r is mark_process_dead for _, r in worker_process_shutdown.receivers)
        sys.stdout.write(metrics_view(RequestFactory().get("/metrics")).content.decode())
    """
)


def test_multiprocess_mode_merges_every_process_files(tmp_path: Path):
    """prometheus-client reads PROMETHEUS_MULTIPROC_DIR at import: each process is a new one."""

    def run(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", PROCESS, str(tmp_path), mode],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("record")
    run("record")
    found = samples(run("serve"))

    queued = frozenset({"channel": "sms", "usage": "signup", "outcome": "queued"}.items())
    assert found[("ciam_otp_sends_total", queued)] == 3
    tencent = frozenset({"backend": "tencent"}.items())
    assert found[("ciam_otp_delivery_latency_seconds_count", tencent)] == 3
    assert found[("ciam_otp_delivery_latency_seconds_sum", tencent)] == pytest.approx(0.9)
    site = frozenset({"client": "*", "channel": "sms"}.items())
    assert found[("ciam_otp_quota_remaining", site)] == 42
    assert list(tmp_path.glob("counter_*.db")), "each process wrote its own file"
