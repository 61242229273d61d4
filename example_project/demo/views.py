"""The demo's pages for end users: sign up, log in, reset a password, change email or phone.

Each page is thin: it sends codes with :func:`django_ciam_otp.send_otp`,
checks them with :func:`django_ciam_otp.verify_otp` (or, to log in, with
``authenticate()`` and :class:`~django_ciam_otp.backends.auth.OTPBackend`),
and turns the contract's errors into sentences (:mod:`.errors`). The session
holds the ``otp_token`` (:mod:`.flows`); forms are CSRF-protected.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, update_session_auth_hash
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.utils.functional import Promise
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.generic import FormView, TemplateView

from django_ciam_otp import verify_otp
from django_ciam_otp.exceptions import EmailIsUsed, OTPError, PhoneNumberIsUsed, RateLimited
from django_ciam_otp.models import Channel, Usage
from django_ciam_otp.services import VerifyResult, find_user
from django_ciam_otp.validators import normalize_email, normalize_phone_number

from . import flows, users
from .errors import describe
from .forms import CodeForm, PasswordLoginForm, RecipientForm

LOGIN_URL = reverse_lazy("demo:login")

#: Auth sources for code logins (``usage=login`` needs one), as load_demo_data creates them.
DEFAULT_LOGIN_AUTH_SOURCES = {
    Channel.SMS: "MOCK_SMS_OTP_AUTH_SOURCE_ID",
    Channel.EMAIL: "MOCK_EMAIL_OTP_AUTH_SOURCE_ID",
}


def login_auth_source(channel: str) -> str:
    sources = getattr(settings, "DEMO_LOGIN_AUTH_SOURCES", None) or DEFAULT_LOGIN_AUTH_SOURCES
    return sources[channel]


def safe_next(request: HttpRequest, url: str | None) -> str:
    """``url`` when it points into this site, else ""."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


class HomeView(TemplateView):
    template_name = "demo/home.html"


class AccountView(LoginRequiredMixin, TemplateView):
    login_url = LOGIN_URL
    template_name = "demo/account.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            phone_number=users.phone_number_of(self.request.user), **kwargs
        )


class PasswordLoginView(FormView):
    template_name = "demo/login.html"
    form_class = PasswordLoginForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(next=self.next_url(), **kwargs)

    def next_url(self) -> str:
        return safe_next(
            self.request, self.request.POST.get("next") or self.request.GET.get("next")
        )

    def form_valid(self, form: PasswordLoginForm) -> HttpResponse:
        login(self.request, form.user)
        return redirect(self.next_url() or "demo:account")


# --- the two steps every code flow shares ------------------------------------------


class SendCodeView(FormView):
    """Step 1: ask where to send the code, send it, go to step 2."""

    template_name = "demo/send_code.html"
    form_class = RecipientForm
    flow: str
    usage: str
    channels: tuple[str, ...] = (Channel.EMAIL, Channel.SMS)
    verify_url: str
    title: Promise
    intro: Promise
    submit_label: Promise = _("Send code")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "channels": self.channels}

    def auth_source_id(self, channel: str) -> str | None:
        return None

    def send_kwargs(self) -> dict[str, Any]:
        return {}

    def describe(self, error: OTPError, form: RecipientForm) -> str:
        return describe(error)

    def form_valid(self, form: RecipientForm) -> HttpResponse:
        try:
            flows.send_code(
                self.request,
                self.flow,
                usage=self.usage,
                channel=form.channel,
                recipient=form.cleaned_data["recipient"],
                auth_source_id=self.auth_source_id(form.channel),
                **self.send_kwargs(),
            )
        except OTPError as exc:
            form.add_error("recipient", self.describe(exc, form))
            return self.form_invalid(form)
        return redirect(self.verify_url)


