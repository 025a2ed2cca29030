"""Security headers, login throttling, API tokens and safe redirects."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import Flask, Response, request
from sqlalchemy import and_, bindparam, case, delete, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from engine import AppEngine
from engine.access import Actor
from engine.db import read_session, write_session
from engine.errors import NotFound
from engine.models import ApiToken, LoginFailure, RoleAssignment, User

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # bpmn-js sets style attributes on the SVG it draws; no script runs from them.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
TOKEN_PREFIX = "dz_"


def add_security_headers(response: Response) -> Response:
    """Add each header the response does not set itself (one pass: ``setdefault`` scans the headers for each)."""
    wanted = dict(SECURITY_HEADERS)
    if request.is_secure:
        wanted["Strict-Transport-Security"] = "max-age=31536000"
    if not request.path.startswith("/static/"):
        wanted["Cache-Control"] = "no-store"  # case data must not linger in shared or browser caches
    present = {name.lower() for name, _value in response.headers}
    response.headers.extend([(name, value) for name, value in wanted.items() if name.lower() not in present])
    return response


def _utc_now() -> datetime:
    return datetime.now(UTC)


_SAME_USER = LoginFailure.username == bindparam("username")
_SAME_ADDRESS = LoginFailure.address == bindparam("address")


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# Built once: the three counts of the throttle in one statement.
_RECENT_FAILURES = select(
    _count_where(and_(_SAME_USER, _SAME_ADDRESS)), _count_where(_SAME_USER), _count_where(_SAME_ADDRESS)
).where(LoginFailure.failed_at > bindparam("cutoff"), or_(_SAME_USER, _SAME_ADDRESS))


class LoginThrottle:
    """Refuses sign-ins after too many failures within ``window`` seconds, counted in the database.

    Every server process (and host) sees the same counts. Three limits: ``limit`` failures of one
    username from one address; ``user_limit`` of one username from any address (guessing spread over
    many addresses); ``address_limit`` from one address over any usernames (password spraying), off
    by default because behind a reverse proxy every user shares the proxy's address (no ProxyFix) and
    one attacker could lock everyone out. A success clears that username's failures. Wall-clock time,
    not the engine's clock: a fixed ``DEMOZONE_NOW`` must not make a lock-out last for ever.
    """

    def __init__(
        self,
        engine: AppEngine,
        limit: int = 5,
        window: float = 900.0,
        user_limit: int = 20,
        address_limit: int | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.window = window
        self.user_limit = user_limit
        self.address_limit = address_limit
        self.clock = clock

    def blocked(self, username: str, address: str) -> bool:
        cutoff = self.clock() - timedelta(seconds=self.window)
        with read_session(self.engine.sessions) as session:
            pair, user, by_address = session.execute(
                _RECENT_FAILURES, {"username": username.lower(), "address": address, "cutoff": cutoff}
            ).one()
        return (
            pair >= self.limit
            or user >= self.user_limit
            or (self.address_limit is not None and by_address >= self.address_limit)
        )

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        with write_session(self.engine.sessions) as session:
            session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - timedelta(seconds=self.window)))
            session.add(LoginFailure(username=username.lower()[:64], address=address[:64], failed_at=now))

    def succeeded(self, username: str, address: str) -> None:
        with write_session(self.engine.sessions) as session:
            session.execute(delete(LoginFailure).where(LoginFailure.username == username.lower()))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, username: str, now: datetime) -> str:
    """A new API token for ``username``; only its SHA-256 is stored. The caller commits."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise NotFound(f"no active user {username!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=now, revoked=False))
    session.flush()
    return token


def revoke_tokens(session: Session, username: str) -> int:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))).all()
    for token in tokens:
        token.revoked = True
    session.flush()
    return len(tokens)


# Every API request runs this one statement (token, user and assignments). Built once, its SQL cache
# key is computed once too, instead of on every request.
_TOKEN_ACTOR = (
    select(User.username, User.display_name, RoleAssignment.role, RoleAssignment.org_code)
    .join(ApiToken, ApiToken.user_id == User.id)
    .outerjoin(RoleAssignment, RoleAssignment.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked.is_(False), User.active.is_(True))
)


def actor_for_token(session: Session, token: str) -> Actor | None:
    """The actor behind a bearer token, or None for an unknown, revoked or inactive one."""
    if not token or len(token) > 200:
        return None
    rows = session.connection().execute(_TOKEN_ACTOR, {"token_hash": hash_token(token)}).all()
    if not rows:
        return None
    assignments = frozenset((row.role, row.org_code) for row in rows if row.role is not None)
    return Actor(rows[0].username, rows[0].display_name, assignments)


def safe_next(target: str | None, fallback: str) -> str:
    """``target`` if it is a path on this site, else ``fallback`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return fallback
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else fallback


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
    app.extensions["demozone.throttle"] = LoginThrottle(
        app.extensions["demozone.engine"],
        app.config["LOGIN_MAX_FAILURES"],
        app.config["LOGIN_FAILURE_WINDOW"],
        app.config["LOGIN_MAX_FAILURES_PER_USER"],
        app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
    )
