"""Opt-in: every unknown path under ``/otp/`` answers the contract's JSON 404.

For sites that give all of ``/otp/`` to this API; include it after
``django_ciam_otp.urls``. ``/otp`` itself is included: ``CommonMiddleware``
would otherwise redirect it to ``/otp/``, dropping a POST's body.
"""

from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^otp(?:/|$)", views.not_found, name="ciam-otp-not-found"),
]