class VerifyCodeView(FormView):
    """Step 2: enter the code (or ask for a new one, once the wait is over)."""

    template_name = "demo/verify_code.html"
    form_class = CodeForm
    flow: str
    start_url: str
    title: Promise

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pending = flows.pending_code(request, self.flow)
        if pending is None or not self.allowed(pending):
            return redirect(self.start_url)
        self.pending = pending
        return super().dispatch(request, *args, **kwargs)

    def allowed(self, pending: flows.PendingCode) -> bool:
        return True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(pending=self.pending, wait=self.pending.wait(), **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "resend" in request.POST:
            return self.resend()
        return super().post(request, *args, **kwargs)

    def resend(self) -> HttpResponse:
        try:
            self.pending = flows.resend_code(self.request, self.flow, self.pending)
        except OTPError as exc:
            if isinstance(exc, RateLimited):
                self.pending = flows.pending_code(self.request, self.flow) or self.pending
            context = self.get_context_data(form=CodeForm(), resend_error=describe(exc))
            return self.render_to_response(context)
        messages.success(
            self.request,
            _("We sent a new code to %(recipient)s.") % {"recipient": self.pending.masked},
        )
        return redirect(self.request.path)

    def form_valid(self, form: CodeForm) -> HttpResponse:
        try:
            return self.check(form.cleaned_data["code"], form)
        except OTPError as exc:
            form.add_error("code", describe(exc))
            return self.form_invalid(form)

    def check(self, code: str, form: CodeForm) -> HttpResponse:
        result = verify_otp(
            flows.client(),
            self.pending.otp_token,
            code,
            usage=self.pending.usage,
            **self.pending.recipient_kwargs(),
        )
        return self.verified(result, form)

    def verified(self, result: VerifyResult, form: CodeForm) -> HttpResponse:
        raise NotImplementedError


# --- sign up -----------------------------------------------------------------------


class SignupView(SendCodeView):
    flow = "signup"
    usage = Usage.SIGNUP
    verify_url = "demo:signup-verify"
    title = _("Create an account")
    intro = _("We will send a code to your email address or mobile number to check it is yours.")


class SignupVerifyView(VerifyCodeView):
    flow = "signup"
    start_url = "demo:signup"
    title = _("Create an account")

    def verified(self, result: VerifyResult, form: CodeForm) -> HttpResponse:
        flows.mark_verified(self.request, self.flow, result.channel, result.recipient)
        return redirect("demo:signup-password")


class ChoosePasswordView(FormView):
    """Step 3 of sign-up and reset: choose a password for the verified recipient."""

    template_name = "demo/set_password.html"
    form_class = SetPasswordForm
    flow: str
    start_url: str
    title: Promise

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        verified = flows.verified_recipient(request, self.flow)
        if verified is None:
            return redirect(self.start_url)
        self.channel, self.recipient = verified
        return super().dispatch(request, *args, **kwargs)


class SignupPasswordView(ChoosePasswordView):
    flow = "signup"
    start_url = "demo:signup"
    title = _("Choose a password")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "user": users.new_user(self.channel, self.recipient)}

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        error = EmailIsUsed() if self.channel == Channel.EMAIL else PhoneNumberIsUsed()
        if find_user(self.channel, self.recipient) is not None:  # taken since the code was sent
            form.add_error(None, describe(error))
            return self.form_invalid(form)
        try:
            user = users.save_new_user(form.save(commit=False), self.channel, self.recipient)
        except IntegrityError:
            form.add_error(None, describe(error))
            return self.form_invalid(form)
        flows.forget(self.request, self.flow)
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(self.request, _("Welcome! Your account is ready."))
        return redirect("demo:account")


# --- log in with a code ------------------------------------------------------------------


class LoginCodeView(SendCodeView):
    flow = "login"
    usage = Usage.LOGIN
    verify_url = "demo:login-code-verify"
    title = _("Log in with a code")
    intro = _("We will send a one-time code to your email address or mobile number.")

    def auth_source_id(self, channel: str) -> str:
        return login_auth_source(channel)

    def send_kwargs(self) -> dict[str, Any]:
        nxt = self.request.POST.get("next") or self.request.GET.get("next")
        return {"next_url": safe_next(self.request, nxt)}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(next=self.send_kwargs()["next_url"], **kwargs)


class LoginCodeVerifyView(VerifyCodeView):
    flow = "login"
    start_url = "demo:login-code"
    title = _("Log in with a code")

    def check(self, code: str, form: CodeForm) -> HttpResponse:
        pending = self.pending
        user = authenticate(
            self.request, otp_token=pending.otp_token, otp=code, **pending.recipient_kwargs()
        )
        if user is None:
            error = getattr(self.request, "ciam_otp_error", None)
            if error is not None:
                raise error
            # The code was right (and is used up), so the person owns the address.
            form.add_error(
                "code",
                _("The code is right, but no account uses this email address. Sign up first.")
                if pending.channel == Channel.EMAIL
                else _("The code is right, but no account uses this mobile number. Sign up first."),
            )
            flows.forget(self.request, self.flow)
            return self.form_invalid(form)
        flows.forget(self.request, self.flow)
        login(self.request, user)
        return redirect(safe_next(self.request, pending.next_url) or "demo:account")


