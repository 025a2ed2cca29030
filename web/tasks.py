"""Blueprint ``tasks``: the task page (办理) and its actions: 提交, 暂存, 退回, 转办, 签收.

The form is rendered from the task's JSON Schema; on a refused submission the page comes back with
every input kept and each error beside its field. Uploads for file fields are attached to the case
first (in their own transaction, so a refused form keeps them) and the field stores the attachment id.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import bindparam, select

from engine import casefile
from engine.access import check_may_read
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import HistoryEvent, Instance, OpenTask, RoleAssignment, User
from engine.runtime import InstanceView, TaskView
from web.auth import current_actor
from web.cases import store_upload
from web.db import get_engine, get_session, write, write_on_task
from web.form_render import FILE_PREFIX, build_fields, file_fields, localize_errors, parse_form, unplaced_errors
from web.i18n import role_label
from web.names import display_names, org_names
from web.timeline import attachment_index, case_header, dossier, timeline

bp = Blueprint("tasks", __name__)


# The statements of every task page, built once (SQLAlchemy then reuses their SQL and cache keys).
_COLLEAGUES = (
    select(User.username, User.display_name)
    .join(RoleAssignment, RoleAssignment.user_id == User.id)
    .where(
        RoleAssignment.role == bindparam("role"),
        RoleAssignment.org_code == bindparam("org_code"),
        User.active.is_(True),
        User.username != bindparam("username"),
    )
    .order_by(User.username)
)
_TASK_AND_CASE = (
    select(OpenTask, Instance)
    .join(Instance, OpenTask.instance_id == Instance.id)
    .where(OpenTask.id == bindparam("task_id"))
)


def _colleagues(task: TaskView, username: str) -> list[tuple[str, str]]:
    """Who a task may be transferred to (转办): active users with the same role in the same org unit."""
    params = {"role": task.role, "org_code": task.org_code, "username": username}
    return [tuple(row) for row in get_session().connection().execute(_COLLEAGUES, params)]


def _done_elsewhere(task_id: uuid.UUID) -> Any:
    """A task that is no longer open: to its case page, if the user may read the case."""
    session = get_session()
    instance_id = session.scalar(select(HistoryEvent.instance_id).where(HistoryEvent.task_id == task_id).limit(1))
    instance = session.get(Instance, instance_id) if instance_id else None
    if instance is None:
        raise NotFound(f"task {task_id} not found")
    check_may_read(session, current_actor(), instance)
    flash(_("This task has already been handled."), "info")
    return redirect(url_for("cases.show", instance_id=instance.id))


def _page(
    task_id: uuid.UUID,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    extra: dict[str, Any] | None = None,
) -> Any:
    actor = current_actor()
    engine, session = get_engine(), get_session()
    # The task's row and its case's, in one statement and held on ``g`` for the request: the engine and
    # case-file helpers below each look them up with ``session.get``, which then answers from the
    # session's (weak) identity map, not the database.
    g.task_rows = session.execute(_TASK_AND_CASE, {"task_id": task_id}).first()
    try:
        detail = engine.get_task(session, actor, task_id)
    except Conflict:
        return _done_elsewhere(task_id)
    task, schema = detail.task, detail.schema
    header, version = case_header(task.instance_id, g.task_rows.Instance)
    events = engine.history(session, actor, task.instance_id)
    draft = casefile.load_draft(session, actor, task_id) if values is None else None
    if values is None:
        values = (
            draft if draft is not None else {k: v for k, v in detail.data.items() if k in schema.get("properties", {})}
        )
    errors = errors or {}
    fields = build_fields(schema, values, errors)
    attachments = casefile.list_attachments(engine, session, actor, task.instance_id)
    comments = casefile.list_comments(engine, session, actor, task.instance_id)
    may_act = actor.holds(task.role, task.org_code) and task.claimed_by in (None, actor.username)
    context = {
        "task": task,
        "case": header,
        "schema": schema,
        "instructions": detail.instructions,
        "fields": fields,
        "errors": errors,
        "unplaced": unplaced_errors(fields, errors),
        "draft": draft is not None,
        "may_act": may_act,
        "overdue": task.is_overdue(engine.now()),
        "org": org_names({task.org_code}).get(task.org_code, task.org_code),
        "dossier": dossier(events, version, header.process),
        "timeline": timeline(events, version),
        "attachments": attachments,
        "files": attachment_index(attachments),
        "comments": comments,
        "people": display_names({c.author for c in comments} | ({task.claimed_by} if task.claimed_by else set())),
        "colleagues": _colleagues(task, actor.username) if may_act else [],
        "return_error": None,
        "transfer_errors": {},
        "return_reason": "",
        "transfer_form": {},
        **(extra or {}),
    }
    return render_template("tasks/show.html", **context), status


def _next_steps(view: InstanceView) -> str:
    names = org_names({t.org_code for t in view.open_tasks})
    return "；".join(f"{t.name}（{names.get(t.org_code, t.org_code)} {role_label(t.role)}）" for t in view.open_tasks)


def _after(view: InstanceView, message: str) -> Any:
    following = _next_steps(view)
    if view.status == "completed":
        flash(message + " " + _("The case is concluded: %(outcome)s.", outcome=view.outcome or ""), "success")
    elif following:
        flash(message + " " + _("Next: %(steps)s", steps=following), "success")
    else:
        flash(message, "success")
    return redirect(url_for("inbox.index"))


@bp.route("/tasks/<uuid:task_id>")
@login_required
def show(task_id: uuid.UUID):  # noqa: ANN201
    return _page(task_id)


@bp.route("/tasks/<uuid:task_id>", methods=["POST"])
@login_required
def submit(task_id: uuid.UUID):  # noqa: ANN201
    """提交 (action=submit) or 暂存 (action=draft) the task's form."""
    actor, engine = current_actor(), get_engine()
    try:
        detail = engine.get_task(get_session(), actor, task_id)
    except Conflict:
        return _done_elsewhere(task_id)
    schema = detail.schema
    data = parse_form(schema, request.form)
    errors: dict[str, str] = {}
    for key in file_fields(schema):
        upload = request.files.get(FILE_PREFIX + key)
        if upload is None or not upload.filename:
            continue
        try:
            data[key] = str(store_upload(detail.task.instance_id, upload, task_id).id)
        except InvalidInput as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            errors[key] = "；".join(map(str, details.values()))
    if request.form.get("action") == "draft":
        with write() as session:
            casefile.save_draft(engine, session, actor, task_id, data)
        flash(_("Draft saved. Only you can see it until you submit."), "success")
        return redirect(url_for("tasks.show", task_id=task_id))
    if errors:
        return _page(task_id, data, errors, 400)
    try:
        with write_on_task(actor, task_id) as session:
            view = engine.complete_task(session, actor, task_id, data)
            casefile.discard_drafts(session, task_id)
    except InvalidInput as exc:
        return _page(task_id, data, localize_errors(schema, data, exc.details), 400)
    return _after(view, _("Submitted: %(step)s.", step=detail.task.name))


