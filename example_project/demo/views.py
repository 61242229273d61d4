"""The demo's pages for end users: sign up, log in, reset a password, change email or phone.

Each page is thin: it sends codes with :func:`django_ciam_otp.send_otp`,
checks them with :func:`django_ciam_otp.verify_otp` (or, to log in, with
``authenticate()`` and :class:`~django_ciam_otp.backends.auth.OTPBackend`),
and turns the contract's errors into sentences (:mod:`.errors`). The session
holds the ``otp_token`` (:mod:`.flows`); forms are CSRF-protected.

What every page does besides (:class:`Page`, :class:`FormPage`):

* ``Cache-Control: no-store``: Back after logging out or logging in shows
  nothing of the account or the code on a shared device;
* every POST is answered with a redirect, a failed one too (:mod:`.prg`),
  so Back and Reload never send a form again;
* the steps of a flow run one request per session at a time, and a second
  identical submit continues the flow instead of failing (:mod:`.steps`).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, update_session_auth_hash
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.views import redirect_to_login
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.template.response import TemplateResponse
from django.urls import reverse, reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.utils.functional import Promise
from django.utils.html import escape, format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import FormView, TemplateView

from django_ciam_otp import identity, verify_otp
from django_ciam_otp.exceptions import (
    EmailIsUsed,
    InvalidOTP,
    OTPError,
    PhoneNumberIsUsed,
    RateLimited,
)
from django_ciam_otp.flows import VerifyResult
from django_ciam_otp.models import Channel, Usage

from . import errors, flows, prg, steps, users
from .forms import CodeForm, PasswordLoginForm, RecipientForm, normalise_code

LOGIN_URL = reverse_lazy("demo:login")
#: The backend a password (or a replayed step) logs in with.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

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


def format_html_sentence(sentence: str, **values: str) -> SafeString:
    """A translated sentence with ``%(name)s`` placeholders, the values in bold."""
    bold = {name: format_html("<strong>{}</strong>", value) for name, value in values.items()}
    return mark_safe(escape(sentence) % bold)  # noqa: S308 - every part is escaped


def is_used_error(channel: str) -> OTPError:
    return EmailIsUsed() if channel == Channel.EMAIL else PhoneNumberIsUsed()


# --- what every page does ----------------------------------------------------------------


class Page:
    """A demo page: never cached, optionally for logged-in people only, optionally one at a time.

    Subclasses check their state in :meth:`prepare` (not in ``dispatch``), so
    that it runs after the lock: the state is then what the session's previous
    request left.
    """

    login_required = False
    #: Serialise the session's requests to this page (the steps of a flow).
    one_at_a_time = False
    flow_title: Promise | str = ""
    step_title: Promise | str = ""
    request: HttpRequest

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self.one_at_a_time and request.method == "GET":
            flows.start(request)
        release = steps.lock(request) if self.one_at_a_time else steps.no_lock
        try:
            if self.login_required and not request.user.is_authenticated:
                response = redirect_to_login(request.get_full_path(), resolve_url(LOGIN_URL))
            else:
                response = self.prepare() or super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
            if isinstance(response, TemplateResponse):
                response.render()  # while the lock is held: a template error releases it too
        except BaseException:
            release()
            raise
        add_never_cache_headers(response)
        steps.release_when_sent(response, release)
        return response

    def prepare(self) -> HttpResponse | None:
        """Check the flow's state; a response here (a redirect) answers instead of the page."""
        return None

    def page_title(self, has_errors: bool = False) -> str:
        parts = [str(p) for p in (self.step_title, self.flow_title) if p]
        title = " – ".join(dict.fromkeys(parts))
        return gettext("Error: %(title)s") % {"title": title} if has_errors else title


class FormPage(Page, FormView):
    """A form that answers every POST with a redirect; a failed one keeps its errors for the GET."""

    #: Fields whose values are shown again after a failed submit (never a password or code).
    keep: tuple[str, ...] = ()
    kept: dict[str, Any] | None = None

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.kept = prg.pop(request)
        return super().get(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        return {**super().get_initial(), **(self.kept or {}).get("data", {})}

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        if self.kept:
            prg.show_errors(form, self.kept["errors"])
            prg.focus_first_error(form)
        return form

    def form_invalid(self, form: Any) -> HttpResponse:
        prg.stash_form(self.request, form, self.keep)
        return redirect(self.request.get_full_path())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        context["page_title"] = self.page_title(bool(form is not None and form.errors))
        return context


class HomeView(Page, TemplateView):
    template_name = "demo/home.html"


class AccountView(Page, TemplateView):
    login_required = True
    template_name = "demo/account.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            phone_number=users.phone_number_of(self.request.user), **kwargs
        )


