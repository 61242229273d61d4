"""``path("", include("django_ciam_otp.urls"))`` gives ``/otp/send`` and ``/otp/verify``."""

from django.urls import path, re_path

from . import views

app_name = "ciam_otp"

urlpatterns = [
    re_path(r"^otp/send/?$", views.SendOTPView.as_view(), name="send"),
    re_path(r"^otp/verify/?$", views.VerifyOTPView.as_view(), name="verify"),
    re_path(r"^otp/", views.not_found, name="not-found"),
]
