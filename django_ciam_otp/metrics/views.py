"""``metrics_view``: the Prometheus text exposition, for sites without django-prometheus.

Not in ``django_ciam_otp.urls``: the site decides where it lives and who may
read it. It asks for no credentials (Prometheus scrapes without a session,
as with django-prometheus's view), and what it shows — client ids, quota
levels, refusal and delivery rates — is not for the public: serve it only
where the internet cannot reach it (docs/metrics.md, "Exposing the metrics").

In prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set,
gunicorn with several workers, Celery prefork) each process writes its own
files and the default registry holds only this process's values, so the
view builds a fresh registry merging every process's files, as
prometheus-client documents, plus the scrape-time database gauges.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.multiprocess import MultiProcessCollector
except ImportError as error:  # pragma: no cover - tested in a subprocess
    raise ImproperlyConfigured(
        "django_ciam_otp.metrics.views needs prometheus-client: "
        'pip install "django-ciam-otp[metrics]"'
    ) from error

from . import MULTIPROC_DIR, enabled
from .collectors import DatabaseCollector


def registry() -> CollectorRegistry:
    """What a scrape shows: this process's registry, or every process's files merged.

    The merged registry is built per scrape (prometheus-client's own advice):
    it holds no state, and the files are read on ``collect()`` anyway.
    """
    if not os.environ.get(MULTIPROC_DIR):
        return REGISTRY
    merged = CollectorRegistry()
    MultiProcessCollector(merged)
    merged.register(DatabaseCollector())
    return merged


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET: the metrics in the format the scraper asks for (OpenMetrics or Prometheus text).

    404 while ``CIAM_OTP["METRICS"]`` is ``False``: there is nothing of this
    package's to show, and the URL should not look like a working endpoint.
    """
    if not enabled():
        return HttpResponseNotFound("Metrics are off (CIAM_OTP['METRICS']).")
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(registry()), content_type=content_type)
