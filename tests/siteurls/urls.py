"""A site that has its own pages under /otp/ and includes the app without the catch-all."""

from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("", include("django_ciam_otp.urls")),
    path("otp/settings/", lambda request: HttpResponse("the site's own page")),
]
