"""Prepare the peers on the bench's stack: a database each, migrated, with ``users`` users.

Called by ``bench/run.py`` once the stack is up. Each peer gets its own
database on the bench's PostgreSQL (same server, same settings, durable), is
migrated with its own settings module (``manage.py migrate``), and gets
``users`` users inserted in one statement, so each starts as a site of that
size:

* allauth: ``auth_user`` rows ``u<n>`` with email ``u<n>@bench.example`` and
  a verified, primary ``EmailAddress`` each: the load asks codes for them
  (allauth sends a code to an existing account only);
* drfpasswordless: users with mobile numbers ``+1555...``, none of which the
  load uses: each request of the load registers a new user, as
  drfpasswordless does for an unknown number.
"""

from __future__ import annotations

import time
from typing import Any

from tests.support.servers import manage

from . import PEERS, Peer


def peer_env(stack: Any, peer: Peer) -> dict[str, str]:
    url = stack.pg.url.rsplit("/", 1)[0] + "/" + peer.database
    return {**stack.env, "DJANGO_SETTINGS_MODULE": peer.settings, "DATABASE_URL": url}


def insert_users(conn: Any, peer: Peer, users: int) -> None:
    if not users:
        return
    if peer.recipient == "email":
        conn.execute(
            "INSERT INTO auth_user (password, last_login, is_superuser, username, first_name,"
            " last_name, email, is_staff, is_active, date_joined)"
            " SELECT '!', NULL, false, 'u' || n, '', '', 'u' || n || '@bench.example', false,"
            " true, now() FROM generate_series(0, %s - 1) AS n",
            (users,),
        )
        conn.execute(
            'INSERT INTO account_emailaddress (user_id, email, verified, "primary")'
            " SELECT id, email, true, true FROM auth_user"
        )
        tables = ("auth_user", "account_emailaddress")
    else:
        conn.execute(
            "INSERT INTO drfpl_users_user (password, last_login, email, email_verified, mobile,"
            " mobile_verified) SELECT '!', NULL, NULL, false, '+1555' || lpad(n::text, 7, '0'),"
            " false FROM generate_series(0, %s - 1) AS n",
            (users,),
        )
        tables = ("drfpl_users_user",)
    for table in tables:
        conn.execute(f"VACUUM ANALYZE {table}")


def prepare(stack: Any, peers: tuple[Peer, ...] = PEERS, *, users: int) -> dict[str, Any]:
    """Create, migrate and fill each peer's database; return what was done and how long it took."""
    done: dict[str, Any] = {}
    for peer in peers:
        t0 = time.monotonic()
        with stack.pg.connect("postgres") as conn:
            conn.autocommit = True
            conn.execute(f"CREATE DATABASE {peer.database}")
        env = peer_env(stack, peer)
        manage(env, "migrate", "--noinput", timeout=300)
        with stack.pg.connect(peer.database) as conn:
            conn.autocommit = True
            insert_users(conn, peer, users)
        done[peer.name] = {"users": users, "seconds": time.monotonic() - t0}
    return done
