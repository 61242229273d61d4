from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("django_ciam_otp.urls")),
    path("", include("django_ciam_otp.urls_catch_all")),  # all of /otp/ is the API's here
]
