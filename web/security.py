"""Security headers, login throttling, API tokens and safe redirects."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from datetime import datetime
from urllib.parse import urlsplit

from flask import Flask, Response, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.errors import NotFound
from engine.models import ApiToken, RoleAssignment, User

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
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        # Case data must not linger in shared or browser caches.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class LoginThrottle:
    """Refuses a username from one address after ``limit`` failures within ``window`` seconds.

    The counters live in this process's memory: each server worker counts on its own, and a restart
    forgets them (see the README).
    """

    def __init__(self, limit: int = 5, window: float = 900.0, clock=time.monotonic) -> None:  # noqa: ANN001
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures[key]
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def blocked(self, username: str, address: str) -> bool:
        with self._lock:
            return len(self._recent((username.lower(), address))) >= self.limit

    def failed(self, username: str, address: str) -> None:
        with self._lock:
            self._recent((username.lower(), address)).append(self.clock())

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), address), None)


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
    rows = session.execute(_TOKEN_ACTOR, {"token_hash": hash_token(token)}).all()
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
        app.config["LOGIN_MAX_FAILURES"], app.config["LOGIN_FAILURE_WINDOW"]
    )
