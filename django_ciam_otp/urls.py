"""``include("django_ciam_otp.urls")`` gives ``/otp/send``, ``/otp/verify`` and ``/otp/schema``."""

from django.urls import re_path

from . import schema, views

app_name = "ciam_otp"

urlpatterns = [
    re_path(r"^otp/send/?$", views.SendOTPView.as_view(), name="send"),
    re_path(r"^otp/verify/?$", views.VerifyOTPView.as_view(), name="verify"),
    # The OpenAPI 3 schema of the two endpoints above (YAML; ?format=json for JSON).
    re_path(r"^otp/schema/?$", schema.OTPSchemaView.as_view(), name="schema"),
    # Anything else under otp/ (and otp itself, which CommonMiddleware would
    # otherwise redirect, dropping a POST body) is the JSON 404, for every method.
    re_path(r"^otp(?:/|$)", views.not_found, name="not-found"),
]