class PasswordLoginView(FormPage):
    template_name = "demo/login.html"
    form_class = PasswordLoginForm
    keep = ("login",)
    flow_title = _("Log in")

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


class SendCodeView(FormPage):
    """Step 1: ask where to send the code, send it, go to step 2."""

    template_name = "demo/send_code.html"
    form_class = RecipientForm
    keep = ("recipient",)
    one_at_a_time = True
    flow: str
    usage: str
    channels: tuple[str, ...] = (Channel.EMAIL, Channel.SMS)
    verify_url: str
    intro: Promise
    submit_label: Promise = _("Send code")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "channels": self.channels}

    def auth_source_id(self, channel: str) -> str | None:
        return None

    def owner(self) -> int | None:
        """Whose account the code is for (the change-of-address pages' user)."""
        return None

    def send_kwargs(self) -> dict[str, Any]:
        return {}

    def describe(self, error: OTPError, form: RecipientForm) -> str:
        return errors.describe(error)

    def form_valid(self, form: RecipientForm) -> HttpResponse:
        pending = flows.pending_code(self.request, self.flow)
        same = pending if pending and pending.is_for(form.channel, form.key, self.owner()) else None
        if same is not None and not same.dead and same.alive() and same.wait() > 0:
            # Just sent there (a double submit, or Back and the same address again):
            # that code is still good, and a new one would be refused anyway.
            return redirect(self.verify_url)
        try:
            flows.send_code(
                self.request,
                self.flow,
                usage=self.usage,
                channel=form.channel,
                recipient=form.cleaned_data["recipient"],
                auth_source_id=self.auth_source_id(form.channel),
                user_id=self.owner(),
                **self.send_kwargs(),
            )
        except RateLimited as exc:
            if same is not None and same.alive():  # the code page shows the wait
                flows.refused(self.request, self.flow, same, exc)
                return redirect(self.verify_url)
            form.add_error("recipient", prg.WaitError(exc.code, time.time() + exc.retry_after))
            return self.form_invalid(form)
        except OTPError as exc:
            form.add_error("recipient", self.describe(exc, form))
            return self.form_invalid(form)
        return redirect(self.verify_url)


