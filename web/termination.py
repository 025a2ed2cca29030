"""终止 on the case page: a form with a required reason and a confirmation, for 省科协 and admins.

The engine decides who may terminate (engine/termination.py); the page only hides the form from others.
An administrator may terminate any case but reads none (their role is users and roles), so the case page
is closed to them: they get the case's termination page instead, showing only what identifies the case
(number, process, place, status), reached from the admin page by case number.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import or_, select

from engine.access import Actor, may_read_instance
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.models import Instance
from engine.termination import may_terminate
from web.auth import current_actor
from web.db import get_engine, get_session, write
from web.i18n import error_message
from web.inbox import process_names
from web.names import org_names

bp = Blueprint("termination", __name__)


@bp.app_context_processor
def termination_helpers() -> dict[str, Any]:
    def may_terminate_case(status: str) -> bool:
        return current_user.is_authenticated and status == "running" and may_terminate(current_actor())

    return {"may_terminate_case": may_terminate_case}


def _terminator() -> Actor:
    actor = current_actor()
    if not may_terminate(actor):  # refused before anything else, so the form's fields reveal nothing
        raise PermissionDenied(f"{actor.username} may not terminate cases")
    return actor


def _back_to(actor: Actor, instance_id: uuid.UUID) -> str:
    """The case page for those who may read the case, else its termination page."""
    instance = get_session().get(Instance, instance_id)
    if instance is not None and may_read_instance(get_session(), actor, instance):
        return url_for("cases.show", instance_id=instance_id)
    return url_for("termination.page", instance_id=instance_id)


@bp.route("/cases/<uuid:instance_id>/terminate", methods=["GET"])
@login_required
def page(instance_id: uuid.UUID):  # noqa: ANN201
    actor = _terminator()
    instance = get_session().get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    if may_read_instance(get_session(), actor, instance):
        return redirect(url_for("cases.show", instance_id=instance_id, _anchor="terminate"))
    return render_template(
        "admin/terminate.html",
        case=instance,
        view={"id": instance.id, "status": instance.status},
        process_name=process_names().get(instance.process_id, instance.process_id),
        places=org_names({instance.city_code or "", instance.county_code or ""}),
    )


@bp.route("/terminate")
@login_required
def find():  # noqa: ANN201
    """A case by its number (or id), for a terminator who cannot search cases."""
    _terminator()
    wanted = request.args.get("case", "").strip()[:100]
    try:
        as_id = uuid.UUID(wanted)
    except ValueError:
        as_id = None
    matches = [Instance.business_key == wanted] + ([Instance.id == as_id] if as_id is not None else [])
    found = get_session().scalar(select(Instance.id).where(or_(*matches)).limit(1)) if wanted else None
    if found is None:
        flash(_("No case with this number."), "error")
        return redirect(url_for("admin.users", _anchor="terminate-case"))
    return redirect(url_for("termination.page", instance_id=found))


@bp.route("/cases/<uuid:instance_id>/terminate", methods=["POST"])
@login_required
def terminate(instance_id: uuid.UUID):  # noqa: ANN201
    actor = _terminator()
    if request.form.get("confirm") != "yes":
        flash(_("Tick the confirmation to terminate the case."), "error")
        return redirect(_back_to(actor, instance_id))
    try:
        with write() as session:
            get_engine().terminate_instance(session, actor, instance_id, request.form.get("reason", ""))
        flash(_("The case has been terminated."), "success")
    except InvalidInput:
        flash(_("Give the reason for terminating the case."), "error")
    except Conflict as exc:
        flash(error_message(exc.code), "error")
    return redirect(_back_to(actor, instance_id))
