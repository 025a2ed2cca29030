"""Blueprint ``notifications``: each user's notification centre (新任务, 退回, 催办, 督办, 通知, 决定), the
unread count in the header of every page, marking read, and per-kind delivery preferences (in-app only,
or in-app and e-mail).

The queries are ``engine.notifications``'s, each scoped to the signed-in username: a user only ever
sees and changes their own notifications and preferences (another user's id is ignored, not reported).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy import select

from engine.errors import InvalidInput
from engine.models import User
from engine.notifications import list_notifications, mark_read, preferences, set_preference, unread_count
from engine.programme import NOTIFICATION_KINDS
from web.db import get_engine, get_session, write
from web.security import safe_next

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
PER_PAGE = 30
KIND_LABELS = {
    "新任务": _l("New task"),
    "退回": _l("Returned task"),
    "催办": _l("Reminder"),
    "督办": _l("Escalation"),
    "通知": _l("Notice"),
    "决定": _l("Decision"),
}
KIND_CLASSES = {
    "新任务": "status-running",
    "退回": "urgency-urgent",
    "催办": "urgency-urgent",
    "督办": "urgency-critical",
    "通知": "status-running",
    "决定": "decision",
}


# -- pages -----------------------------------------------------------------------------------------


@bp.app_context_processor
def _header_count() -> dict[str, object]:
    """``unread_notifications()`` for the header: queried only when a page asks for it."""

    def count() -> int:
        if not current_user.is_authenticated:
            return 0
        return unread_count(get_session(), current_user.username)

    return {"unread_notifications": count}


@bp.app_template_filter("notification_kind")
def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


def _page_arg() -> int:
    value = request.args.get("page", "")
    return int(value) if value.isdigit() and 0 < len(value) < 6 and int(value) > 0 else 1


@bp.route("/")
@login_required
def index():  # noqa: ANN201
    unread_only = request.args.get("show") == "unread"
    username = current_user.username
    page = list_notifications(get_session(), username, _page_arg(), unread_only=unread_only, per_page=PER_PAGE)
    return render_template(
        "notifications/index.html",
        page=page,
        unread_only=unread_only,
        args={"show": "unread"} if unread_only else {},
        kind_classes=KIND_CLASSES,
    )


def _back() -> str:
    return safe_next(request.form.get("next"), url_for("notifications.index"))


@bp.route("/<int:notification_id>/read", methods=["POST"])
@login_required
def read(notification_id: int):  # noqa: ANN201
    with write() as session:
        mark_read(session, current_user.username, [notification_id], get_engine().now())
    return redirect(_back())


@bp.route("/read-all", methods=["POST"])
@login_required
def read_all():  # noqa: ANN201
    with write() as session:
        marked = mark_read(session, current_user.username, None, get_engine().now())
    if marked:
        message = ngettext("Marked %(num)d notification as read.", "Marked %(num)d notifications as read.", marked)
        flash(message, "success")
    return redirect(_back())


@bp.route("/preferences", methods=["GET", "POST"])
@login_required
def settings():  # noqa: ANN201
    username = current_user.username
    if request.method == "POST":
        chosen = set(request.form.getlist("email"))
        unknown = chosen - set(NOTIFICATION_KINDS)
        if unknown:
            raise InvalidInput(f"unknown notification kinds {sorted(unknown)!r}")
        with write() as session:
            for kind in NOTIFICATION_KINDS:
                set_preference(session, username, kind, kind in chosen)
        flash(_("Your notification settings have been saved."), "success")
        return redirect(url_for("notifications.settings"))
    session = get_session()
    address = session.scalar(select(User.email).where(User.username == username))
    return render_template(
        "notifications/preferences.html",
        choices=preferences(session, username),
        address=address,
        kind_classes=KIND_CLASSES,
    )
