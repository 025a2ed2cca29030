"""Blueprint ``audit``: the auditor's pages, all read-only — case search, a case's history with what
each step changed, step-through on the diagram, the chain check, exports and a printable report.

Only holders of the ``auditor`` role may open them (PermissionDenied otherwise); the case itself is
read through ``Engine.history``, which applies the engine's read check. Nothing here writes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine import audit, checkpoints, replay, useradmin
from engine.access import Actor
from engine.errors import EngineError, PermissionDenied
from engine.inbox import Page
from engine.models import HistoryEvent, Instance, OpenTask, User
from engine.store import LoadedVersion
from web.auth import current_actor
from web.cases import VIEWER_SCRIPT
from web.db import get_engine, get_session
from web.i18n import TIMEZONE, command_label, format_time
from web.inbox import process_names
from web.names import org_names
from web.timeline import case_header, dossier, step_names, timeline

bp = Blueprint("audit", __name__, url_prefix="/audit")
AUDITOR = "auditor"
PER_PAGE = 30
STATUSES = ("running", "completed", "error", "terminated")
MAX_VALUE_CHARS = 400


def require_auditor() -> Actor:
    actor = current_actor()
    if not actor.has_role(AUDITOR):
        raise PermissionDenied(f"{actor.username} is not an auditor")
    return actor


# -- search --------------------------------------------------------------------------------------


@dataclass
class SearchQuery:
    county: str = ""
    process: str = ""
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    participant: str = ""
    page: int = 1
    errors: dict[str, bool] = field(default_factory=dict)

    def args(self) -> dict[str, str]:
        values = {
            "county": self.county,
            "process": self.process,
            "status": self.status,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "participant": self.participant,
        }
        return {k: v for k, v in values.items() if v}


def _date_arg(name: str, errors: dict[str, bool]) -> date | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        errors[name] = True
        return None


def _query() -> SearchQuery:
    errors: dict[str, bool] = {}
    page = request.args.get("page", "")
    status = request.args.get("status", "")
    return SearchQuery(
        county=(request.args.get("county") or "").strip()[:16],
        process=(request.args.get("process") or "").strip()[:64],
        status=status if status in STATUSES else "",
        date_from=_date_arg("from", errors),
        date_to=_date_arg("to", errors),
        participant=(request.args.get("participant") or "").strip()[:64],
        page=int(page) if page.isdigit() and 0 < len(page) < 6 and int(page) > 0 else 1,
        errors=errors,
    )


def _day_start(day: date) -> datetime:
    """Midnight of ``day`` in Shenyang, as the stored (UTC) instant."""
    return datetime.combine(day, time(), ZoneInfo(TIMEZONE)).astimezone(ZoneInfo("UTC"))


def search_cases(session: Session, query: SearchQuery) -> Page[Any]:
    stmt = select(Instance)
    if query.county:
        stmt = stmt.where(or_(Instance.county_code == query.county, Instance.city_code == query.county))
    if query.process:
        stmt = stmt.where(Instance.process_id == query.process)
    if query.status:
        stmt = stmt.where(Instance.status == query.status)
    if query.date_from:
        stmt = stmt.where(Instance.created_at >= _day_start(query.date_from))
    if query.date_to:
        stmt = stmt.where(Instance.created_at < _day_start(query.date_to + timedelta(days=1)))
    if query.participant:
        people = select(User.username).where(
            or_(User.username == query.participant, User.display_name.contains(query.participant, autoescape=True))
        )
        took_part = select(HistoryEvent.instance_id).where(HistoryEvent.actor.in_(people))
        stmt = stmt.where(or_(Instance.started_by.in_(people), Instance.id.in_(took_part)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Instance.created_at.desc(), Instance.id).offset((query.page - 1) * PER_PAGE).limit(PER_PAGE)
    ).all()
    return Page(list(rows), total, query.page, PER_PAGE)


def _place_options(session: Session) -> list[tuple[str, str]]:
    """Cities, then their counties, of all cases."""
    pairs = session.execute(select(Instance.city_code, Instance.county_code).distinct()).tuples().all()
    names = org_names({code for pair in pairs for code in pair if code})
    options: list[tuple[str, str]] = []
    for city in sorted({c for c, _k in pairs if c}):
        options.append((city, names.get(city, city)))
        for county in sorted({k for c, k in pairs if c == city and k and k != city}):
            options.append((county, "　" + names.get(county, county)))
    return options


@bp.route("/")
@login_required
def index():  # noqa: ANN201
    require_auditor()
    session = get_session()
    query = _query()
    page = search_cases(session, query)
    names = org_names({code for case in page.items for code in (case.county_code, case.city_code) if code})
    return render_template(
        "audit/index.html",
        query=query,
        page=page,
        args=query.args(),
        names=names,
        processes=process_names(),
        places=_place_options(session),
        statuses=STATUSES,
    )


# -- the administrators' chain and the global anchors ---------------------------------------------

ADMIN_COMMANDS = {
    "user_add": _l("User added"),
    "user_disable": _l("User disabled"),
    "user_enable": _l("User enabled"),
    "role_grant": _l("Role granted"),
    "role_revoke": _l("Role revoked"),
    "user_password": _l("Password set"),
}


@bp.route("/chain")
@login_required
def chain():  # noqa: ANN201
    """Read-only: the admin changes and the checkpoints, each chain verified (auditors and admins)."""
    actor = current_actor()
    if not (actor.has_role(AUDITOR) or actor.has_role(useradmin.ADMIN)):
        raise PermissionDenied(f"{actor.username} may not read the audit chains")
    status = checkpoints.anchor_status(get_session(), actor)
    return render_template("audit/chain.html", status=status, admin_commands=ADMIN_COMMANDS)


# -- one case: steps, diffs, verification --------------------------------------------------------


@dataclass
class Step:
    seq: int
    command: str
    actor: str
    at: Any
    completed: list[str]
    active: list[str]
    data: dict[str, Any]


@dataclass
class Change:
    path: str
    label: str
    kind: str  # added | removed | changed
    before: str
    after: str


def _steps_from_history(events: list[HistoryEvent], open_steps: list[str]) -> list[Step]:
    """What the history alone says (used only when the replay cannot rebuild the case)."""
    data: dict[str, Any] = {}
    completed: list[str] = []
    steps = []
    for event in events:
        payload = event.payload or {}
        if event.command in ("start", "complete"):
            data.update(payload.get("data") or {})
            if event.command == "start":
                data.update(payload.get("scope") or {})
                data.update(payload.get("batch") or {})
        completed += [step for step in payload.get("completed", []) if step not in completed]
        steps.append(Step(event.seq, event.command, event.actor, event.at, list(completed), [], dict(data)))
    if steps:
        steps[-1].active = open_steps
    return steps


def case_steps(session: Session, instance_id: uuid.UUID, events: list[HistoryEvent]) -> tuple[list[Step], bool]:
    """The case after each event, rebuilt by the replay; ``(steps, False)`` when the history no longer
    replays (``ReplayDiverged``) and the steps come from what the history itself records."""
    try:
        rebuilt = {step.seq: step for step in replay.replay_steps(get_engine().store, session, instance_id)}
    except EngineError:
        open_steps = session.scalars(select(OpenTask.bpmn_id).where(OpenTask.instance_id == instance_id)).all()
        return _steps_from_history(events, sorted(open_steps)), False
    steps: list[Step] = []
    for event in events:
        found = rebuilt.get(event.seq)
        before = steps[-1] if steps else Step(0, "", "", None, [], [], {})
        steps.append(
            Step(event.seq, event.command, event.actor, event.at, before.completed, before.active, before.data)
            if found is None
            else Step(
                event.seq,
                event.command,
                event.actor,
                event.at,
                list(found.completed),
                list(found.active),
                dict(found.data),
            )
        )
    return steps, True


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and (value or not prefix):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}[{index + 1}]"))
        return flat
    return {prefix: value}


@bp.app_template_filter("audit_value")
def show_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def field_titles(version: LoadedVersion) -> dict[str, str]:
    """Data key -> form title, from every form of the process version."""
    titles: dict[str, str] = {}
    for schema in version.forms.values():
        for key, spec in (schema.get("properties") or {}).items():
            if isinstance(spec, dict) and spec.get("title"):
                titles.setdefault(key, str(spec["title"]))
    return titles


def _label(path: str, titles: dict[str, str]) -> str:
    head, _, rest = path.replace("[", ".[").partition(".")
    title = titles.get(head)
    return f"{title} {rest.replace('.[', '[')}".strip() if title else path


def diff_data(before: dict[str, Any], after: dict[str, Any], titles: dict[str, str]) -> list[Change]:
    """What changed in the case data from one step to the next, field by field."""
    old, new = _flatten(before), _flatten(after)
    changes = []
    for path in [*old, *(p for p in new if p not in old)]:
        if path not in new:
            changes.append(Change(path, _label(path, titles), "removed", show_value(old[path]), ""))
        elif path not in old:
            changes.append(Change(path, _label(path, titles), "added", "", show_value(new[path])))
        elif old[path] != new[path]:
            changes.append(Change(path, _label(path, titles), "changed", show_value(old[path]), show_value(new[path])))
    return changes


def _case(instance_id: uuid.UUID) -> dict[str, Any]:
    """Everything the auditor's case pages show, read with the auditor's own permissions."""
    actor = require_auditor()
    engine, session = get_engine(), get_session()
    events = engine.history(session, actor, instance_id)
    header, version = case_header(instance_id)
    steps, replayed = case_steps(session, instance_id, events)
    titles = field_titles(version)
    diffs = [diff_data(steps[i - 1].data if i else {}, step.data, titles) for i, step in enumerate(steps)]
    submitted = {part.seq: part.fields for part in dossier(events, version, header.process)}
    return {
        "case": header,
        "events": events,
        "entries": timeline(events, version),
        "steps": steps,
        "replayed": replayed,
        "diffs": diffs,
        "submitted": submitted,
        "titles": titles,
        "step_names": step_names(version),
        "verification": audit.verify_case(session, instance_id),
        "bpmn_viewer": VIEWER_SCRIPT.exists(),
        "diagram_url": url_for("cases.diagram", instance_id=instance_id),
    }


@bp.route("/cases/<uuid:instance_id>")
@login_required
def case(instance_id: uuid.UUID):  # noqa: ANN201
    return render_template("audit/case.html", **_case(instance_id))


@bp.route("/cases/<uuid:instance_id>/steps")
@login_required
def steps(instance_id: uuid.UUID):  # noqa: ANN201
    context = _case(instance_id)
    count = len(context["steps"])
    wanted = request.args.get("step", "")
    current = min(max(int(wanted), 1), count) if wanted.isdigit() and len(wanted) < 6 else count
    states = [
        {
            "seq": s.seq,
            "label": command_label(s.command),
            "completed": s.completed,
            "active": s.active,
            "at": format_time(s.at),
        }
        for s in context["steps"]
    ]
    return render_template("audit/steps.html", current=current, states=states, **context)


def _filename(instance_id: uuid.UUID, suffix: str) -> str:
    key = get_session().scalar(select(Instance.business_key).where(Instance.id == instance_id)) or str(instance_id)
    return key.replace("/", "_") + suffix


def _download(content: str, mimetype: str, filename: str) -> Response:
    response = Response(content, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return response


@bp.route("/cases/<uuid:instance_id>/history.<any(csv, json):fmt>")
@login_required
def export(instance_id: uuid.UUID, fmt: str):  # noqa: ANN201
    actor = require_auditor()
    events = get_engine().history(get_session(), actor, instance_id)
    content = audit.export_events(events, fmt)
    if fmt == "csv":  # a byte-order mark, so that Excel opens the Chinese text as UTF-8
        return _download("\ufeff" + content, "text/csv", _filename(instance_id, "-history.csv"))
    return _download(content, "application/json", _filename(instance_id, "-history.json"))


@bp.route("/cases/<uuid:instance_id>/report")
@login_required
def report(instance_id: uuid.UUID):  # noqa: ANN201
    context = _case(instance_id)
    final = context["steps"][-1] if context["steps"] else None
    state = {"completed": final.completed if final else [], "active": final.active if final else []}
    return render_template(
        "audit/report.html",
        state=state,
        generated_at=get_engine().now(),
        auditor=current_actor().display_name,
        **context,
    )
