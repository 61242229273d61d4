"""``{% ciam_otp_dashboard %}``: the dashboard numbers on the app's admin index."""

from __future__ import annotations

from typing import Any

from django import template

from ..dashboard import Dashboard, build_dashboard

register = template.Library()


@register.simple_tag(takes_context=True)
def ciam_otp_dashboard(context: dict[str, Any]) -> Dashboard | None:
    """Build the dashboard with what the viewing user may see; ``None`` if nothing."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None:
        return None
    traffic = user.has_perm("ciam_otp.view_otptoken")
    quotas = user.has_perm("ciam_otp.view_quota") or user.has_perm("ciam_otp.change_quota")
    if not (traffic or quotas):
        return None
    return build_dashboard(traffic=traffic, quotas=quotas)
