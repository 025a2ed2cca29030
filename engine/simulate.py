"""Drive many cases of a process through the real engine and report which BPMN elements they reached.

A designer's question before deploying is "can every path still run, and does every case end?".
``simulate`` answers it on a throwaway database: it starts cases as users who may start them, fills
each form with schema-valid data and random choices, sometimes returns (退回) a step, lets timers
fire by moving a FixedClock, and reports every case that got stuck or failed, and the flow nodes and
sequence flows no case ever reached. Same engine commands as production, so what runs here runs there.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from jsonschema.exceptions import ValidationError
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import AppEngine
from engine.access import SYSTEM, Actor, load_actor
from engine.clock import FixedClock, as_utc
from engine.coverage import InstanceResult, SimulationReport, catalog_elements, measure_coverage
from engine.db import read_session, write_session
from engine.demo import DEMO_COUNTIES
from engine.errors import Conflict, EngineError, InvalidInput, PermissionDenied
from engine.models import Instance, OpenTask, OrgUnit, ProcessVersion, RoleAssignment, User
from engine.orgs import CANDIDATE_KINDS, resolve_case_scope
from engine.roles import PROVINCE_CODE, ROLES
from engine.sample_data import sample_form_data
from engine.store import all_tasks

RETURN_REASON = "模拟退回：请补充完善（simulation）"


def simulate(
    engine: AppEngine,
    process_id: str,
    instances: int,
    seed: int,
    progress: Callable[[int], Any] | None = None,
    *,
    max_steps: int = 200,
    return_rate: float = 0.15,
    wait_rate: float = 0.25,
    max_visits: int = 3,
) -> SimulationReport:
    """Run ``instances`` cases of the newest deployed ``process_id`` on ``engine`` (a throwaway database).

    The engine needs a FixedClock, which the simulation moves forward. ``progress(1)`` is called after
    each case. Cases run one after another; the same seed gives the same paths. A step visited
    ``max_visits`` times stops taking random decisions, so return loops end; a case still running
    after ``max_steps`` actions is reported stuck.
    """
    if not isinstance(engine.clock, FixedClock):
        raise InvalidInput("simulation moves the clock: build the engine with a FixedClock")
    began = time.perf_counter()
    run = _Run(engine, random.Random(seed), max_steps, return_rate, wait_rate, max_visits)
    report = SimulationReport(process_id, 0, seed)
    with read_session(engine.sessions) as session:
        version = engine.store.latest_version(session, process_id)
        sources = session.get(ProcessVersion, version.id).sources
        run.prepare(session, version)
    report.version = version.version
    for index in range(instances):
        report.instances.append(run.case(index, process_id))
        if progress is not None:
            progress(1)
    report.node_coverage, report.flow_coverage = catalog_elements(sources, process_id)
    with read_session(engine.sessions) as session:
        ids = [r.instance_id for r in report.instances if r.instance_id]
        measure_coverage(engine.store, session, ids, report.node_coverage, report.flow_coverage)
    report.elapsed = time.perf_counter() - began
    return report


class _Run:
    def __init__(self, engine: AppEngine, rng: random.Random, max_steps: int, *rates: float) -> None:
        self.engine, self.rng, self.max_steps = engine, rng, max_steps
        self.return_rate, self.wait_rate, self.max_visits = rates
        self.actors: dict[tuple[str, str], Actor] = {}
        self.next_candidate = 0

    def prepare(self, session: Session, version: Any) -> None:
        self.version = version
        specs = [version.spec, *version.subprocess_specs.values()]
        self.props = {
            s.bpmn_id: s.extensions.get("properties", {})
            for spec in specs
            for s in spec.task_specs.values()
            if s.bpmn_id and hasattr(s, "extensions")
        }
        start = next((s for s in version.spec.task_specs.values() if isinstance(s, StartEvent) and s.lane), None)
        listed = start.extensions.get("properties", {}).get("startRoles", "") if start is not None else ""
        self.start_roles = [r.strip() for r in listed.split(",") if r.strip() in ROLES] or (
            [start.lane] if start is not None else []
        )
        # Demo counties first (their users exist), then every other candidate, in a stable order.
        others = session.scalars(select(OrgUnit.code).where(OrgUnit.kind.in_(CANDIDATE_KINDS)).order_by(OrgUnit.code))
        self.candidates = list(DEMO_COUNTIES) + [c for c in others if c not in DEMO_COUNTIES]

    # -- one case ---------------------------------------------------------------------------------

    def case(self, index: int, process_id: str) -> InstanceResult:
        result = InstanceResult(index, None, None, "failed")
        try:
            self.start(result, process_id)
            if result.instance_id is not None:
                self.drive(result)
        except EngineError as exc:
            details = "".join(f"; {k}: {v}" for k, v in exc.details.items()) if isinstance(exc.details, dict) else ""
            result.status, result.reason = "failed", f"[{exc.code}] {exc.message}{details}"
        return result

    def start(self, result: InstanceResult, process_id: str) -> None:
        schema = self.version.forms.get(f"{process_id}.start.json")
        for _attempt in range(len(self.candidates)):
            county = self.candidates[self.next_candidate % len(self.candidates)]
            self.next_candidate += 1
            result.county_code = county
            fixed = {"county_code": county} if not schema or "county_code" in schema.get("properties", {}) else {}
            data = self.fill(schema, f"{process_id}.start.json", True, {}, fixed) if schema else fixed
            actor = self.starter(county, data)
            try:
                with write_session(self.engine.sessions) as session:
                    result.instance_id = self.engine.start_instance(session, actor, process_id, data).id
                return
            except Conflict:
                continue  # a case of this county is still running (one per county)
        raise Conflict("every candidate county already has a running case")

    def starter(self, county: str, data: dict[str, Any]) -> Actor:
        if not self.start_roles:
            return SYSTEM  # no start lane: the engine lets anyone start
        with read_session(self.engine.sessions) as session:
            scope = resolve_case_scope(session, county)
            orgs = {
                "city": scope.city_code,
                "county": scope.county_code,
                "province": PROVINCE_CODE,
                "society": data.get("society_code"),
            }
            pairs = [(role, orgs.get(ROLES[role].scope)) for role in self.start_roles]
            pairs = [(r, o) for r, o in pairs if isinstance(o, str) and session.get(OrgUnit, o) is not None]
        if not pairs:
            raise PermissionDenied(f"no org unit can start a case for {county} as {', '.join(self.start_roles)}")
        return self.actor(*pairs[0])

    def drive(self, result: InstanceResult) -> None:
        visits: dict[str, int] = {}
        while result.steps < self.max_steps:
            with read_session(self.engine.sessions) as session:
                root = session.get(Instance, result.instance_id)
                if root.status != "running":
                    done = root.status == "completed"
                    result.status, result.outcome = ("completed" if done else "failed"), root.outcome
                    result.reason = None if done else f"the case ended as {root.status}"
                    return
                family = _family(session, root.id)
                timers = [as_utc(i.next_timer_at) for i in family if i.status == "running" and i.next_timer_at]
                tasks = session.scalars(select(OpenTask).where(OpenTask.instance_id.in_([i.id for i in family])))
                tasks = sorted(tasks, key=lambda t: (as_utc(t.created_at), t.bpmn_id, t.org_code))
            result.steps += 1
            if timers and (not tasks or self.rng.random() < self.wait_rate):
                self.fire(min(timers))  # let the deadline pass: boundary timers and escalations run
            elif tasks:
                task = self.rng.choice(tasks)
                visits[task.bpmn_id] = visits.get(task.bpmn_id, 0) + 1
                self.act(task, visits[task.bpmn_id] > self.max_visits)
            else:
                result.status, result.reason = "stuck", f"nothing is open and no timer is set; {self.waiting(root.id)}"
                return
        result.status, result.reason = "stuck", f"still running after {self.max_steps} steps"
        with read_session(self.engine.sessions) as session:
            rows = session.scalars(select(OpenTask.bpmn_id).where(OpenTask.instance_id == result.instance_id))
            result.reason += f"; open: {', '.join(sorted(rows)) or '-'}"

    def waiting(self, instance_id: uuid.UUID) -> str:
        """Where the case waits (message and signal catches, joins): what a designer needs to see."""
        with read_session(self.engine.sessions) as session:
            workflow = self.engine.store.load_copy(session, session.get(Instance, instance_id))
        steps = sorted({t.task_spec.bpmn_id for t in all_tasks(workflow) if t.state == TaskState.WAITING})
        return f"waiting at: {', '.join(s for s in steps if s) or '-'}"

    def fire(self, due: datetime) -> None:
        clock: FixedClock = self.engine.clock  # type: ignore[assignment]
        # SpiffWorkflow fires a timer only once its due time is strictly past.
        clock.set(max(clock.now(), due + timedelta(seconds=1)))
        with write_session(self.engine.sessions) as session:
            self.engine.fire_due_timers(session)

    def act(self, task: OpenTask, settled: bool) -> None:
        props = self.props.get(task.bpmn_id, {})
        actor = self.actor(task.role, task.org_code)
        if task.returnable and not settled and self.rng.random() < self.return_rate:
            with write_session(self.engine.sessions) as session:
                self.engine.return_task(session, actor, task.id, RETURN_REASON)
            return
        schema = self.version.forms.get(task.form or "")
        avoid = {props["returnField"]: props.get("returnValue")} if settled and props.get("returnField") else {}
        data = self.fill(schema, task.form, not settled, avoid=avoid) if schema else {}
        try:
            with write_session(self.engine.sessions) as session:
                self.engine.complete_task(session, actor, task.id, data)
        except InvalidInput:
            if not schema:
                raise
            # The random choices broke a rule the generator cannot see; the plain sample must pass.
            with write_session(self.engine.sessions) as session:
                self.engine.complete_task(session, actor, task.id, self.fill(schema, task.form, False, avoid=avoid))

    def fill(
        self, schema: dict[str, Any], form: str | None, randomize: bool, avoid: dict[str, Any], fixed: Any = None
    ) -> dict[str, Any]:
        """Schema-valid data: random choices for enums, booleans, bounded numbers and enum lists.

        ``avoid`` maps a field to a value not to choose (the 退回 value of a step visited too often);
        ``fixed`` maps fields to the values to use. InvalidInput if no valid data can be made.
        """
        required = set(schema.get("required", []))
        overrides: dict[str, Any] = {}
        for name, prop in schema.get("properties", {}).items():
            if name not in required or not isinstance(prop, dict) or "const" in prop:
                continue
            choice = _choose(self.rng, prop, avoid.get(name)) if randomize or name in avoid else None
            if choice is not None:
                overrides[name] = choice
        overrides.update(fixed or {})
        kept = {k: v for k, v in overrides.items() if k in avoid or k in (fixed or {})}
        try:
            try:
                return sample_form_data(schema, self.today(), **overrides)
            except ValidationError:
                # A random choice broke a rule the generator cannot see (if/then, dependencies).
                return sample_form_data(schema, self.today(), **kept)
        except (ValidationError, ValueError) as exc:
            problem = exc.message if isinstance(exc, ValidationError) else str(exc)
            raise InvalidInput(f"cannot generate valid data for form {form}: {problem}") from exc

    def actor(self, role: str, org_code: str) -> Actor:
        """A user holding (role, org): a demo user if there is one, else a simulation user made now."""
        if (role, org_code) in self.actors:
            return self.actors[(role, org_code)]
        # Its own transaction: the user must exist even if the command it is made for is rolled back.
        with write_session(self.engine.sessions) as session:
            username = session.scalar(
                select(User.username)
                .join(RoleAssignment)
                .where(RoleAssignment.role == role, RoleAssignment.org_code == org_code, User.active.is_(True))
                .order_by(User.username)
                .limit(1)
            )
            if username is None:
                if session.get(OrgUnit, org_code) is None:
                    raise InvalidInput(f"a task is offered to {role} of org {org_code!r}, which does not exist")
                username = f"sim_{role}_{org_code}".lower()[:64]
                # "!" is no scrypt hash, so nobody can log in as a simulation user.
                title = f"模拟 {ROLES[role].title} {org_code}"
                user = User(username=username, display_name=title, password_hash="!", created_at=self.engine.now())
                user.roles.append(RoleAssignment(role=role, org_code=org_code))
                session.add(user)
                session.flush()
            self.actors[(role, org_code)] = load_actor(session, username)
        return self.actors[(role, org_code)]

    def today(self) -> date:
        return self.engine.now().date()


def _choose(rng: random.Random, prop: dict[str, Any], avoid: Any) -> Any:
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        allowed = [v for v in prop["enum"] if v != avoid] or prop["enum"]
        return rng.choice(allowed)
    kind = prop.get("type")
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "integer" and isinstance(prop.get("minimum"), int) and isinstance(prop.get("maximum"), int):
        return rng.randint(prop["minimum"], prop["maximum"]) if "multipleOf" not in prop else None
    items = prop.get("items") if kind == "array" else None
    if isinstance(items, dict) and isinstance(items.get("enum"), list) and items["enum"]:
        low = max(prop.get("minItems", 1), 1)
        high = min(prop.get("maxItems", len(items["enum"])), len(items["enum"]))
        return rng.sample(items["enum"], rng.randint(low, high)) if low <= high else None
    return None


def _family(session: Session, root_id: uuid.UUID) -> list[Instance]:
    """The case and the cases it started (a parent may wait for its children)."""
    family = [session.get(Instance, root_id)]
    frontier = [root_id]
    while frontier:
        children = list(session.scalars(select(Instance).where(Instance.parent_id.in_(frontier))))
        family.extend(children)
        frontier = [c.id for c in children]
    return family


__all__ = ["InstanceResult", "SimulationReport", "simulate"]
