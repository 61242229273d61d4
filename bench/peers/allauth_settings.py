"""django-allauth 65 headless, email code login only: the peer of ``POST /otp/send`` by email.

Each ``POST /_allauth/app/v1/auth/code/request`` (the "app" client: no CSRF,
no cookie; the session token comes back in the answer) looks the address up
(``EmailAddress``, pre-created and verified by the harness, one user per
address: allauth sends a code to accounts only, and to an unknown address
an "unknown account" mail instead), generates the code, keeps it in a new
database session (the pending login) and renders the code email (subject,
text and HTML templates) into a MIME message inline, in the request. Its rate
limits are off, as the example project's per-client and per-IP limits are for
the load (``bench/stack.py``).
"""

from __future__ import annotations

from .common_settings import *  # noqa: F403
from .common_settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [*INSTALLED_APPS, "allauth", "allauth.account", "allauth.headless"]
MIDDLEWARE = [*MIDDLEWARE, "allauth.account.middleware.AccountMiddleware"]
ROOT_URLCONF = "bench.peers.allauth_urls"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_RATE_LIMITS = False
HEADLESS_ONLY = True
HEADLESS_CLIENTS = ("app",)
HEADLESS_FRONTEND_URLS = {
    "account_signup": "https://app.example.com/signup",
    "account_confirm_email": "https://app.example.com/verify-email/{key}",
    "account_reset_password_from_key": "https://app.example.com/reset/{key}",
}
