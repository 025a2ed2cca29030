"""Blueprint ``inbox``: 待办 (open tasks, filters, sorting, search, paging, bulk 签收 and 已阅),
已办 (what I handled) and 办结 (finished cases I took part in)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required
from sqlalchemy import func, select, tuple_

from engine import casefile, inbox
from engine.access import Actor
from engine.errors import Conflict, InvalidInput, TaskNotReady
from engine.models import Instance, OpenTask, OrgUnit, ProcessVersion, RoleAssignment, User
from engine.roles import ROLES
from engine.runtime import TaskView
from web.auth import current_actor
from web.db import get_engine, get_session, write
from web.i18n import error_message

bp = Blueprint("inbox", __name__)
PER_PAGE = 20


@dataclass
class Row:
    task: TaskView
    county: str
    city: str
    process_name: str
    overdue: bool
    acknowledgeable: bool
    group_size: int


def org_names(codes: set[str]) -> dict[str, str]:
    codes = {c for c in codes if c}
    if not codes:
        return {}
    return dict(get_session().execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(codes))).tuples().all())


def process_names() -> dict[str, str]:
    """The name of each deployed process (of its newest version)."""
    rows = (
        get_session()
        .execute(select(ProcessVersion.process_id, ProcessVersion.name).order_by(ProcessVersion.version))
        .tuples()
        .all()
    )
    return dict(rows)


def _group_sizes(actor: Actor) -> dict[tuple[str, str], int]:
    pairs = list(actor.assignments)
    if not pairs:
        return {}
    rows = get_session().execute(
        select(RoleAssignment.role, RoleAssignment.org_code, func.count())
        .join(User, User.id == RoleAssignment.user_id)
        .where(tuple_(RoleAssignment.role, RoleAssignment.org_code).in_(pairs), User.active.is_(True))
        .group_by(RoleAssignment.role, RoleAssignment.org_code)
    )
    return {(role, org): count for role, org, count in rows}


def _county_options(actor: Actor) -> list[tuple[str, str]]:
    """The counties (and cities) of the cases in the actor's 待办, for the filter."""
    pairs = [(r, o) for r, o in actor.assignments if ROLES[r].scope != "global"]
    if not pairs:
        return []
    rows = (
        get_session()
        .execute(
            select(Instance.county_code, Instance.city_code)
            .join(OpenTask, OpenTask.instance_id == Instance.id)
            .where(tuple_(OpenTask.role, OpenTask.org_code).in_(pairs))
            .distinct()
        )
        .all()
    )
    names = org_names({c for row in rows for c in row if c})
    return sorted(((code, names.get(code, code)) for code in names), key=lambda option: option[0])


def _rows(actor: Actor, tasks: list[TaskView]) -> list[Row]:
    engine = get_engine()
    session = get_session()
    ids = {t.instance_id for t in tasks}
    cases = (
        {
            row.id: row
            for row in session.execute(
                select(Instance.id, Instance.county_code, Instance.city_code, Instance.process_version_id).where(
                    Instance.id.in_(ids)
                )
            )
        }
        if ids
        else {}
    )
    names = org_names({c for row in cases.values() for c in (row.county_code, row.city_code) if c})
    processes = process_names()
    groups = _group_sizes(actor)
    now = engine.now()
    rows = []
    for task in tasks:
        case = cases.get(task.instance_id)
        schema = engine.store.version(session, case.process_version_id).forms.get(task.form or "") if case else None
        rows.append(
            Row(
                task=task,
                county=names.get(case.county_code or "", "") if case else "",
                city=names.get(case.city_code or "", "") if case else "",
                process_name=processes.get(task.process, task.process),
                overdue=task.is_overdue(now),
                acknowledgeable=casefile.needs_no_input(schema),
                group_size=groups.get((task.role, task.org_code), 1),
            )
        )
    return rows


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 6 else default


