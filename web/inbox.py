"""Blueprint ``inbox``: 待办 (open tasks, filters, sorting, search, paging, bulk 签收 and 已阅),
已办 (what I handled) and 办结 (finished cases I took part in)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import Blueprint, current_app, flash, get_template_attribute, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import login_required
from markupsafe import Markup
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import aliased

from engine import casefile, inbox
from engine.access import Actor
from engine.bound_lists import in_list, list_values, matches_pairs, pair_values
from engine.errors import Conflict, InvalidInput, TaskNotReady
from engine.models import Instance, OpenTask, OrgUnit, RoleAssignment, User
from engine.runtime import TaskView
from web.auth import current_actor
from web.db import get_engine, get_session, write
from web.i18n import error_message

bp = Blueprint("inbox", __name__)
PER_PAGE = 20


@dataclass(frozen=True)
class Row:
    """What one 待办 row shows; also the key (with the language) its rendered HTML is kept under."""

    task: TaskView
    county: str
    city: str
    process_name: str
    overdue: bool
    acknowledgeable: bool
    group_size: int
    task_url: str
    case_url: str


def _url_maker(endpoint: str, argument: str) -> Callable[[uuid.UUID], str]:
    """``url_for(endpoint, argument=id)`` for the many rows of a list: the route is built once and each
    row's id put into it (building it through the URL map for every row cost a tenth of the page)."""
    placeholder = str(uuid.UUID(int=0))
    template = url_for(endpoint, **{argument: placeholder})
    return lambda value: template.replace(placeholder, str(value))


def process_names() -> dict[str, str]:
    """The name of each deployed process (of its newest version)."""
    return {version.process_id: version.name for version in inbox.latest_versions(get_session())}


# The statements of every 待办 page, built once per number of (role, org) pairs (SQLAlchemy then reuses
# their SQL and cache keys); the actor's pairs and the page's case ids are bound per request.
@lru_cache(maxsize=16)
def _group_sizes_statement(pairs: int) -> Select[tuple[str, str, int]]:
    return (
        select(RoleAssignment.role, RoleAssignment.org_code, func.count())
        .join(User, User.id == RoleAssignment.user_id)
        .where(matches_pairs(RoleAssignment.role, RoleAssignment.org_code, pairs))
        .where(User.active.is_(True))
        .group_by(RoleAssignment.role, RoleAssignment.org_code)
    )


@lru_cache(maxsize=16)
def _county_options_statement(pairs: int) -> Select[tuple[str, str]]:
    offered = (
        select(Instance.county_code, Instance.city_code)
        .join(OpenTask, OpenTask.instance_id == Instance.id)
        .where(matches_pairs(OpenTask.role, OpenTask.org_code, pairs))
        .subquery()
    )
    return (
        select(OrgUnit.code, OrgUnit.name)
        .where(or_(OrgUnit.code.in_(select(offered.c.county_code)), OrgUnit.code.in_(select(offered.c.city_code))))
        .order_by(OrgUnit.code)
    )


@lru_cache(maxsize=128)
def _case_places_statement(cases: int) -> Select[Any]:
    county, city = aliased(OrgUnit), aliased(OrgUnit)
    return (
        select(Instance.id, Instance.process_version_id, county.name.label("county"), city.name.label("city"))
        .outerjoin(county, county.code == Instance.county_code)
        .outerjoin(city, city.code == Instance.city_code)
        .where(in_list(Instance.id, cases, "case"))
    )


def _group_sizes(actor: Actor) -> dict[tuple[str, str], int]:
    pairs = list(actor.assignments)
    if not pairs:
        return {}
    rows = get_session().connection().execute(_group_sizes_statement(len(pairs)), pair_values(pairs))
    return {(role, org): count for role, org, count in rows}


