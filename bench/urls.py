"""The example project's URLs plus the floors, ``POST /bench/baseline`` and
``POST /bench/insert-floor`` (only in the bench)."""

from django.urls import path

from example_project.urls import urlpatterns as example_urlpatterns

from .views import BaselineView, InsertFloorView

urlpatterns = [
    path("bench/baseline", BaselineView.as_view(), name="bench-baseline"),
    path("bench/insert-floor", InsertFloorView.as_view(), name="bench-insert-floor"),
    *example_urlpatterns,
]
