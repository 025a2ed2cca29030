"""终止 on the case page: a form with a required reason and a confirmation, for 省科协 and admins.

The engine decides who may terminate (engine/termination.py); the page only hides the form from others.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import Conflict, InvalidInput, PermissionDenied
from engine.termination import may_terminate
from web.auth import current_actor
from web.db import get_engine, write
from web.i18n import error_message

bp = Blueprint("termination", __name__)


@bp.app_context_processor
def termination_helpers() -> dict[str, Any]:
    def may_terminate_case(status: str) -> bool:
        return current_user.is_authenticated and status == "running" and may_terminate(current_actor())

    return {"may_terminate_case": may_terminate_case}


@bp.route("/cases/<uuid:instance_id>/terminate", methods=["POST"])
@login_required
def terminate(instance_id: uuid.UUID):  # noqa: ANN201
    actor = current_actor()
    if not may_terminate(actor):  # refused before anything else, so the form's fields reveal nothing
        raise PermissionDenied(f"{actor.username} may not terminate cases")
    if request.form.get("confirm") != "yes":
        flash(_("Tick the confirmation to terminate the case."), "error")
        return redirect(url_for("cases.show", instance_id=instance_id))
    try:
        with write() as session:
            get_engine().terminate_instance(session, actor, instance_id, request.form.get("reason", ""))
        flash(_("The case has been terminated."), "success")
    except InvalidInput:
        flash(_("Give the reason for terminating the case."), "error")
    except Conflict as exc:
        flash(error_message(exc.code), "error")
    return redirect(url_for("cases.show", instance_id=instance_id))
