"""The peers of issue 15, served on the bench's own stack: django-allauth and drfpasswordless.

Each peer is a bench-only Django project (a settings module and a URL conf
here) with its own database on the bench's PostgreSQL, served by a gunicorn
started exactly as the example project's (``bench/stack.py``: 2 ``gthread``
workers, 4 threads, no keep-alive). Nothing here is imported by the package
or the tests; the peers' packages are in ``bench/requirements.txt`` only.

:data:`PEERS` says, for each measured target, which settings it runs, which
endpoint the load hits, what the load sends (``bench/wrk/peer.lua``) and which
answer counts as a sent code. ``bench/peers/setup.py`` prepares the databases,
``bench/peers/probe.py`` counts each peer's SQL statements per request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Peer:
    name: str
    label: str
    settings: str
    database: str
    path: str
    #: "email": ``u<n>@bench.example``, a pre-created user (allauth sends codes to accounts
    #: only); "mobile": ``+86`` and the bench's numbering, a number no user has
    #: (drfpasswordless registers it).
    recipient: str
    expect_status: int
    #: a substring of every answer that sent a code
    expect_body: str
    #: a GET that answers ``probe_status`` once Django is up (gunicorn's readiness)
    probe_path: str
    probe_status: int


DRFPASSWORDLESS = Peer(
    name="drfpasswordless",
    label="drfpasswordless mobile, as shipped",
    settings="bench.peers.drfpasswordless_settings",
    database="peer_drfpl",
    path="/auth/mobile/",
    recipient="mobile",
    expect_status=200,
    expect_body="texted",
    probe_path="/auth/mobile/",
    probe_status=405,
)

PEERS: tuple[Peer, ...] = (
    Peer(
        name="allauth",
        label='django-allauth headless "request login code"',
        settings="bench.peers.allauth_settings",
        database="peer_allauth",
        path="/_allauth/app/v1/auth/code/request",
        recipient="email",
        # A code request leaves a pending login: headless answers 401 with the
        # "login_by_code" flow pending and a session token (allauth's spec).
        expect_status=401,
        expect_body='"is_pending": true',
        probe_path="/_allauth/app/v1/config",
        probe_status=200,
    ),
    DRFPASSWORDLESS,
    replace(
        DRFPASSWORDLESS,
        name="drfpasswordless+index",
        label="drfpasswordless mobile, UPPER(mobile) index added",
        settings="bench.peers.drfpasswordless_indexed_settings",
        database="peer_drfpl_index",
    ),
)


def by_name(name: str) -> Peer:
    return next(p for p in PEERS if p.name == name)