class VerifyCodeView(FormPage):
    """Step 2: enter the code (or ask for a new one, once the wait is over)."""

    template_name = "demo/verify_code.html"
    form_class = CodeForm
    one_at_a_time = True
    step_title = _("Enter the code")
    flow: str
    start_url: str
    pending: flows.PendingCode
    code: str = ""

    def prepare(self) -> HttpResponse | None:
        pending = flows.pending_code(self.request, self.flow)
        if pending is None or not self.allowed(pending):
            return self.moved_on() or redirect(self.start_url)
        self.pending = pending
        return None

    def allowed(self, pending: flows.PendingCode) -> bool:
        return True

    def moved_on(self) -> HttpResponse | None:
        """No code is pending: a second submit of the code that finished the step continues."""
        done = steps.recall(self.request, self.flow)
        if done is None:
            return None
        code = normalise_code(self.request.POST.get("code", ""), 0)
        user = done.proven_by(self.request, code=code)
        return steps.replay(self.request, done, user) if user else None

    def get_form_kwargs(self) -> dict[str, Any]:
        pending = self.pending
        return {
            **super().get_form_kwargs(),
            "length": pending.code_length,
            "help_text": errors.code_help(pending.code_length, pending.code_validity),
        }

    def sent_to(self) -> str:
        return gettext("We sent a code to %(recipient)s.")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        pending = self.pending
        resend_error = self.resend_error((self.kept or {}).get("extra", {}).get("resend"))
        context = super().get_context_data(
            pending=pending,
            wait=pending.wait(),
            lead=format_html_sentence(self.sent_to(), recipient=pending.masked),
            dead=errors.dead_sentence(pending.dead) if pending.dead else "",
            resend_error=resend_error,
            **kwargs,
        )
        if resend_error:  # the refusal is what to read first, not the code box
            context["form"].fields["code"].widget.attrs.pop("autofocus", None)
        return context

    def page_title(self, has_errors: bool = False) -> str:
        used_up = bool(getattr(self, "pending", None) and self.pending.dead)
        return super().page_title(has_errors or used_up)

    def resend_error(self, kept: dict[str, Any] | None) -> str:
        if not kept:
            return ""
        if "until" in kept:  # a wait: what is left of it now, counting down
            left = round(kept["until"] - time.time())
            return errors.wait_sentence(kept["code"], left) if left > 0 else ""
        return str(kept.get("message", ""))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "resend" in request.POST:
            return self.resend()
        if self.pending.dead:  # nothing to check: the page offers a new code
            return redirect(request.get_full_path())
        return super().post(request, *args, **kwargs)

    def resend(self) -> HttpResponse:
        shown = self.request.POST.get("code_for")
        if shown and shown != self.pending.ref:
            # The page asked for a new code in place of one that is already replaced:
            # this is a second submit of "Send a new code" (or another tab's).
            steps.add_once(self.request, self.resent_to() % {"recipient": self.pending.masked})
            return redirect(self.request.get_full_path())
        try:
            self.pending = flows.resend_code(self.request, self.flow, self.pending)
        except RateLimited as exc:
            kept = {"code": exc.code, "until": time.time() + exc.retry_after}
            return self.resend_refused(kept)
        except OTPError as exc:
            return self.resend_refused({"message": errors.describe(exc)})
        messages.success(self.request, self.resent_to() % {"recipient": self.pending.masked})
        return redirect(self.request.get_full_path())

    def resent_to(self) -> str:
        return gettext("We sent a new code to %(recipient)s.")

    def resend_refused(self, kept: dict[str, Any]) -> HttpResponse:
        path = self.request.get_full_path()
        prg.stash(self.request, path=path, errors={}, extra={"resend": kept})
        return redirect(path)

    def form_valid(self, form: CodeForm) -> HttpResponse:
        self.code = code = form.cleaned_data["code"]
        if flows.repeats_wrong_code(self.pending, code):  # a double submit: no second attempt
            form.add_error("code", self.pending.tried_message)
            return self.form_invalid(form)
        try:
            return self.check(code, form)
        except OTPError as exc:
            dead = errors.dead_code(exc)
            if dead is not None:
                flows.mark_dead(self.request, self.flow, self.pending, dead)
                return redirect(self.request.get_full_path())
            message = errors.describe(exc)
            if isinstance(exc, InvalidOTP):
                flows.note_wrong_code(self.request, self.flow, self.pending, code, message)
            form.add_error("code", message)
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

    def back_to_start(self, error: OTPError | str) -> HttpResponse:
        """End the flow and show ``error`` on its first page, with the address typed there."""
        flows.forget(self.request, self.flow)
        message = error if isinstance(error, str) else errors.describe(error)
        prg.stash(
            self.request,
            path=reverse(self.start_url),
            errors={"recipient": [{"message": message}]},
            data={"recipient": self.pending.recipient},
        )
        return redirect(self.start_url)


class ChoosePasswordView(FormPage):
    """Step 3 of sign-up and reset: choose a password for the verified recipient."""

    template_name = "demo/set_password.html"
    form_class = SetPasswordForm
    one_at_a_time = True
    step_title = _("Choose a password")
    flow: str
    start_url: str

    def prepare(self) -> HttpResponse | None:
        verified = flows.verified_recipient(self.request, self.flow)
        if verified is None:
            return self.moved_on() or redirect(self.start_url)
        self.channel, self.recipient = verified
        return None

    def moved_on(self) -> HttpResponse | None:
        """The password was saved by this session's previous submit: the same password continues."""
        done = steps.recall(self.request, self.flow)
        user = done.proven_by(self.request) if done is not None else None
        return steps.replay(self.request, done, user) if done is not None and user else None


# --- sign up -----------------------------------------------------------------------


class SignupView(SendCodeView):
    flow = "signup"
    usage = Usage.SIGNUP
    verify_url = "demo:signup-verify"
    flow_title = _("Create an account")
    intro = _("We will send a code to your email address or mobile number to check it is yours.")


class SignupVerifyView(VerifyCodeView):
    flow = "signup"
    start_url = "demo:signup"
    flow_title = _("Create an account")

    def moved_on(self) -> HttpResponse | None:
        if flows.verified_recipient(self.request, self.flow) is not None:
            return redirect("demo:signup-password")  # verified by the previous submit
        return super().moved_on()

    def verified(self, result: VerifyResult, form: CodeForm) -> HttpResponse:
        flows.mark_verified(self.request, self.flow, result.channel, result.recipient)
        return redirect("demo:signup-password")


