"""Reading this package's metrics in tests, without scraping the database gauges.

``REGISTRY.get_sample_value`` collects every collector of the registry,
``metrics.collectors.DatabaseCollector`` among them, so each read would query
the quotas (and fail in a test without the database). These helpers ask a
registry restricted to the counters and histograms instead. The registry is
process-global (and pytest-xdist runs other tests in the same process before
and after), so tests compare before and after (:class:`Delta`), never
absolute values.
"""

from __future__ import annotations

from prometheus_client import REGISTRY

COUNTERS = [
    "ciam_otp_sends_total",
    "ciam_otp_send_refusals_total",
    "ciam_otp_deliveries_total",
    "ciam_otp_receipts_total",
    "ciam_otp_verifications_total",
]
HISTOGRAMS = ["ciam_otp_delivery_latency_seconds", "ciam_otp_receipt_latency_seconds"]
NAMES = COUNTERS + [f"{h}_{part}" for h in HISTOGRAMS for part in ("bucket", "count", "sum")]

Key = tuple[str, frozenset[tuple[str, str]]]


def snapshot() -> dict[Key, float]:
    """Every sample of the package's counters and histograms now."""
    return {
        (found.name, frozenset(found.labels.items())): found.value
        for family in REGISTRY.restricted_registry(NAMES).collect()
        for found in family.samples
    }


class Delta:
    """How much each sample grew since this object was made: ``delta(name, **labels)``."""

    def __init__(self) -> None:
        self.before = snapshot()

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return snapshot().get(key, 0.0) - self.before.get(key, 0.0)

    def total(self, name: str) -> float:
        """How much the samples named ``name`` grew, whatever their labels."""
        return sum(value for (found, _), value in self.changed().items() if found == name)

    def changed(self) -> dict[Key, float]:
        """Every sample that moved, with how much: to show that nothing else did."""
        now = snapshot()
        moved = {key: value - self.before.get(key, 0.0) for key, value in now.items()}
        return {key: value for key, value in moved.items() if value}
