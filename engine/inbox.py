"""Inbox queries: 待办 (tasks offered to me), 已办 (steps I completed or returned), 办结 (finished cases
I took part in), what I may start, and how many of my tasks are overdue.

Everything is answered in SQL from the open_task, history_event and instance tables, filters, sorting
and paging included, so an inbox page never deserializes a workflow. Only ``startable`` reads process
specs, which the store caches per version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Generic, TypeVar

from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from sqlalchemy import Select, bindparam, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from engine.access import Actor
from engine.bound_lists import matches_pairs, pair_values
from engine.errors import InvalidInput
from engine.models import HistoryEvent, Instance, OpenTask, OrgUnit, ProcessVersion
from engine.orgs import CANDIDATE_KINDS
from engine.programme import ONE_RUNNING_CASE_PER_COUNTY
from engine.roles import PROVINCE_CODE, ROLES
from engine.runtime import Engine, TaskView
from engine.views import TASK_VIEW_COLUMNS

T = TypeVar("T")

MAX_PER_PAGE = 100
SORTS = ("due", "urgency", "received")
DONE_COMMANDS = ("complete", "return")
FINISHED_STATUSES = ("completed", "terminated")  # a terminated case is finished (办结) too
MAX_SEARCH_CHARS = 100

# Display names of steps per (process id, content hash): a deployed version never changes, and the
# hash (unlike the row id) stays right when one process serves several databases, as tests do.
_STEP_NAMES: dict[tuple[str, str], dict[str, str]] = {}
_START_ROLES: dict[tuple[str, str], set[str]] = {}


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.per_page)


@dataclass
class InboxQuery:
    process: str | None = None
    county: str | None = None  # org code of the case's county, or of its city
    overdue: bool | None = None
    search: str | None = None  # in the case title, the step name or the business key
    sort: str = "due"  # due | urgency (特急 > 加急 > 平件) | received (newest first)
    page: int = 1
    per_page: int = 20


@dataclass
class DoneTask:
    task_id: uuid.UUID | None
    instance_id: uuid.UUID
    step: str | None
    name: str
    command: str  # complete | return
    at: datetime
    case_title: str
    instance_status: str


@dataclass
class CaseSummary:
    instance_id: uuid.UUID
    process: str
    process_name: str
    business_key: str
    case_title: str
    county_code: str | None
    county_name: str | None
    city_name: str | None
    status: str
    outcome: str | None
    created_at: datetime
    completed_at: datetime | None


@dataclass
class DeployedProcess:
    id: int  # of the process_version row
    process_id: str
    name: str
    content_hash: str


@dataclass
class StartOption:
    process_id: str
    name: str
    candidates: list[tuple[str, str]]  # (org code, name) of the counties, districts and parks


def open_tasks(
    engine: Engine, session: Session, actor: Actor, query: InboxQuery | None = None, total: int | None = None
) -> Page[TaskView]:
    """待办: tasks offered to the actor's (role, org) pairs, unclaimed or claimed by the actor.

    ``total``, when the caller already counted the unfiltered 待办 (``open_task_counts``), saves counting
    it again; it is used only for a query without filters.
    """
    query = query or InboxQuery()
    _check_paging(query.page, query.per_page)
    if query.sort not in SORTS:
        raise InvalidInput(f"unknown sort {query.sort!r}", {"sort": "排序方式只能是 due、urgency 或 received"})
    term = (query.search or "").strip()
    if len(term) > MAX_SEARCH_CHARS:
        raise InvalidInput("search text too long", {"search": f"检索词最多 {MAX_SEARCH_CHARS} 个字"})
    offered = _offered_params(actor)
    if offered is None:
        return Page([], 0, query.page, query.per_page)
    pairs, params = offered
    params.update(
        process=query.process,
        county=query.county,
        now=engine.now(),
        pattern="%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
        offset=(query.page - 1) * query.per_page,
        limit=query.per_page,
    )
    rows, count = _open_task_statements(
        pairs, bool(query.process), bool(query.county), query.overdue, bool(term), query.sort
    )
    unfiltered = not (query.process or query.county or query.overdue is not None or term)
    if total is None or not unfiltered:
        total = session.scalar(count, params) or 0
    items = [TaskView.from_columns(row) for row in session.connection().execute(rows, params)]
    return Page(items, total, query.page, query.per_page)


def overdue_count(engine: Engine, session: Session, actor: Actor) -> int:
    return open_task_counts(engine, session, actor)[1]


def open_task_counts(engine: Engine, session: Session, actor: Actor) -> tuple[int, int]:
    """(all tasks in the actor's 待办, the overdue ones), in one statement."""
    offered = _offered_params(actor)
    if offered is None:
        return 0, 0
    pairs, params = offered
    total, late = session.connection().execute(_open_and_overdue(pairs), {**params, "now": engine.now()}).one()
    return total, late


def done_tasks(session: Session, actor: Actor, page: int = 1, per_page: int = 20) -> Page[DoneTask]:
    """已办: the steps the actor completed or returned, newest first."""
    _check_paging(page, per_page)
    county = aliased(OrgUnit)
    # Named columns only: an event's payload holds the whole submitted form, which a list never needs.
    stmt = (
        select(
            HistoryEvent.task_id,
            HistoryEvent.instance_id,
            HistoryEvent.bpmn_id.label("step"),
            HistoryEvent.command,
            HistoryEvent.at,
            _title(county.name, ProcessVersion.name).label("case_title"),
            Instance.status.label("instance_status"),
            Instance.process_id,
            ProcessVersion.content_hash,
            ProcessVersion.id.label("version_id"),
        )
        .join(Instance, Instance.id == HistoryEvent.instance_id)
        .join(ProcessVersion, ProcessVersion.id == Instance.process_version_id)
        .outerjoin(county, county.code == Instance.county_code)
        .where(HistoryEvent.actor == actor.username, HistoryEvent.command.in_(DONE_COMMANDS))
    )
    total = _count(session, stmt)
    rows = session.execute(
        stmt.order_by(HistoryEvent.at.desc(), HistoryEvent.id.desc()).offset((page - 1) * per_page).limit(per_page)
    )
    items = []
    for row in rows:
        step = row.step or ""
        name = _step_names(session, row.process_id, row.content_hash, row.version_id).get(step, step)
        items.append(
            DoneTask(
                row.task_id,
                row.instance_id,
                row.step,
                name,
                row.command,
                row.at,
                row.case_title,
                row.instance_status,
            )
        )
    return Page(items, total, page, per_page)


def finished_cases(session: Session, actor: Actor, page: int = 1, per_page: int = 20) -> Page[CaseSummary]:
    """办结: finished cases in whose history the actor appears, most recently finished first."""
    _check_paging(page, per_page)
    county, city = aliased(OrgUnit), aliased(OrgUnit)
    took_part = (
        select(HistoryEvent.id)
        .where(HistoryEvent.instance_id == Instance.id, HistoryEvent.actor == actor.username)
        .exists()
    )
    # Named columns only: the instance row also holds the serialized workflow, which a list never needs.
    stmt = (
        select(
            Instance.id.label("instance_id"),
            Instance.process_id.label("process"),
            ProcessVersion.name.label("process_name"),
            Instance.business_key,
            _title(county.name, ProcessVersion.name).label("case_title"),
            Instance.county_code,
            county.name.label("county_name"),
            city.name.label("city_name"),
            Instance.status,
            Instance.outcome,
            Instance.created_at,
            Instance.completed_at,
        )
        .join(ProcessVersion, ProcessVersion.id == Instance.process_version_id)
        .outerjoin(county, county.code == Instance.county_code)
        .outerjoin(city, city.code == Instance.city_code)
        .where(Instance.status.in_(FINISHED_STATUSES), took_part)
    )
    total = _count(session, stmt)
    rows = session.execute(
        stmt.order_by(Instance.completed_at.desc(), Instance.id).offset((page - 1) * per_page).limit(per_page)
    )
    items = [CaseSummary(**row._asdict()) for row in rows]
    return Page(items, total, page, per_page)


def _latest_versions() -> Select[tuple[int, str, str, str]]:
    latest = (
        select(ProcessVersion.process_id, func.max(ProcessVersion.version).label("version"))
        .group_by(ProcessVersion.process_id)
        .subquery()
    )
    return (
        select(ProcessVersion.id, ProcessVersion.process_id, ProcessVersion.name, ProcessVersion.content_hash)
        .join(
            latest,
            (ProcessVersion.process_id == latest.c.process_id) & (ProcessVersion.version == latest.c.version),
        )
        .order_by(ProcessVersion.process_id)
    )


_LATEST_VERSIONS = _latest_versions()


def latest_versions(session: Session) -> list[DeployedProcess]:
    """The newest deployed version of each process, by process id."""
    return [DeployedProcess(*row) for row in session.connection().execute(_LATEST_VERSIONS)]


def startable(
    engine: Engine, session: Session, actor: Actor, versions: list[DeployedProcess] | None = None
) -> list[StartOption]:
    """The processes the actor may start, each with the candidates the actor may start it for.

    A process allowing one running case per county leaves out the candidates that have one, since
    starting another would be refused. A process whose start event has no lane is started by the
    system, never from here. ``versions`` is ``latest_versions()`` when the caller already has it.
    """
    options = []
    for version in latest_versions(session) if versions is None else versions:
        roles = _start_roles(engine, session, version)
        candidates = _candidates(session, actor, roles, version.process_id)
        if candidates:
            options.append(StartOption(version.process_id, version.name, candidates))
    return options


def _start_roles(engine: Engine, session: Session, version: DeployedProcess) -> set[str]:
    # As Engine._starter_assignment reads them: the start event's startRoles property, else its lane.
    # Read once per deployed version: every inbox page asks whether its user may start something.
    key = (version.process_id, version.content_hash)
    roles = _START_ROLES.get(key)
    if roles is None:
        spec = engine.store.version(session, version.id).spec
        start = next((s for s in spec.task_specs.values() if isinstance(s, StartEvent) and s.lane), None)
        listed = getattr(start, "extensions", {}).get("properties", {}).get("startRoles", "") if start else ""
        roles = {r.strip() for r in listed.split(",") if r.strip() in ROLES} or ({start.lane} if start else set())
        _START_ROLES[key] = roles
    return roles


def _candidates(session: Session, actor: Actor, roles: set[str], process_id: str) -> list[tuple[str, str]]:
    # Mirrors the start check: a city role starts for the counties of its city, a county role for its
    # own county; a province role (held for the province) or a society (named in the data) for any.
    held = [(ROLES[role].scope, org) for role, org in actor.assignments if role in roles]
    cities = {org for scope, org in held if scope == "city"}
    counties = {org for scope, org in held if scope == "county"}
    anywhere = any(scope == "society" or (scope, org) == ("province", PROVINCE_CODE) for scope, org in held)
    if not (cities or counties or anywhere):
        return []
    stmt = select(OrgUnit.code, OrgUnit.name).where(OrgUnit.kind.in_(CANDIDATE_KINDS))
    if not anywhere:
        stmt = stmt.where(or_(OrgUnit.parent_code.in_(cities), OrgUnit.code.in_(counties)))
    if process_id in ONE_RUNNING_CASE_PER_COUNTY:
        running = select(Instance.county_code).where(
            Instance.process_id == process_id, Instance.status == "running", Instance.county_code.is_not(None)
        )
        stmt = stmt.where(OrgUnit.code.not_in(running))
    return [(code, name) for code, name in session.execute(stmt.order_by(OrgUnit.code))]


def _offered_params(actor: Actor) -> tuple[int, dict[str, Any]] | None:
    """How many (role, org) pairs the actor holds that tasks are offered to, and the parameters of
    ``_offered`` for them; None if they hold none."""
    pairs = actor.lane_assignments()
    return (len(pairs), {**pair_values(pairs), "username": actor.username}) if pairs else None


def _offered(pairs: int) -> Select[tuple[OpenTask]]:
    """Tasks offered to ``pairs`` bound (role, org) pairs, unclaimed or claimed by ``username``."""
    return (
        select(OpenTask)
        .join(Instance, Instance.id == OpenTask.instance_id)
        .where(
            matches_pairs(OpenTask.role, OpenTask.org_code, pairs),
            or_(OpenTask.claimed_by.is_(None), OpenTask.claimed_by == bindparam("username")),
        )
    )


# A page of 待办 has a handful of shapes (how many pairs, which filters, which order). Each shape's
# statements are built once: building them, and SQLAlchemy's cache key for them, cost more than running them.
@lru_cache(maxsize=256)
def _open_task_statements(
    pairs: int, process: bool, county: bool, overdue: bool | None, search: bool, sort: str
) -> tuple[Select[Any], Select[tuple[int]]]:
    """(one page of rows, their count) for a 待办 query with these filters, values bound per request."""
    stmt = _offered(pairs)
    if process:
        stmt = stmt.where(OpenTask.process_id == bindparam("process"))
    if county:
        stmt = stmt.where(or_(Instance.county_code == bindparam("county"), Instance.city_code == bindparam("county")))
    if overdue is True:
        stmt = stmt.where(OpenTask.due_at < bindparam("now"))
    elif overdue is False:
        stmt = stmt.where(or_(OpenTask.due_at.is_(None), OpenTask.due_at >= bindparam("now")))
    if search:
        pattern = bindparam("pattern")
        stmt = stmt.where(
            or_(
                OpenTask.case_title.ilike(pattern, escape="\\"),
                OpenTask.name.ilike(pattern, escape="\\"),
                Instance.business_key.ilike(pattern, escape="\\"),
            )
        )
    columns = stmt.with_only_columns(*(OpenTask.__table__.c[name] for name in TASK_VIEW_COLUMNS))
    rows = columns.order_by(*_order(sort)).offset(bindparam("offset")).limit(bindparam("limit"))
    return rows, select(func.count()).select_from(stmt.subquery())


@lru_cache(maxsize=32)
def _open_and_overdue(pairs: int) -> Select[tuple[int, int]]:
    offered = _offered(pairs).with_only_columns(OpenTask.due_at).subquery()
    overdue = func.coalesce(
        func.sum(case((offered.c.due_at < bindparam("now", type_=OpenTask.due_at.type), 1), else_=0)), 0
    )
    return select(func.count(), overdue).select_from(offered)


def _order(sort: str) -> tuple[Any, ...]:
    # Ties end on the id so that paging never shows a row twice or skips one.
    due = (OpenTask.due_at.is_(None), OpenTask.due_at)
    if sort == "received":
        return (OpenTask.created_at.desc(), OpenTask.id)
    if sort == "urgency":
        rank = case({"特急": 0, "加急": 1}, value=OpenTask.urgency, else_=2)
        return (rank, *due, OpenTask.created_at, OpenTask.id)
    return (*due, OpenTask.created_at, OpenTask.id)


def _count(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def _check_paging(page: int, per_page: int) -> None:
    if not isinstance(page, int) or page < 1:
        raise InvalidInput(f"page {page!r} is not a positive integer", {"page": "页码必须是正整数"})
    if not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput(
            f"per_page {per_page!r} is not between 1 and {MAX_PER_PAGE}",
            {"per_page": f"每页条数须在 1 到 {MAX_PER_PAGE} 之间"},
        )


def _title(county_name: Any, process_name: Any) -> Any:
    # The title the store gives an open task, so a case reads the same in 待办, 已办 and 办结.
    return func.coalesce(county_name, "") + " · " + process_name


def _step_names(session: Session, process_id: str, content_hash: str, version_id: int) -> dict[str, str]:
    key = (process_id, content_hash)
    names = _STEP_NAMES.get(key)
    if names is None:
        dumped = session.scalar(select(ProcessVersion.spec).where(ProcessVersion.id == version_id)) or {}
        specs = [dumped.get("spec", {}), *dumped.get("subprocess_specs", {}).values()]
        names = {
            task["bpmn_id"]: task.get("bpmn_name") or task["bpmn_id"]
            for spec in specs
            for task in spec.get("task_specs", {}).values()
            if task.get("bpmn_id")
        }
        _STEP_NAMES[key] = names
    return names