def _county_options(actor: Actor) -> list[tuple[str, str]]:
    """The counties (and cities) of the cases in the actor's 待办, for the filter."""
    pairs = actor.lane_assignments()
    if not pairs:
        return []
    rows = get_session().connection().execute(_county_options_statement(len(pairs)), pair_values(pairs))
    return [(code, name) for code, name in rows]


def _acknowledgeable(version_id: int, form: str | None) -> bool:
    """Whether a step's form asks for nothing (已阅); remembered per deployed version, which never changes."""
    known: dict[tuple[int, str | None], bool] = current_app.extensions.setdefault("demozone.acknowledgeable", {})
    key = (version_id, form)
    if key not in known:
        schema = get_engine().store.version(get_session(), version_id).forms.get(form or "")
        known[key] = casefile.needs_no_input(schema)
    return known[key]


def _rows(actor: Actor, tasks: list[TaskView], processes: dict[str, str]) -> list[Row]:
    ids = list({t.instance_id for t in tasks})
    cases = {}
    if ids:
        rows = get_session().connection().execute(_case_places_statement(len(ids)), list_values("case", ids))
        cases = {row.id: row for row in rows}
    groups = _group_sizes(actor)
    now = get_engine().now()
    task_url, case_url = _url_maker("tasks.show", "task_id"), _url_maker("cases.show", "instance_id")
    rows = []
    for task in tasks:
        case = cases.get(task.instance_id)
        rows.append(
            Row(
                task=task,
                county=(case.county or "") if case else "",
                city=(case.city or "") if case else "",
                process_name=processes.get(task.process, task.process),
                overdue=task.is_overdue(now),
                acknowledgeable=_acknowledgeable(case.process_version_id, task.form) if case else True,
                group_size=groups.get((task.role, task.org_code), 1),
                task_url=task_url(task.id),
                case_url=case_url(task.instance_id),
            )
        )
    return rows


ROW_HTML_KEPT = 4096  # rows of HTML kept per process, about 1.5 KB each


def _row_html(rows: list[Row]) -> list[Markup]:
    """Each row's HTML (``inbox/_row.html``), rendered once per row and language and then kept.

    Rendering the 20 rows was a third of the page's time. Between two visits a 待办 page mostly shows
    the same rows, and a row's HTML depends on nothing but its values and the language, which together
    are the key: a changed task (claimed, renamed, overdue, ...) is a new key, never a stale row.
    """
    render = current_app.extensions.get("demozone.inbox_rows")
    if render is None:
        macro = get_template_attribute("inbox/_row.html", "task_row")
        render = lru_cache(maxsize=ROW_HTML_KEPT)(lambda row, _locale: Markup(macro(row)))
        if not current_app.jinja_env.auto_reload:  # templates being edited (debug): never a row of the old one
            current_app.extensions["demozone.inbox_rows"] = render
    locale = str(get_locale())
    return [render(row, locale) for row in rows]


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


def _counts(actor: Actor) -> dict[str, int]:
    """The tab counts: all open tasks and the overdue ones."""
    total, overdue = inbox.open_task_counts(get_engine(), get_session(), actor)
    return {"open": total, "overdue": overdue}


@bp.route("/")
@login_required
def home():  # noqa: ANN201
    return redirect(url_for("inbox.index"))


@bp.route("/inbox")
@login_required
def index():  # noqa: ANN201
    actor = current_actor()
    engine, session = get_engine(), get_session()
    query = _query()
    counts = _counts(actor)
    page = inbox.open_tasks(engine, session, actor, query, total=counts["open"])
    versions = inbox.latest_versions(session)
    processes = {version.process_id: version.name for version in versions}
    rows = _rows(actor, page.items, processes)
    return render_template(
        "inbox/index.html",
        tab="open",
        page=page,
        rows=rows,
        row_html=_row_html(rows),
        query=query,
        args={k: v for k, v in request.args.items() if k != "page" and v},
        processes=processes,
        counties=_county_options(actor),
        counts=counts,
        startable=bool(inbox.startable(engine, session, actor, versions)),
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