class SignupPasswordView(ChoosePasswordView):
    flow = "signup"
    start_url = "demo:signup"
    flow_title = _("Create an account")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "user": users.new_user(self.channel, self.recipient)}

    def taken(self) -> HttpResponse:
        """The address got an account since its code was sent: start again, saying why."""
        flows.forget(self.request, self.flow)
        prg.stash(
            self.request,
            path=reverse(self.start_url),
            errors={"recipient": [{"message": errors.describe(is_used_error(self.channel))}]},
            data={"recipient": self.recipient},
        )
        return redirect(self.start_url)

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        if identity.is_used(self.channel, self.recipient):
            return self.taken()
        try:
            user = users.save_new_user(form.save(commit=False), self.channel, self.recipient)
        except IntegrityError:
            return self.taken()
        flows.forget(self.request, self.flow)
        login(self.request, user, backend=MODEL_BACKEND)
        welcome = gettext("Welcome! Your account is ready.")
        return password_saved(
            self.request, self.flow, user, to=reverse("demo:account"), note=welcome, log_in=True
        )


def password_saved(
    request: HttpRequest, flow: str, user: Any, *, to: str, note: str, log_in: bool
) -> HttpResponse:
    """A password step is done: remember it (a second submit continues from it), say so, go on."""
    steps.remember(
        request,
        flow,
        steps.Done(
            to=to,
            message=note,
            user_id=user.pk,
            backend=MODEL_BACKEND,
            password=True,
            log_in=log_in,
        ),
    )
    messages.success(request, note)
    return redirect(to)


# --- log in with a code ------------------------------------------------------------------


class LoginCodeView(SendCodeView):
    flow = "login"
    usage = Usage.LOGIN
    verify_url = "demo:login-code-verify"
    flow_title = _("Log in with a code")
    intro = _(
        "We will send a one-time code to your email address or mobile number. "
        "No account yet? The same code creates one."
    )

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
    flow_title = _("Log in with a code")

    def check(self, code: str, form: CodeForm) -> HttpResponse:
        pending = self.pending
        user = authenticate(
            self.request, otp_token=pending.otp_token, otp=code, **pending.recipient_kwargs()
        )
        if user is None:
            error = getattr(self.request, "ciam_otp_error", None)
            if error is not None:
                raise error
            return self.no_account()
        flows.forget(self.request, self.flow)
        to = safe_next(self.request, pending.next_url) or reverse("demo:account")
        login(self.request, user)
        steps.remember(
            self.request,
            self.flow,
            steps.Done(
                to=to,
                user_id=user.pk,
                backend=getattr(user, "backend", MODEL_BACKEND),
                code=flows.code_proof(code),
                log_in=True,
            ),
        )
        return redirect(to)

    def no_account(self) -> HttpResponse:
        """The code was right (and is used up): the person owns the address.

        With no account on it, sign-up continues from here — the address is
        verified, so no second code is needed (with ``AUTO_SIGNUP`` on, the
        authentication backend creates the account instead and this never runs).
        """
        pending = self.pending
        key = pending.key or identity.canonical(pending.channel, pending.recipient)
        if key is None or identity.is_used(pending.channel, key):
            # An account that may not log in (inactive, or two sharing the address).
            return self.back_to_start(gettext("The code is right, but this account cannot log in."))
        flows.forget(self.request, self.flow)
        flows.mark_verified(self.request, "signup", pending.channel, key)
        note = (
            gettext("No account uses this email address yet. Choose a password to create one.")
            if pending.channel == Channel.EMAIL
            else gettext("No account uses this mobile number yet. Choose a password to create one.")
        )
        to = reverse("demo:signup-password")
        steps.remember(
            self.request,
            self.flow,
            steps.Done(to=to, message=note, code=flows.code_proof(self.code)),
        )
        messages.info(self.request, note)
        return redirect(to)


# --- reset a password --------------------------------------------------------------------


class ResetView(SendCodeView):
    """Answers the same for every address: the service sends nothing to unknown ones."""

    flow = "reset"
    usage = Usage.RESET_PASSWORD
    verify_url = "demo:reset-verify"
    flow_title = _("Reset your password")
    intro = _(
        "Enter the email address or mobile number of your account. If it belongs to an "
        "account, we will send it a code."
    )


