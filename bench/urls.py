"""The example project's URLs plus ``POST /bench/baseline`` (only in the bench)."""

from django.urls import path

from example_project.urls import urlpatterns as example_urlpatterns

from .views import BaselineView

urlpatterns = [
    path("bench/baseline", BaselineView.as_view(), name="bench-baseline"),
    *example_urlpatterns,
]
