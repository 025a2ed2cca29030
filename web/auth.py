"""Blueprint ``auth``: sign in and out, the language switch, and the user loader.

Passwords are checked with ``engine.passwords`` (scrypt). After ``LOGIN_MAX_FAILURES`` failures for one
username from one address within ``LOGIN_FAILURE_WINDOW`` seconds, that pair is refused until the
window has passed, even with the right password.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from sqlalchemy import bindparam, select

from engine.access import Actor
from engine.demo import DEMO_PASSWORD, DemoAccount, demo_accounts
from engine.models import RoleAssignment, User
from engine.passwords import check_password
from web.db import get_session
from web.extensions import login_manager
from web.i18n import LANGUAGES
from web.security import LoginThrottle, safe_next

bp = Blueprint("auth", __name__)
# Usernames that a walk through one zone-creation case (新民市 of 沈阳市) uses, in order.
WALKTHROUGH = (
    "shenyang_sa",
    "shenyang_talent",
    "xinmin_party",
    "shenyang_org",
    "xinmin_gov",
    "province_office",
    "s001",
    "auditor",
)


@dataclass
class WebUser(UserMixin):
    """The signed-in user: the engine's Actor plus a session id that a password change invalidates."""

    actor: Actor
    session_id: str

    def get_id(self) -> str:
        return self.session_id

    @property
    def username(self) -> str:
        return self.actor.username

    @property
    def display_name(self) -> str:
        return self.actor.display_name


def _session_id(username: str, password_hash: str) -> str:
    return f"{username}:{password_hash[-12:]}"


# Every signed-in request loads its user with this one statement (user and assignments). Built once,
# its SQL cache key is computed once too, instead of on every request.
_USER_ROWS = (
    select(User.password_hash, User.display_name, User.active, RoleAssignment.role, RoleAssignment.org_code)
    .outerjoin(RoleAssignment, RoleAssignment.user_id == User.id)
    .where(User.username == bindparam("username"))
)


@login_manager.user_loader
def load_user(session_id: str) -> WebUser | None:
    username = session_id.split(":", 1)[0]
    rows = get_session().connection().execute(_USER_ROWS, {"username": username}).all()
    if not rows or not rows[0].active or _session_id(username, rows[0].password_hash) != session_id:
        return None
    assignments = frozenset((row.role, row.org_code) for row in rows if row.role is not None)
    return WebUser(Actor(username, rows[0].display_name, assignments), session_id)


def current_actor() -> Actor:
    return current_user.actor


def _throttle() -> LoginThrottle:
    return current_app.extensions["demozone.throttle"]


def _demo_accounts() -> list[DemoAccount]:
    if not current_app.config["SHOW_DEMO_ACCOUNTS"]:
        return []
    db = get_session()
    accounts = demo_accounts(db)
    present = set(db.scalars(select(User.username).where(User.username.in_([a.username for a in accounts]))))
    return [a for a in accounts if a.username in present]


@lru_cache(maxsize=1)
def _walkthrough_order() -> dict[str, int]:
    return {name: position for position, name in enumerate(WALKTHROUGH)}


@bp.route("/login", methods=["GET", "POST"])
def login():  # noqa: ANN201
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("inbox.index"))
    error = None
    status = 200
    username = ""
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()[:64]
        password = request.form.get("password") or ""
        address = request.remote_addr or "-"
        throttle = _throttle()
        if throttle.blocked(username, address):
            error, status = _("Too many failed sign-ins. Please try again in 15 minutes."), 429
        else:
            user = get_session().scalar(select(User).where(User.username == username)) if username else None
            if user is not None and user.active and check_password(user.password_hash, password):
                throttle.succeeded(username, address)
                next_url = safe_next(request.args.get("next"), url_for("inbox.index"))
                lang = session.get("lang")
                session.clear()  # no session fixation: a fresh session for the signed-in user
                if lang:
                    session["lang"] = lang
                session.permanent = True
                login_user(load_user(_session_id(user.username, user.password_hash)))
                return redirect(next_url)
            throttle.failed(username, address)
            error, status = _("Wrong username or password."), 401
    accounts = _demo_accounts()
    order = _walkthrough_order()
    featured = sorted((a for a in accounts if a.username in order), key=lambda a: order[a.username])
    return (
        render_template(
            "auth/login.html",
            error=error,
            username=username,
            featured=featured,
            accounts=accounts,
            demo_password=DEMO_PASSWORD if accounts else None,
        ),
        status,
    )


@bp.route("/logout", methods=["POST"])
@login_required
def logout():  # noqa: ANN201
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def set_language():  # noqa: ANN201
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    session["lang"] = lang
    return redirect(safe_next(request.form.get("next"), url_for("inbox.index")))
