"""The dashboard page and its "resume deliveries" button, served under the token log's URLs."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext

from .. import breaker
from ..dashboard import build_dashboard
from ..models import Quota
from .base import ADMIN_CSS, admin_url

DASHBOARD_TEMPLATE = "django_ciam_otp/admin/dashboard.html"


class TokenLogDashboard(admin.ModelAdmin):
    """The dashboard's pages, added to the token log's admin (``OTPTokenAdmin``).

    Their URLs are the token log's (``.../otptoken/dashboard/``); the page
    shows whoever may view the token log or the quotas what they may see.
    """

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="ciam_otp_dashboard",
            ),
            path(
                "dashboard/resume/",
                self.admin_site.admin_view(self.resume_view),
                name="ciam_otp_dashboard_resume",
            ),
        ]
        return custom + super().get_urls()

    def can_resume(self, request: HttpRequest) -> bool:
        """Resuming stopped deliveries is a change to how codes go out: auth-source editors."""
        return request.user.has_perm("ciam_otp.change_authsource")

    def resume_view(self, request: HttpRequest) -> HttpResponse:
        """POST: lift a channel's delivery stop now (the operator fixed its cause)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.can_resume(request):
            raise PermissionDenied
        channel = request.POST.get("channel", "")
        if channel not in breaker.CHANNELS:
            return HttpResponseBadRequest("unknown channel")
        breaker.reset(channel)
        messages.success(
            request,
            gettext("%(channel)s deliveries resumed: the next one tries the provider again.")
            % {"channel": channel.upper()},
        )
        return redirect(admin_url(self, "ciam_otp_dashboard"))

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        traffic = self.has_view_permission(request)
        quotas = self.admin_site.get_model_admin(Quota).has_view_permission(request)
        if not (traffic or quotas):
            raise PermissionDenied
        dashboard = build_dashboard(traffic=traffic, quotas=quotas)
        token_log = admin_url(self, "ciam_otp_otptoken_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("One-time passcodes today"),
            "subtitle": None,
            "opts": self.opts,
            "dashboard": dashboard,
            "token_log_url": token_log,
            "failed_url": token_log + "?" + urlencode({"delivery_status__exact": "failed"}),
            "quotas_url": admin_url(self, "ciam_otp_quota_changelist"),
            "resume_url": (
                admin_url(self, "ciam_otp_dashboard_resume") if self.can_resume(request) else ""
            ),
            "css": ADMIN_CSS,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, DASHBOARD_TEMPLATE, context)
