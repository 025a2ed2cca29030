"""Programme-specific service operations that BPMN service tasks call by name.

The engine stays programme-agnostic: it only knows this registry. Each operation runs inside the
command's transaction, so whatever it writes (a document number, a notification, a new case) is
undone if the command fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from engine.access import SYSTEM, scope_org_for
from engine.bound_lists import matches_pairs, pair_values
from engine.case_rows import CaseRow
from engine.documents import issue_pdf
from engine.errors import InvalidInput
from engine.flush_queue import write_at_flush
from engine.models import Instance, Notification, RoleAssignment, User, Zone
from engine.numbering import next_document_number
from engine.roles import LANE_ROLES
from engine.task_notifications import QUEUE_MAILS

APPROVAL_PREFIX = "辽科协发"
NOTIFICATION_KINDS = ("新任务", "退回", "催办", "督办", "通知", "决定")
ZONE_STATUSES = ("申报中", "考察中", "已批复", "未批准", "运行中", "整改中", "已撤销", "期满通过", "期满不通过")
RESULT_PROCESSES = ("project_matching", "service_station", "subsidy")
ONE_RUNNING_CASE_PER_COUNTY = frozenset({"zone_creation", "zone_term"})
FIGURE_KEYS = (
    "projects_total",
    "projects_completed",
    "problems_solved",
    "achievements_transferred",
    "patents",
    "people_trained",
    "contract_value",
    "stations",
    "experts_resident",
    "subsidy_amount",
)


@dataclass
class ServiceContext:
    """What an operation may use: the command's session and clock, the case, and the engine."""

    session: Session
    now: datetime
    instance: Instance | CaseRow
    engine: Any  # engine.runtime.Engine (typed loosely to avoid an import cycle)
    calls: list[dict[str, Any]] = field(default_factory=list)


def add_years(iso_date: str, years: int) -> str:
    day = date.fromisoformat(str(iso_date)[:10])
    try:
        return day.replace(year=day.year + years).isoformat()
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28).isoformat()


def issue_approval(context: ServiceContext, task_data: dict[str, Any], term_years: int = 3) -> dict[str, Any]:
    """Number the 批复 and fix the zone's term: from the approval date, ``term_years`` years."""
    today = context.now.date()
    number = next_document_number(context.session, APPROVAL_PREFIX, today.year)
    return {
        "approval_no": f"{APPROVAL_PREFIX}〔{today.year}〕{number}号",
        "approval_date": today.isoformat(),
        "term_start": today.isoformat(),
        "term_end": add_years(today.isoformat(), term_years),
    }


def issue_document(context: ServiceContext, task_data: dict[str, Any], prefix: str = APPROVAL_PREFIX) -> dict[str, Any]:
    year = context.now.year
    number = next_document_number(context.session, prefix, year)
    return {"document_no": f"{prefix}〔{year}〕{number}号"}


