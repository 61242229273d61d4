"""django-allauth's headless API (``/_allauth/app/v1/...`` only: ``HEADLESS_CLIENTS``)."""

from django.urls import include, path

urlpatterns = [path("_allauth/", include("allauth.headless.urls"))]