# --- reset a password --------------------------------------------------------------------


class ResetView(SendCodeView):
    """Answers the same for every address: the service sends nothing to unknown ones."""

    flow = "reset"
    usage = Usage.RESET_PASSWORD
    verify_url = "demo:reset-verify"
    title = _("Reset your password")
    intro = _(
        "Enter the email address or mobile number of your account. If it belongs to an "
        "account, we will send it a code."
    )


class ResetVerifyView(VerifyCodeView):
    flow = "reset"
    start_url = "demo:reset"
    title = _("Reset your password")

    def verified(self, result: VerifyResult, form: CodeForm) -> HttpResponse:
        flows.mark_verified(self.request, self.flow, result.channel, result.recipient)
        return redirect("demo:reset-password")


class ResetPasswordView(ChoosePasswordView):
    flow = "reset"
    start_url = "demo:reset"
    title = _("Choose a new password")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        verified = flows.verified_recipient(request, self.flow)
        self.user = find_user(*verified) if verified is not None else None
        if verified is not None and self.user is None:  # the account is gone since
            flows.forget(request, self.flow)
            return redirect(self.start_url)
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "user": self.user}

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        user = form.save()
        flows.forget(self.request, self.flow)
        if self.request.user.is_authenticated and self.request.user.pk == user.pk:
            update_session_auth_hash(self.request, user)
            messages.success(self.request, _("Your password has been changed."))
            return redirect("demo:account")
        messages.success(
            self.request, _("Your password has been changed. Log in with your new password.")
        )
        return redirect("demo:login")


# --- change email address or mobile number (update_userinfo) ------------------------------


class ChangeRecipientView(LoginRequiredMixin, SendCodeView):
    login_url = LOGIN_URL
    usage = Usage.UPDATE_USERINFO

    def send_kwargs(self) -> dict[str, Any]:
        return {"user_id": self.request.user.pk}

    def describe(self, error: OTPError, form: RecipientForm) -> str:
        if isinstance(error, (EmailIsUsed, PhoneNumberIsUsed)) and self._is_own(form):
            return str(
                _("This is already your email address.")
                if form.channel == Channel.EMAIL
                else _("This is already your mobile number.")
            )
        return describe(error)

    def _is_own(self, form: RecipientForm) -> bool:
        value = form.cleaned_data["recipient"]
        normalize = normalize_email if form.channel == Channel.EMAIL else normalize_phone_number
        return find_user(form.channel, normalize(value).key) == self.request.user


class ChangeEmailView(ChangeRecipientView):
    flow = "email"
    channels = (Channel.EMAIL,)
    verify_url = "demo:email-verify"
    title = _("Change your email address")
    intro = _("We will send a code to the new address to check it is yours.")


class ChangePhoneView(ChangeRecipientView):
    flow = "phone"
    channels = (Channel.SMS,)
    verify_url = "demo:phone-verify"
    title = _("Change your mobile number")
    intro = _("We will send a code to the new number to check it is yours.")


class ChangeRecipientVerifyView(LoginRequiredMixin, VerifyCodeView):
    login_url = LOGIN_URL

    def allowed(self, pending: flows.PendingCode) -> bool:
        return pending.user_id == self.request.user.pk

    def verified(self, result: VerifyResult, form: CodeForm) -> HttpResponse:
        user = self.request.user
        owner = find_user(result.channel, result.recipient)
        error = EmailIsUsed() if result.channel == Channel.EMAIL else PhoneNumberIsUsed()
        if owner is not None and owner != user:  # taken since the code was sent
            form.add_error("code", describe(error))
            return self.form_invalid(form)
        try:
            users.set_recipient(user, result.channel, result.recipient)
        except IntegrityError:
            form.add_error("code", describe(error))
            return self.form_invalid(form)
        flows.forget(self.request, self.flow)
        messages.success(
            self.request,
            (
                _("Your email address is now %(recipient)s.")
                if result.channel == Channel.EMAIL
                else _("Your mobile number is now %(recipient)s.")
            )
            % {"recipient": result.recipient},
        )
        return redirect("demo:account")


class ChangeEmailVerifyView(ChangeRecipientVerifyView):
    flow = "email"
    start_url = "demo:email"
    title = _("Change your email address")


class ChangePhoneVerifyView(ChangeRecipientVerifyView):
    flow = "phone"
    start_url = "demo:phone"
    title = _("Change your mobile number")
