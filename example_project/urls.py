from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # the pages' language switcher
    path("", include("django_ciam_otp.urls")),  # /otp/send, /otp/verify, /otp/schema
    path("", include("django_ciam_otp.urls_catch_all")),  # and JSON 404s for the rest of /otp/
    path("", include("example_project.demo.urls")),  # sign up, log in, reset, account pages
]