@bp.route("/tasks/<uuid:task_id>/return", methods=["POST"])
@login_required
def return_task(task_id: uuid.UUID):  # noqa: ANN201
    """退回 with a reason, where the process offers it."""
    reason = request.form.get("reason", "")
    actor = current_actor()
    try:
        with write_on_task(actor, task_id) as session:
            view = get_engine().return_task(session, actor, task_id, reason)
            casefile.discard_drafts(session, task_id)
    except InvalidInput:
        return _page(
            task_id, None, None, 400, {"return_error": _("Give a reason for returning."), "return_reason": reason}
        )
    return _after(view, _("Returned for revision."))


@bp.route("/tasks/<uuid:task_id>/transfer", methods=["POST"])
@login_required
def transfer(task_id: uuid.UUID):  # noqa: ANN201
    """转办 to a colleague with the same role in the same org unit, with a reason (logged)."""
    target = request.form.get("to", "")
    try:
        with write() as session:
            task = casefile.transfer_task(
                get_engine(), session, current_actor(), task_id, target, request.form.get("reason", "")
            )
    except InvalidInput as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        messages = {
            "to": _("Choose a colleague with the same role in your unit."),
            "reason": _("Give a reason of at most 500 characters."),
        }
        shown = {key: str(messages.get(key, value)) for key, value in details.items()}
        return _page(task_id, None, None, 400, {"transfer_errors": shown, "transfer_form": request.form})
    name = display_names({target}).get(target, target)
    flash(_("Transferred %(step)s to %(name)s.", step=task.name, name=name), "success")
    return redirect(url_for("inbox.index"))


@bp.route("/tasks/<uuid:task_id>/claim", methods=["POST"])
@login_required
def claim(task_id: uuid.UUID):  # noqa: ANN201
    """签收: take a task offered to the group; colleagues no longer see it."""
    with write() as session:
        get_engine().claim_task(session, current_actor(), task_id)
    flash(_("Signed for. The task is now yours."), "success")
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.route("/tasks/<uuid:task_id>/unclaim", methods=["POST"])
@login_required
def unclaim(task_id: uuid.UUID):  # noqa: ANN201
    with write() as session:
        get_engine().unclaim_task(session, current_actor(), task_id)
    flash(_("Released. The task is offered to the group again."), "success")
    return redirect(url_for("tasks.show", task_id=task_id))