def start_case(
    context: ServiceContext, task_data: dict[str, Any], process: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Start a case of ``process`` for the same county, as the system, linked to this case."""
    start_data = dict(data or {})
    start_data.setdefault("county_code", context.instance.county_code)
    view = context.engine.start_instance(context.session, SYSTEM, process, start_data, parent=context.instance)
    return {"case_id": str(view.id)}


@lru_cache(maxsize=16)
def _active_users_in_pairs(pairs: int) -> Select[tuple[str]]:
    return (
        select(User.username)
        .join(RoleAssignment)
        .where(matches_pairs(RoleAssignment.role, RoleAssignment.org_code, pairs))
        .where(User.active.is_(True))
        .distinct()
        .order_by(User.username)
    )


_INSERT_NOTIFICATION = insert(Notification.__table__)


def notify(
    context: ServiceContext, task_data: dict[str, Any], kind: str, roles: list[str], message: str
) -> dict[str, Any]:
    """An in-app notification to every user holding one of ``roles`` for this case's scope."""
    if kind not in NOTIFICATION_KINDS:
        raise InvalidInput(f"unknown notification kind {kind!r}")
    targets = {(role, scope_org_for(role, context.instance, task_data)) for role in roles if role in LANE_ROLES}
    if len(targets) != len(set(roles)):
        raise InvalidInput(f"unknown role in {roles!r}")
    pairs = list(targets)
    users = []
    if pairs:
        found = context.session.connection().execute(_active_users_in_pairs(len(pairs)), pair_values(pairs))
        users = found.scalars().all()
    common = {"note_kind": kind, "case_id": context.instance.id, "at": context.now}
    notes = [
        {
            "username": u,
            "kind": kind,
            "message": str(message),
            "instance_id": context.instance.id,
            "created_at": context.now,
        }
        for u in users
    ]
    if notes:
        # Written with the command's flush: a case started by this command only has its row then.
        write_at_flush(context.session, _INSERT_NOTIFICATION, notes)
        write_at_flush(context.session, QUEUE_MAILS, common)
    return {"notified": len(users)}


def zone_figures(context: ServiceContext, task_data: dict[str, Any], year: int) -> dict[str, Any]:
    """The results recorded for this zone in term year ``year`` (1–3), from finished cases."""
    term_start = task_data.get("term_start")
    if not term_start:
        raise InvalidInput("zone_figures needs term_start in the case data")
    start, end = add_years(term_start, int(year) - 1), add_years(term_start, int(year))
    figures: dict[str, float] = dict.fromkeys(FIGURE_KEYS, 0)
    cases = context.session.scalars(
        select(Instance).where(
            Instance.county_code == context.instance.county_code,
            Instance.process_id.in_(RESULT_PROCESSES),
        )
    )
    for case in cases:
        started = case.created_at.date().isoformat()
        if not (start <= started < end):
            continue
        if case.process_id == "project_matching":
            figures["projects_total"] += 1
        if case.status != "completed" or not case.result:
            continue
        if case.process_id == "project_matching" and case.outcome and "完成" in case.outcome:
            figures["projects_completed"] += 1
        for key in FIGURE_KEYS:
            value = case.result.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and key != "projects_total":
                figures[key] += value
    return {key: round(value, 2) for key, value in figures.items()}


def set_zone_status(
    context: ServiceContext, task_data: dict[str, Any], status: str, year: int | None = None, grade: str | None = None
) -> dict[str, Any]:
    """Keep the programme overview current for this case's county."""
    if status not in ZONE_STATUSES:
        raise InvalidInput(f"unknown zone status {status!r}")
    instance = context.instance
    zone = context.session.get(Zone, instance.county_code)
    if zone is None:
        zone = Zone(
            county_code=instance.county_code,
            city_code=instance.city_code,
            status=status,
            grades={},
            updated_at=context.now,
        )
        context.session.add(zone)
    zone.status = status
    zone.updated_at = context.now
    approval = task_data.get("approval") if isinstance(task_data.get("approval"), dict) else {}
    zone.approval_no = approval.get("approval_no") or task_data.get("approval_no") or zone.approval_no
    zone.term_start = approval.get("term_start") or task_data.get("term_start") or zone.term_start
    zone.term_end = approval.get("term_end") or task_data.get("term_end") or zone.term_end
    if year is not None and grade:
        zone.grades = {**(zone.grades or {}), str(year): grade}
    return {"status": status}


SERVICES: dict[str, Callable[..., dict[str, Any]]] = {
    "issue_approval": issue_approval,
    "issue_pdf": issue_pdf,
    "issue_document": issue_document,
    "start_case": start_case,
    "notify": notify,
    "zone_figures": zone_figures,
    "set_zone_status": set_zone_status,
}


def script_helpers(now: datetime) -> dict[str, Callable[..., Any]]:
    """Functions BPMN scripts, conditions and timer expressions may call, bound to the engine clock."""
    return {
        "today": lambda: now.date().isoformat(),
        "now": lambda: now.isoformat(),
        "add_years": add_years,
        "add_days": lambda iso_date, days: date.fromordinal(
            date.fromisoformat(str(iso_date)[:10]).toordinal() + int(days)
        ).isoformat(),
        "at_start_of": lambda iso_date: f"{str(iso_date)[:10]}T00:00:00+08:00",
    }
