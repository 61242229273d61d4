"""drfpasswordless's URLs (``/auth/mobile/`` among them)."""

from django.urls import include, path

urlpatterns = [path("", include("drfpasswordless.urls"))]
