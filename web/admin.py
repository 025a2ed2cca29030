"""Blueprint ``admin``: user administration for holders of the ``admin`` role.

Each form posts one change to engine/useradmin.py, which checks the role again and appends the change to
the administrators' hash chain; the page lists the users and the newest recorded changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from engine import useradmin
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import OrgUnit, User
from engine.roles import ROLES
from web.auth import current_actor
from web.db import get_engine, get_session, write
from web.i18n import error_message

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users")
@login_required
def users():  # noqa: ANN201
    actor = current_actor()
    useradmin.require_admin(actor)
    session = get_session()
    return render_template(
        "admin/users.html",
        users=session.scalars(select(User).order_by(User.username)).all(),
        roles=ROLES,
        orgs=session.execute(select(OrgUnit.code, OrgUnit.name).order_by(OrgUnit.code)).all(),
        events=useradmin.admin_events(session, actor, limit=50),
        me=actor.username,
    )


def _apply(change: Callable[..., Any], *args: Any) -> Any:
    """Run one change in a write transaction; bad input and lost races come back as a message."""
    try:
        with write() as session:
            change(session, current_actor(), get_engine().now(), *args)
    except InvalidInput as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        flash(error_message(exc.code) + " " + " ".join(map(str, details.values())), "error")
    except (Conflict, NotFound) as exc:
        flash(error_message(exc.code) + " " + exc.message, "error")
    else:
        flash(_("The change has been saved and recorded."), "success")
    return redirect(url_for("admin.users"))


def _role_field() -> tuple[str, str]:
    return request.form.get("role", ""), request.form.get("org_code", "")


@bp.route("/users", methods=["POST"])
@login_required
def add():  # noqa: ANN201
    form = request.form
    role, org_code = _role_field()
    roles = [(role, org_code)] if role else []
    return _apply(
        useradmin.add_user,
        form.get("username", ""),
        form.get("display_name", ""),
        form.get("password", ""),
        roles,
        form.get("email") or None,
    )


@bp.route("/users/<username>/disable", methods=["POST"])
@login_required
def disable(username: str):  # noqa: ANN201
    return _apply(useradmin.set_active, username, False)


@bp.route("/users/<username>/enable", methods=["POST"])
@login_required
def enable(username: str):  # noqa: ANN201
    return _apply(useradmin.set_active, username, True)


@bp.route("/users/<username>/grant", methods=["POST"])
@login_required
def grant(username: str):  # noqa: ANN201
    return _apply(useradmin.grant_role, username, *_role_field())


@bp.route("/users/<username>/revoke", methods=["POST"])
@login_required
def revoke(username: str):  # noqa: ANN201
    return _apply(useradmin.revoke_role, username, *_role_field())


@bp.route("/users/<username>/password", methods=["POST"])
@login_required
def password(username: str):  # noqa: ANN201
    return _apply(useradmin.set_password, username, request.form.get("password", ""))
