"""One place to read the ``CIAM_OTP`` settings dict.

Every key is optional; ``DEFAULTS`` documents them all. A backend with settings
of its own keeps them in a key it names and documents
(``BaseBackend.settings_key``, read with ``backends.settings.backend_setting``),
so this table holds none of a provider's. Values are read lazily
(so ``override_settings`` and pytest-django's ``settings`` fixture work) and the
cache is dropped on ``setting_changed``. Dotted paths listed in
``IMPORT_STRINGS`` are imported on first use, not at import time, so a typo is
reported by a system check (``manage.py check``) rather than by a crash.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

SETTINGS_NAME = "CIAM_OTP"

#: The delivery task's time limits (``tasks.deliver_otp``), in seconds: a
#: provider call that hangs past its own timeout is interrupted at the soft
#: limit and retried; the hard limit stays below ``DELIVERY_CLAIM_LEASE`` (25 s),
#: so a claim that old belongs to a run that is over. Backends' checks compare
#: their own timeouts with the soft limit.
DELIVERY_TASK_SOFT_TIME_LIMIT = 15
DELIVERY_TASK_TIME_LIMIT = 20

DEFAULTS: dict[str, Any] = {
    # --- keys and hashing -------------------------------------------------
    # Secret key material for the keyed hashes (client secrets, codes, tokens,
    # recipients) and for encrypting codes on their way to the worker. ``None``
    # falls back to ``settings.SECRET_KEY``; set it explicitly in production so
    # rotating SECRET_KEY does not invalidate every client secret.
    "HASH_KEY": None,
    # Older keys still accepted when checking client secrets (key rotation).
    "HASH_KEY_FALLBACKS": [],
    # --- tokens and codes ---------------------------------------------------
    "TOKEN_TTL": 300,  # seconds an otp_token lives (SPEC: 5 minutes)
    "DEFAULT_CODE_LENGTH": 6,  # when no auth source is named
    "DEFAULT_CODE_VALIDITY": 60,  # seconds, when no auth source is named
    "MAX_VERIFY_ATTEMPTS": 5,  # wrong codes before a token is dead
    # Consecutive failed verifications per recipient, across resends, before
    # that recipient is locked out (NIST SP 800-63B 5.2.2 allows at most 100).
    "MAX_RECIPIENT_FAILURES": 100,
    "RECIPIENT_LOCKOUT_SECONDS": 3600,
    # --- recipients -----------------------------------------------------------
    # Regions whose mobile numbers are accepted (ISO 3166 codes; CN = mainland).
    "PHONE_REGIONS": ["CN"],
    # Region assumed for numbers written without a country code.
    "DEFAULT_PHONE_REGION": "CN",
    # Domains refused with ``invalid_email`` (exact domain or any subdomain).
    "EMAIL_DOMAIN_DENYLIST": [],
    # Ask DNS whether the domain can receive mail (slow; off by default).
    "EMAIL_CHECK_DELIVERABILITY": False,
    # Accept non-ASCII characters before the @ (RFC 6531, SMTPUTF8). Off by
    # default: Django's SMTP backend cannot deliver to such an address (it
    # RFC 2047-encodes the local part, which names another mailbox). Turn it on
    # only with an email backend that speaks SMTPUTF8. IDN domains are always
    # accepted, and a code always goes to their IDNA2008 (punycode) form.
    "EMAIL_ALLOW_SMTPUTF8": False,
    # --- is-used checks (signup / update_userinfo / reset_password) -----------
    # Field on the user model holding the email; None means the model's
    # EMAIL_FIELD (``email`` for django.contrib.auth.models.User).
    "USER_EMAIL_FIELD": None,
    # Field on the user model holding the phone number in E.164 form; None
    # means no phone numbers belong to users unless USER_LOOKUP says so.
    "USER_PHONE_FIELD": None,
    # Dotted path to ``callable(channel, recipient) -> user | None`` (or a list
    # of candidate users); replaces the field lookups above when set. What it
    # finds is only a candidate: a user counts only when the address stored on
    # it has the recipient's canonical form (django_ciam_otp.identity), so a
    # look-up that folds more (``__iexact``, a _ci collation) cannot hand one
    # person's account to a look-alike address.
    "USER_LOOKUP": None,
    # Dotted path to ``callable(user, channel) -> str | None``: the address
    # stored on a user ("email" or "sms"), for sites that keep it outside the
    # fields above (e.g. a profile model). Codes for an account go to it.
    "USER_ADDRESS": None,
    # --- the authentication backend (backends.auth.OTPBackend) ------------------
    # client_id of the OTPClient the site's own pages send and verify codes as.
    "SITE_CLIENT_ID": None,
    # Create a user on the first successful code login for an unknown recipient
    # (like Tencent CIAM's auto_signup). Off by default.
    "AUTO_SIGNUP": False,
    # Dotted path to ``callable(channel, recipient) -> user`` used by AUTO_SIGNUP;
    # None creates a user with an unusable password (username = recipient).
    "AUTO_SIGNUP_HANDLER": None,
    # --- limits -------------------------------------------------------------
    # django-ratelimit rates per recipient (Tencent Cloud SMS's defaults).
    "SMS_RATE_LIMITS": ["1/30s", "5/h", "10/d"],
    "EMAIL_RATE_LIMITS": ["1/30s", "5/h", "10/d"],
    # Count recipient limits separately per usage, as Tencent Cloud SMS counts
    # "same number, same content": a sign-up code does not block a login code.
    "RATE_LIMIT_PER_USAGE": True,
    # The share of each per-recipient limit one API client may use up (0 < x <= 1).
    # 1.0 (default) keeps Tencent's numbers for a site with one client; with
    # several clients sending to the same people, e.g. 0.5 means no one client
    # can use more than half of a person's allowance (at least 1 per window).
    "RECIPIENT_SHARE_PER_CLIENT": 1.0,
    # Limits per API client and per client IP address (answered with 429).
    "CLIENT_RATE_LIMITS": ["600/m"],
    "IP_RATE_LIMITS": ["60/m", "600/h"],
    # Failed client authentications (401 invalid_client: wrong secret, unknown
    # or disabled client, garbled Authorization header) per client IP address
    # and per client_id presented, known or not. Once one is over a rate, its
    # requests get 429 rate_limit_exceeded with Retry-After until that window
    # ends, before the client is looked up or any secret checked, even with
    # the right credentials. Successes, and requests with no Authorization
    # header at all (no guess), are not counted. The IP is taken as
    # django-ratelimit takes it (RATELIMIT_IP_META_KEY behind a proxy, else
    # every caller shares the proxy's address and one failing caller locks out
    # all). Trade-off: anyone who knows a client_id can lock that client out by
    # failing with it, so its rates are higher; a secret has 256 bits, so the
    # limits are about noise and cost, not guessing. An empty list turns one
    # off; RATELIMIT_ENABLE = False turns both off; when the cache is down they
    # fail open (logged), whatever RATE_LIMIT_FAIL_OPEN says.
    "AUTH_FAILURE_IP_RATE_LIMITS": ["20/m", "200/h"],
    "AUTH_FAILURE_CLIENT_RATE_LIMITS": ["60/m", "600/h"],
    # When the cache cannot be reached: refuse with 503 (False) or let the
    # request through without counting (True).
    "RATE_LIMIT_FAIL_OPEN": False,
    # Seconds each process reuses its copy of the auth sources and of the
    # blocked prefixes instead of reading them on every send. A change saved in
    # this process applies at once, one saved in another process (another web
    # server, the admin) within this many seconds; 0 reads them on every send.
    "LOOKUP_CACHE_SECONDS": 5,
    # --- abuse and cost control ----------------------------------------------------
    # Digits of the E.164 number (without "+") that make a prefix; 9 is a
    # mainland number block (country code + 3-digit range + 4-digit HLR block).
    "PREFIX_LENGTH": 9,
    # Sends to numbers sharing a prefix (SMS pumping hits ranges of numbers).
    "PREFIX_RATE_LIMITS": ["10/m", "30/h"],
    # Verified/sent ratio per prefix over a sliding window; below MIN_RATIO with
    # at least MIN_SENDS sends, the prefix is blocked for COOLDOWN seconds.
    "CONVERSION_MONITOR": {
        "ENABLED": True,
        "WINDOW": 3600,
        "MIN_SENDS": 8,
        "MIN_RATIO": 0.2,
        "COOLDOWN": 3600,
        # A prefix with no verified code in PREFIX_MEMORY seconds gets codes for
        # at most this many different numbers per WINDOW (0: no such cap).
        "NEW_PREFIX_NUMBERS": 3,
        "PREFIX_MEMORY": 30 * 86400,
        # While at least ATTACK_BLOCKS prefixes are blocked (an attack is on),
        # each range of neighbouring numbers of an unproven prefix (its first
        # ATTACK_RANGE_LENGTH digits; 11: 100 numbers) gets codes for
        # ATTACK_RANGE_NUMBERS numbers (ATTACK_BLOCKS 0: never).
        "ATTACK_BLOCKS": 3,
        "ATTACK_RANGE_LENGTH": 11,
        "ATTACK_RANGE_NUMBERS": 1,
        # The site-wide view (sitewide.py): sends, verifications and sends to
        # unproven prefixes over SITE_WINDOW (0: off) against SITE_HISTORY; out of
        # the site's normal band, sends to unproven prefixes are held to
        # UNPROVEN_CODES_PER_HOUR (the cost ceiling) for at least TIGHTENED_MIN_SECONDS.
        "SITE_WINDOW": 600,
        "SITE_HISTORY": 86400,
        "SITE_HISTORY_MIN_SENDS": 500,
        "SITE_MIN_UNPROVEN": 10,
        "UNPROVEN_SHARE_FLOOR": 0.2,
        "UNPROVEN_SURGE": 2.0,
        "SITE_MIN_SENDS": 40,
        "NEW_SITE_RATIO": 0.6,
        "CONVERSION_DROP": 0.5,
        "TIGHTENED_MIN_SECONDS": 900,
        "UNPROVEN_CODES_PER_HOUR": 60,
    },
    # Percent of a quota at which admins are mailed and quota_threshold_reached fires.
    "QUOTA_ALARM_THRESHOLDS": [80, 100],
    # Fixed codes for app-store reviewers and QA (admin: Test recipients).
    "TEST_RECIPIENTS_ENABLED": False,
    "ALLOW_TEST_RECIPIENTS_IN_PRODUCTION": False,
    # How long the same Idempotency-Key replays the first answer.
    "IDEMPOTENCY_TTL": 86400,
    # Seconds the token log keeps expired tokens before the beat task purges them.
    "TOKEN_RETENTION": 7 * 86400,
    # --- delivery -------------------------------------------------------------
    # How a code leaves the request: "celery" (a task; production) or "inline"
    # (delivered in the request's process after the send commits). None picks
    # "celery" when the site configured a Celery app of its own, else "inline",
    # so a site with no Celery, broker or Redis still gets codes. See dispatch.py.
    "DELIVERY": None,
    "SMS_BACKEND": "django_ciam_otp.backends.sms.console.SMSBackend",
    # Several SMS backends, in the order failover tries them: each a dotted path
    # or {"NAME": ..., "BACKEND": dotted path, "OPTIONS": {...}} (OPTIONS are the
    # backend's keyword arguments; NAME defaults to the backend's own, "tencent").
    # None: [SMS_BACKEND] alone. See routing.py.
    "SMS_BACKENDS": None,
    # Which backends a number may use, first match wins: [{"REGIONS": ["CN"] or
    # "PREFIXES": ["+86"], "BACKENDS": [names, in order]}]. A number no route
    # matches uses every SMS backend in order.
    "SMS_ROUTES": [],
    # A backend's circuit: FAILURES transient failures within WINDOW seconds open
    # it, and deliveries skip it for COOL_DOWN seconds (then one try closes it or
    # opens it again). See circuit.py.
    "SMS_CIRCUIT": {"FAILURES": 5, "WINDOW": 60, "COOL_DOWN": 30},
    "SMS_FILE_PATH": None,  # for the filebased SMS backend
    # Host name of the site's pages ("example.com"): the SMS text then ends with
    # the WebOTP line "@example.com #123456", so Chrome on Android hands the code
    # to those pages (navigator.credentials.get) and phones offer it to autofill.
    # None: no such line.
    "SMS_WEBOTP_DOMAIN": None,
    "EMAIL_BACKEND": "django_ciam_otp.backends.email.django.EmailBackend",
    "EMAIL_FROM": None,  # None means settings.DEFAULT_FROM_EMAIL
    # Celery publishing: how long to keep trying the broker before answering
    # 503 temporarily_unavailable.
    "PUBLISH_RETRY_POLICY": {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
    "CELERY_QUEUE": None,  # None means Celery's default queue
    "DELIVERY_MAX_RETRIES": 5,
    # Seconds a channel's deliveries stop after its backend answered that nothing
    # can succeed until an operator acts (credentials, arrears, template...): sends
    # answer 503 meanwhile, then the next delivery tries again (see breaker.py).
    "BACKEND_PAUSE_SECONDS": 300,
    # Seconds a worker's claim on a delivery lasts. A redelivered task (the
    # worker died) waits until the claim is older than this before sending; at
    # least the delivery task's hard time limit (20 s), so the first run is
    # surely over.
    "DELIVERY_CLAIM_LEASE": 25,
    # How many queued deliveries one run of the batch task claims at a time
    # (Celery delivery outside a caller's transaction; see outbox.deliver_due).
    "DELIVERY_BATCH_SIZE": 50,
    # --- observability -------------------------------------------------------
    # Prometheus metrics (sends, refusals, deliveries, receipts, verifications,
    # latencies, quotas): recorded when prometheus-client is installed. False: off.
    "METRICS": True,
    # OpenTelemetry spans for send, deliver and verify, when opentelemetry-api
    # is installed. False: off.
    "TRACING": True,
}

IMPORT_STRINGS = (
    "SMS_BACKEND",
    "EMAIL_BACKEND",
    "USER_LOOKUP",
    "USER_ADDRESS",
    "AUTO_SIGNUP_HANDLER",
)


class OTPSettings:
    """Attribute access to ``settings.CIAM_OTP`` merged over ``DEFAULTS``."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTINGS_NAME, None) or {}
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        """Called once per setting until ``reload``: the value then sits in the instance's
        ``__dict__``, where Python finds it without this method (a send reads seventy)."""
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {name!r}")
        value = self.user_settings.get(name, DEFAULTS[name])
        if isinstance(DEFAULTS[name], dict) and isinstance(value, dict):
            value = {**DEFAULTS[name], **value}
        self.__dict__[name] = value
        return value

    def import_string(self, name: str) -> Any:
        """Import the dotted path held by ``name`` (cached)."""
        key = f"__imported__{name}"
        cache = self.__dict__["_cache"]
        if key not in cache:
            path = getattr(self, name)
            cache[key] = import_string(path) if path else None
        return cache[key]

    def reload(self) -> None:
        self._cache.clear()
        for name in [n for n in self.__dict__ if n in DEFAULTS]:
            del self.__dict__[name]


otp_settings = OTPSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, "SECRET_KEY", "DEFAULT_FROM_EMAIL", "CACHES", "AUTH_USER_MODEL"):
        otp_settings.reload()


setting_changed.connect(_reload)
