"""``include("django_ciam_otp.urls")`` gives ``/otp/send``, ``/otp/verify``, ``/otp/schema``,
and ``/otp/receipts/<backend name>/`` for SMS providers' delivery receipts (``webhooks.py``).

Unknown paths *below* those three (``/otp/send/x``) answer the contract's JSON
404, for every method. The rest of ``/otp/`` stays the site's: a site with its
own ``/otp/settings/`` page keeps it. A site that gives all of ``/otp/`` to
this API can opt in to the JSON 404 for every other ``/otp/...`` path too::

    path("", include("django_ciam_otp.urls")),
    path("", include("django_ciam_otp.urls_catch_all")),  # last
"""

import functools
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from . import views, webhooks


@functools.cache
def _schema_view() -> Any:
    from .schema import OTPSchemaView  # drf-spectacular, only where the schema is served

    return OTPSchemaView.as_view()


@csrf_exempt
def schema_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """``/otp/schema``, built on first use (see ``schema.py``: it costs a web worker megabytes)."""
    response: HttpResponse = _schema_view()(request, *args, **kwargs)
    return response


app_name = "ciam_otp"

urlpatterns = [
    re_path(r"^otp/send/?$", views.SendOTPView.as_view(), name="send"),
    re_path(r"^otp/verify/?$", views.VerifyOTPView.as_view(), name="verify"),
    # The OpenAPI 3 schema of the two endpoints above (YAML; ?format=json for JSON).
    re_path(r"^otp/schema/?$", schema_view, name="schema"),
    # Delivery receipts, one URL per SMS backend name (docs: "Providers, routing and failover").
    re_path(r"^otp/receipts/(?P<backend>\w{1,64})/?$", webhooks.receipts, name="receipts"),
    re_path(r"^otp/(?:send|verify|schema|receipts)/.", views.not_found, name="not-found"),
]
