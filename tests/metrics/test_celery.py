"""metrics.celery: a prefork child that ends is marked dead in multiprocess mode."""

from __future__ import annotations

from pathlib import Path

from celery.signals import worker_process_shutdown

from django_ciam_otp import metrics
from django_ciam_otp.metrics.celery import mark_process_dead


def connected() -> int:
    return sum(receiver is mark_process_dead for _, receiver in worker_process_shutdown.receivers)


def test_connected_once_in_multiprocess_mode(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics.decide()
    metrics.decide()
    assert connected() == 1


def test_the_ending_childs_live_gauges_are_forgotten(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    dead, alive = tmp_path / "gauge_livesum_4242.db", tmp_path / "gauge_livesum_4343.db"
    counter = tmp_path / "counter_4242.db"
    for path in (dead, alive, counter):
        path.write_bytes(b"")
    metrics.decide()  # connects the receiver, as the app's ready() does in a worker
    worker_process_shutdown.send(sender=None, pid=4242, exitcode=0)
    assert not dead.exists()
    assert alive.exists() and counter.exists()  # counters of the dead still count


def test_nothing_to_do_outside_multiprocess_mode(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    mark_process_dead(pid=4242)
