"""The end-user pages of the demo, mounted at "/" by ``example_project/urls.py``."""

from django.contrib.auth.views import LogoutView
from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("signup/", views.SignupView.as_view(), name="signup"),
    path("signup/code/", views.SignupVerifyView.as_view(), name="signup-verify"),
    path("signup/password/", views.SignupPasswordView.as_view(), name="signup-password"),
    path("login/", views.PasswordLoginView.as_view(), name="login"),
    path("login/code/", views.LoginCodeView.as_view(), name="login-code"),
    path("login/code/verify/", views.LoginCodeVerifyView.as_view(), name="login-code-verify"),
    path("logout/", LogoutView.as_view(next_page="demo:home"), name="logout"),
    path("password/reset/", views.ResetView.as_view(), name="reset"),
    path("password/reset/code/", views.ResetVerifyView.as_view(), name="reset-verify"),
    path("password/reset/new/", views.ResetPasswordView.as_view(), name="reset-password"),
    path("account/", views.AccountView.as_view(), name="account"),
    path("account/email/", views.ChangeEmailView.as_view(), name="email"),
    path("account/email/code/", views.ChangeEmailVerifyView.as_view(), name="email-verify"),
    path("account/phone/", views.ChangePhoneView.as_view(), name="phone"),
    path("account/phone/code/", views.ChangePhoneVerifyView.as_view(), name="phone-verify"),
]