def _query() -> inbox.InboxQuery:
    overdue = request.args.get("overdue")
    sort = request.args.get("sort", "due")
    return inbox.InboxQuery(
        process=request.args.get("process") or None,
        county=request.args.get("county") or None,
        overdue=True if overdue == "1" else None,
        search=(request.args.get("q") or "").strip()[: inbox.MAX_SEARCH_CHARS] or None,
        sort=sort if sort in inbox.SORTS else "due",
        page=max(_int_arg("page", 1), 1),
        per_page=PER_PAGE,
    )


def _counts(actor: Actor, total: int | None = None) -> dict[str, int]:
    """The tab counts: all open tasks (``total`` when the caller already has it) and the overdue ones."""
    engine, session = get_engine(), get_session()
    if total is None:
        total = inbox.open_tasks(engine, session, actor, inbox.InboxQuery(per_page=1)).total
    return {"open": total, "overdue": inbox.overdue_count(engine, session, actor)}


@bp.route("/")
@login_required
def home():  # noqa: ANN201
    return redirect(url_for("inbox.index"))


@bp.route("/inbox")
@login_required
def index():  # noqa: ANN201
    actor = current_actor()
    query = _query()
    page = inbox.open_tasks(get_engine(), get_session(), actor, query)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "inbox/index.html",
        tab="open",
        page=page,
        rows=_rows(actor, page.items),
        query=query,
        args=args,
        processes=process_names(),
        counties=_county_options(actor),
        counts=_counts(actor, None if args else page.total),
        startable=bool(inbox.startable(get_engine(), get_session(), actor)),
    )


@bp.route("/inbox/done")
@login_required
def done():  # noqa: ANN201
    actor = current_actor()
    page = inbox.done_tasks(get_session(), actor, page=max(_int_arg("page", 1), 1), per_page=PER_PAGE)
    return render_template("inbox/done.html", tab="done", page=page, counts=_counts(actor), args={})


@bp.route("/inbox/finished")
@login_required
def finished():  # noqa: ANN201
    actor = current_actor()
    page = inbox.finished_cases(get_session(), actor, page=max(_int_arg("page", 1), 1), per_page=PER_PAGE)
    return render_template("inbox/finished.html", tab="finished", page=page, counts=_counts(actor), args={})


def _task_ids(values: list[str]) -> list[uuid.UUID]:
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError as exc:
            raise InvalidInput(f"not a task id: {value!r}", {"task_ids": _("A selected task is not valid.")}) from exc
    return ids


@bp.route("/inbox/bulk", methods=["POST"])
@login_required
def bulk():  # noqa: ANN201
    """批量签收 or 批量已阅 of the selected tasks: all of them, or none."""
    action = request.form.get("action")
    back = url_for("inbox.index", **{k: v for k, v in request.args.items() if v})
    ids = request.form.getlist("task_ids")
    if not ids:
        flash(_("Select at least one task."), "warning")
        return redirect(back)
    try:
        task_ids = _task_ids(ids)
        with write() as session:
            if action == "claim":
                done = casefile.claim_tasks(get_engine(), session, current_actor(), task_ids)
                message = ngettext("Signed for %(num)d task.", "Signed for %(num)d tasks.", len(done))
            elif action == "acknowledge":
                done = casefile.acknowledge_tasks(get_engine(), session, current_actor(), task_ids)
                message = ngettext("Marked %(num)d task as read.", "Marked %(num)d tasks as read.", len(done))
            else:
                raise InvalidInput(f"unknown bulk action {action!r}", {"action": _("Unknown action.")})
        flash(message, "success")
    except InvalidInput as exc:
        details: Any = exc.details if isinstance(exc.details, dict) else {}
        flash(error_message(exc.code) + " " + " ".join(str(v) for v in details.values()), "error")
    except (Conflict, TaskNotReady) as exc:
        flash(error_message(exc.code), "error")
    return redirect(back)
