"""Blueprint ``designer_migrate``: move chosen running cases of older versions to a newer one.

Three steps: choose cases (running cases not on the target version, with their open steps), see the
plan of each (``engine.migration.plan_migration``: safe or not, with the reasons, and what changes),
then confirm; only the safe ones are offered and ``migrate_instances`` moves them, all or nothing, and
logs a ``migrate`` event on each case. Designers see a case's reference and open steps, not its data.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from engine.errors import Conflict, NotFound
from engine.migration import MigrationPlan, migrate_instances, plan_migration
from engine.models import Instance, OpenTask, ProcessVersion
from web.auth import current_actor
from web.db import get_engine, get_session, write
from web.designer import require_designer, session_versions
from web.designer_files import check_process_id
from web.i18n import error_message, status_label

bp = Blueprint("designer_migrate", __name__, url_prefix="/designer/migrate")
bp.before_request(require_designer)
STATES = {"completed": _l("completed"), "started": _l("in progress")}
REASONS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^the case is already on this version$"), lambda m: _("The case is already on this version.")),
    (re.compile(r"^the case is (\w+)$"), lambda m: _("The case is %(status)s.", status=status_label(m[1]))),
    (
        re.compile(r"^a called process of the case has no counterpart in the new version$"),
        lambda m: _("A called process of the case has no counterpart in the new version."),
    ),
    (
        re.compile(r"^step (\S+) was changed or removed but is already (\w+)$"),
        lambda m: _(
            "Step %(step)s was changed or removed but is already %(state)s.",
            step=m[1],
            state=str(STATES.get(m[2], m[2])),
        ),
    ),
]


def reason_text(reason: str) -> str:
    """The engine's (English, for logs) reason in the reader's language, where it is a known one."""
    for pattern, render in REASONS:
        match = pattern.match(reason)
        if match:
            return render(match)
    return reason


def _target(process_id: str, versions: list[Any]) -> Any:
    chosen = request.values.get("target", type=int)
    target = next((v for v in versions if v.id == chosen), None) if chosen else versions[0]
    if target is None:
        abort(404)
    return target


def _case_ids() -> list[uuid.UUID]:
    try:
        return [uuid.UUID(value) for value in request.form.getlist("case")]
    except ValueError:
        abort(400)


def _candidates(process_id: str, target_id: int) -> list[dict[str, Any]]:
    session = get_session()
    rows = session.execute(
        select(Instance.id, Instance.business_key, Instance.created_at, ProcessVersion.version)
        .join(ProcessVersion, ProcessVersion.id == Instance.process_version_id)
        .where(
            Instance.process_id == process_id,
            Instance.status == "running",
            Instance.process_version_id != target_id,
        )
        .order_by(ProcessVersion.version, Instance.created_at)
    ).all()
    steps: dict[uuid.UUID, list[str]] = {}
    ids = [row.id for row in rows]
    if ids:
        for instance_id, bpmn_id, name in session.execute(
            select(OpenTask.instance_id, OpenTask.bpmn_id, OpenTask.name).where(OpenTask.instance_id.in_(ids))
        ):
            steps.setdefault(instance_id, []).append(f"{name} ({bpmn_id})")
    return [
        {"id": r.id, "key": r.business_key, "started": r.created_at, "version": r.version, "steps": steps.get(r.id, [])}
        for r in rows
    ]


@bp.route("/<process_id>")
def choose(process_id: str):  # noqa: ANN201
    versions = session_versions(check_process_id(process_id))
    target = _target(process_id, versions)
    return render_template(
        "designer/migrate.html",
        process_id=process_id,
        versions=versions,
        target=target,
        cases=_candidates(process_id, target.id),
        tab="designer",
    )


@bp.route("/<process_id>/plan", methods=["POST"])
def plan(process_id: str):  # noqa: ANN201
    """What moving each chosen case would change, and whether it is safe; nothing is written."""
    versions = session_versions(check_process_id(process_id))
    target = _target(process_id, versions)
    ids = _case_ids()
    if not ids:
        flash(_("Choose at least one case."), "warning")
        return redirect(url_for("designer_migrate.choose", process_id=process_id, target=target.id))
    engine, session, actor = get_engine(), get_session(), current_actor()
    keys = dict(session.execute(select(Instance.id, Instance.business_key).where(Instance.id.in_(ids))).all())
    plans: list[tuple[uuid.UUID, str, MigrationPlan]] = []
    for instance_id in ids:
        instance = session.get(Instance, instance_id)
        if instance is None or instance.process_id != process_id:
            abort(404)
        plans.append(
            (instance_id, keys.get(instance_id, ""), plan_migration(engine, session, actor, instance_id, target.id))
        )
    return render_template(
        "designer/migrate_plan.html",
        process_id=process_id,
        target=target,
        plans=plans,
        safe=[instance_id for instance_id, _key, p in plans if p.safe],
        reason_text=reason_text,
        tab="designer",
    )


@bp.route("/<process_id>/run", methods=["POST"])
def run(process_id: str):  # noqa: ANN201
    """Migrate the confirmed cases (all or nothing); refused with the reason if one is no longer safe."""
    versions = session_versions(check_process_id(process_id))
    target = _target(process_id, versions)
    ids = _case_ids()
    back = url_for("designer_migrate.choose", process_id=process_id, target=target.id)
    if not ids or request.form.get("confirm") != "yes":
        flash(_("Choose at least one case."), "warning")
        return redirect(back)
    try:
        with write() as session:
            for instance_id in ids:
                instance = session.get(Instance, instance_id)
                if instance is None or instance.process_id != process_id:
                    raise NotFound(f"instance {instance_id} not found")
            plans = migrate_instances(get_engine(), session, current_actor(), ids, target.id)
    except Conflict as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        reasons = "; ".join(reason_text(r) for r in details.get("reasons", []))
        flash(_("No case was migrated: %(reasons)s", reasons=reasons or error_message("conflict")), "error")
        return redirect(back)
    flash(_("%(count)s case(s) moved to version %(version)s.", count=len(plans), version=target.version), "success")
    return redirect(url_for("designer.process", process_id=process_id))
