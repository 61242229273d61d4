"""Provisioning and housekeeping: API clients with their quotas, and purging old tokens.

Used by the management commands, the admin, the demo data and Celery beat.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from .. import crypto
from ..models import Channel, OTPClient, OTPToken, Quota, QuotaPeriod, period_start_for


def create_client(
    name: str,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    sms_quota: int | None = None,
    email_quota: int | None = None,
    quota_period: str = QuotaPeriod.NONE,
) -> tuple[OTPClient, str]:
    """Create an API client (and its quotas); return it with the raw secret, shown once."""
    with transaction.atomic():
        client = OTPClient(name=name, client_id=client_id or crypto.new_client_id())
        raw_secret = client.set_secret(client_secret)
        client.full_clean()
        client.save()
        for channel, limit in ((Channel.SMS, sms_quota), (Channel.EMAIL, email_quota)):
            if limit is not None:
                Quota.objects.create(
                    client=client,
                    channel=channel,
                    limit=limit,
                    period=quota_period,
                    period_start=period_start_for(quota_period),
                )
    return client, raw_secret


def purge_expired_tokens(*, older_than: dt.timedelta = dt.timedelta(0)) -> int:
    """Delete tokens whose otp_token expired more than ``older_than`` ago; return the count."""
    return OTPToken.objects.purge_expired(older_than=older_than)
