"""The sign-in session: Flask's signed cookie, re-issued every few minutes rather than on every response.

A signed-in session lasts ``PERMANENT_SESSION_LIFETIME`` after the user's last request, so Flask signs
and sets the cookie again on each response. That was a twentieth of a page's time. Here the cookie is
re-issued only once it is ``SESSION_REISSUE_AFTER`` seconds old (or when the session changed), so an
idle session ends at most that much sooner than the full lifetime after the user's last request.
"""

from __future__ import annotations

import time
from datetime import datetime

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature


class _Session(SecureCookieSession):
    issued_at: datetime | None = None  # when the cookie it came from was signed


class ReissuingSessionInterface(SecureCookieSessionInterface):
    session_class = _Session

    def open_session(self, app: Flask, request: Request) -> _Session | None:
        if not app.secret_key:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:  # an API call, or a first visit: no signer to build (it is made anew per request)
            return self.session_class()
        serializer = self.get_signing_serializer(app)
        try:
            data, issued_at = serializer.loads(
                cookie, max_age=int(app.permanent_session_lifetime.total_seconds()), return_timestamp=True
            )
        except BadSignature:
            return self.session_class()
        session = self.session_class(data)
        session.issued_at = issued_at
        return session

    def should_set_cookie(self, app: Flask, session: SecureCookieSession) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        issued_at = getattr(session, "issued_at", None)
        # On itsdangerous's clock, which signed the cookie and checks its age.
        return issued_at is None or time.time() - issued_at.timestamp() >= app.config["SESSION_REISSUE_AFTER"]