class ResetVerifyView(VerifyCodeView):
    flow = "reset"
    start_url = "demo:reset"
    flow_title = _("Reset your password")

    # The same words whether or not an account uses the address (no enumeration).
    def sent_to(self) -> str:
        return gettext("If this belongs to an account, we sent a code to %(recipient)s.")

    def resent_to(self) -> str:
        return gettext("If this belongs to an account, we sent a new code to %(recipient)s.")

    def moved_on(self) -> HttpResponse | None:
        if flows.verified_recipient(self.request, self.flow) is not None:
            return redirect("demo:reset-password")
        return super().moved_on()

    def verified(self, result: VerifyResult, form: CodeForm) -> HttpResponse:
        flows.mark_verified(self.request, self.flow, result.channel, result.recipient)
        return redirect("demo:reset-password")


class ResetPasswordView(ChoosePasswordView):
    flow = "reset"
    start_url = "demo:reset"
    flow_title = _("Reset your password")
    step_title = _("Choose a new password")

    def prepare(self) -> HttpResponse | None:
        response = super().prepare()
        if response is not None:
            return response
        self.user = identity.find_user(self.channel, self.recipient)
        if self.user is None:  # the account is gone since
            flows.forget(self.request, self.flow)
            return redirect(self.start_url)
        return None

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "user": self.user}

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        # Asked before saving: afterwards the session no longer matches the password.
        stays = self.request.user.is_authenticated and self.request.user.pk == self.user.pk
        user = form.save()
        flows.forget(self.request, self.flow)
        if stays:
            update_session_auth_hash(self.request, user)
            note, to = gettext("Your password has been changed."), reverse("demo:account")
        else:
            note = gettext("Your password has been changed. Log in with your new password.")
            to = reverse("demo:login")
        return password_saved(self.request, self.flow, user, to=to, note=note, log_in=stays)


# --- change email address or mobile number (update_userinfo) ------------------------------


class ChangeRecipientView(SendCodeView):
    login_required = True
    usage = Usage.UPDATE_USERINFO

    def owner(self) -> int | None:
        return self.request.user.pk

    def describe(self, error: OTPError, form: RecipientForm) -> str:
        if isinstance(error, (EmailIsUsed, PhoneNumberIsUsed)) and self._is_own(form):
            return str(
                _("This is already your email address.")
                if form.channel == Channel.EMAIL
                else _("This is already your mobile number.")
            )
        return errors.describe(error)

    def _is_own(self, form: RecipientForm) -> bool:
        return (
            form.key is not None and identity.find_user(form.channel, form.key) == self.request.user
        )


class ChangeEmailView(ChangeRecipientView):
    flow = "email"
    channels = (Channel.EMAIL,)
    verify_url = "demo:email-verify"
    flow_title = _("Change your email address")
    intro = _("We will send a code to the new address to check it is yours.")


class ChangePhoneView(ChangeRecipientView):
    flow = "phone"
    channels = (Channel.SMS,)
    verify_url = "demo:phone-verify"
    flow_title = _("Change your mobile number")
    intro = _("We will send a code to the new number to check it is yours.")


class ChangeRecipientVerifyView(VerifyCodeView):
    login_required = True

    def allowed(self, pending: flows.PendingCode) -> bool:
        return pending.user_id == self.request.user.pk

    def verified(self, result: VerifyResult, form: CodeForm) -> HttpResponse:
        user = self.request.user
        owner = identity.find_user(result.channel, result.recipient)
        if (owner is not None and owner != user) or (
            owner is None and identity.is_used(result.channel, result.recipient)
        ):  # taken since the code was sent
            return self.back_to_start(is_used_error(result.channel))
        try:
            users.set_recipient(user, result.channel, result.recipient)
        except IntegrityError:
            return self.back_to_start(is_used_error(result.channel))
        flows.forget(self.request, self.flow)
        note = (
            gettext("Your email address is now %(recipient)s.")
            if result.channel == Channel.EMAIL
            else gettext("Your mobile number is now %(recipient)s.")
        ) % {"recipient": result.recipient}
        to = reverse("demo:account")
        steps.remember(
            self.request,
            self.flow,
            steps.Done(to=to, message=note, code=flows.code_proof(self.code)),
        )
        messages.success(self.request, note)
        return redirect(to)


class ChangeEmailVerifyView(ChangeRecipientVerifyView):
    flow = "email"
    start_url = "demo:email"
    flow_title = _("Change your email address")


class ChangePhoneVerifyView(ChangeRecipientVerifyView):
    flow = "phone"
    start_url = "demo:phone"
    flow_title = _("Change your mobile number")
