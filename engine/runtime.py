"""The engine façade: deploy processes, run commands on cases, answer inbox queries.

Every command runs in the caller's transaction and follows one path: load the case, check the
actor may do it, validate the submitted data, run the workflow, save with the revision check, append
history. Any exception leaves the database as it was, because the caller rolls back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.access import SYSTEM, Actor, check_may_act, check_may_read
from engine.batches import batch_for_new_case
from engine.case_rows import CaseRow, select_case_of_task, write_case_row
from engine.clock import Clock, FixedClock, install_timer_clock
from engine.errors import (
    CASE_CHANGED,
    Conflict,
    EngineError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SpecInvalid,
    TaskNotReady,
    WorkflowFailed,
)
from engine.execution import complete_user_task, ready_index, run_until_waiting
from engine.flush_queue import write_queued
from engine.forms import validate_form_data
from engine.history import append_event
from engine.models import HistoryEvent, Instance, OpenTask, ProcessVersion
from engine.orgs import resolve_case_scope
from engine.programme import ONE_RUNNING_CASE_PER_COUNTY, SERVICES, ServiceContext, script_helpers
from engine.roles import ROLES
from engine.scripting import ScriptEngine
from engine.serializer import StateSerializer
from engine.settings import Settings
from engine.specs import Finding, ProcessBundle, load_definitions
from engine.store import (
    LoadedVersion,
    WorkflowStore,
    ready_user_tasks,
    select_open_rows,
    select_tasks_in,
    task_properties,
)
from engine.termination import terminate_instance
from engine.timers import coalesce_missed_cycles
from engine.views import InstanceView, TaskDetail, TaskView, jsonable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _TaskAction:
    """What a command on one open task works with, loaded and checked."""

    row: Any  # the task's open-task row
    open_rows: list[Any]  # every open-task row of its case
    instance: CaseRow
    version: LoadedVersion
    workflow: Any
    task: Any


@dataclass(frozen=True)
class DeployResult:
    process_id: str
    version: int
    created: bool
    content_hash: str


class Engine:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        install_timer_clock()
        self.settings = settings
        self.clock = clock or (FixedClock(settings.fixed_now) if settings.fixed_now else Clock())
        self.store = WorkflowStore(StateSerializer())

    def now(self) -> datetime:
        return self.clock.now()

    # -- definitions ---------------------------------------------------------------------------

    def check_definitions(self, paths: Iterable[Path] | None = None) -> tuple[list[ProcessBundle], list[Finding]]:
        if paths is None:
            folder = self.settings.processes_dir
            paths = [*folder.glob("*.bpmn"), *folder.glob("*.dmn")]
        return load_definitions(paths, self.settings.forms_dir, SERVICES)

    def deploy(self, session: Session, deployed_by: str = "system") -> list[DeployResult]:
        """Store a new version of each process whose content changed; refuse if anything is invalid."""
        bundles, findings = self.check_definitions()
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            raise SpecInvalid(f"{len(errors)} problem(s) in the process definitions", errors)
        results = []
        for bundle in bundles:
            rows = session.scalars(select(ProcessVersion).where(ProcessVersion.process_id == bundle.process_id)).all()
            same = next((r for r in rows if r.content_hash == bundle.content_hash), None)
            if same:
                results.append(DeployResult(bundle.process_id, same.version, False, same.content_hash))
                continue
            version = max((r.version for r in rows), default=0) + 1
            session.add(
                ProcessVersion(
                    process_id=bundle.process_id,
                    name=bundle.name,
                    version=version,
                    content_hash=bundle.content_hash,
                    sources=bundle.sources,
                    forms=bundle.forms,
                    spec=self.store.serializer.dump_spec(bundle.spec, bundle.subprocess_specs),
                    deployed_at=self.now(),
                    deployed_by=deployed_by,
                )
            )
            results.append(DeployResult(bundle.process_id, version, True, bundle.content_hash))
        session.flush()
        return results

    # -- commands ------------------------------------------------------------------------------

    def start_instance(
        self, session: Session, actor: Actor, process_id: str, data: dict[str, Any], parent: Instance | None = None
    ) -> InstanceView:
        """Start a case. ``parent`` is set when a process starts another (the system is the actor)."""
        version = self.store.latest_version(session, process_id)
        start_form = version.forms.get(f"{process_id}.start.json")
        data = validate_form_data(start_form, data) if start_form else dict(data)
        scope = resolve_case_scope(session, data.get("county_code"))
        starter = self._starter_assignment(version, actor, scope, data, parent)
        batch = batch_for_new_case(session, process_id, self.now().date())
        if process_id in ONE_RUNNING_CASE_PER_COUNTY:
            running = session.connection().execute(
                _RUNNING_CASE, {"process_id": process_id, "county_code": scope.county_code}
            ).scalar()
            if running:
                raise Conflict(f"a running {process_id} case already exists for {scope.county_code}: {running}")

        now = self.now()
        instance_id = uuid.uuid4()
        instance = Instance(
            id=instance_id,
            process_version_id=version.id,
            process_id=process_id,
            business_key=f"{process_id}/{scope.county_code}/{now:%Y%m%d}-{instance_id.hex[:6]}",
            city_code=scope.city_code,
            county_code=scope.county_code,
            society_code=data.get("society_code") if isinstance(data.get("society_code"), str) else None,
            parent_id=parent.id if parent is not None else None,
            batch_id=batch.id if batch is not None else None,
            status="running",
            revision=1,
            state="",
            serializer_version="",
            started_by=actor.username,
            created_at=now,
            updated_at=now,
            event_count=0,
        )
        session.add(instance)
        workflow = self.store.new_workflow(version)
        workflow.task_tree.data.update({**data, **scope.as_data()})
        if parent is not None:
            workflow.task_tree.data["parent_case"] = str(parent.id)
        if batch is not None:
            workflow.task_tree.data.update({"batch_id": batch.id, "batch_name": batch.name})
        progress, open_tasks = self._advance(session, instance, workflow, lambda: None, [], actor.username)
        append_event(
            session,
            instance,
            at=now,
            actor=actor.username,
            role=starter[0] if starter else None,
            org_code=starter[1] if starter else None,
            command="start",
            payload={
                "data": data,
                "scope": scope.as_data(),
                "version": version.version,
                **({"batch": {"batch_id": batch.id, "batch_name": batch.name}} if batch is not None else {}),
                **({"parent_case": str(parent.id)} if parent is not None else {}),
                **progress,
            },
        )
        self.flush_command(session)
        self.store.keep_after_commit(session, instance, workflow)
        return self._view(session, instance, workflow, open_tasks)

    def _starter_assignment(self, version, actor, scope, data, parent) -> tuple[str, str] | None:  # noqa: ANN001
        """The (role, org) the actor starts the case as; PermissionDenied if it holds none."""
        if parent is not None and actor is SYSTEM:
            return None
        start = next((s for s in version.spec.task_specs.values() if isinstance(s, StartEvent) and s.lane), None)
        if start is None:
            return None
        listed = start.extensions.get("properties", {}).get("startRoles", "") if hasattr(start, "extensions") else ""
        roles = [r.strip() for r in listed.split(",") if r.strip()] or [start.lane]
        for role in roles:
            org = data.get("society_code") if ROLES[role].scope == "society" else _scope_code(role, scope)
            if isinstance(org, str) and actor.holds(role, org):
                return role, org
        raise PermissionDenied(f"{actor.username} may not start {version.process_id} for {scope.county_code}")

    def claim_task(self, session: Session, actor: Actor, task_id: uuid.UUID) -> TaskView:
        """签收: the task is then the actor's alone until completed or given back."""
        row = self.find_open_task(session, task_id)
        check_may_act(actor, row)
        return self._set_claim(session, actor, row, actor.username, "claim")

    def unclaim_task(self, session: Session, actor: Actor, task_id: uuid.UUID) -> TaskView:
        row = self.find_open_task(session, task_id)
        if row.claimed_by != actor.username:
            raise PermissionDenied(f"task {task_id} is not claimed by {actor.username}")
        return self._set_claim(session, actor, row, None, "unclaim")

    def _set_claim(self, session: Session, actor: Actor, row: OpenTask, claimer: str | None, command: str) -> TaskView:
        instance = session.get(Instance, row.instance_id)
        row.claimed_by = claimer
        self._touch(instance)  # a claim changes the case's revision, so a concurrent claim loses cleanly
        append_event(
            session,
            instance,
            at=self.now(),
            actor=actor.username,
            role=row.role,
            org_code=row.org_code,
            command=command,
            task_id=row.id,
            bpmn_id=row.bpmn_id,
            payload={},
        )
        self.flush_command(session)
        return TaskView.of(row)

    def complete_task(self, session: Session, actor: Actor, task_id: uuid.UUID, data: dict[str, Any]) -> InstanceView:
        action = self._load_for_action(session, actor, task_id)
        row, forms = action.row, action.version.forms
        data = validate_form_data(forms[row.form], data) if row.form in forms else data
        return self._run_task(session, actor, action, data, "complete", {"data": data})

    def return_task(self, session: Session, actor: Actor, task_id: uuid.UUID, reason: str) -> InstanceView:
        action = self._load_for_action(session, actor, task_id)
        props = task_properties(action.task)
        if not props.get("returnField"):
            raise TaskNotReady(f"step {action.row.bpmn_id} cannot be returned")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("a reason is required to return a task", {"return_reason": "退回须填写理由"})
        data = {props["returnField"]: props["returnValue"], "return_reason": reason.strip()}
        return self._run_task(session, actor, action, data, "return", {"reason": reason.strip()})

    def terminate_instance(self, session: Session, actor: Actor, instance_id: uuid.UUID, reason: str) -> InstanceView:
        """终止: end a running case early (省科协 or admin), with its child cases; see engine/termination.py."""
        return self._view(session, *terminate_instance(self, session, actor, instance_id, reason))

    def fire_due_timers(self, session: Session, limit: int | None = None) -> list[uuid.UUID]:
        """Fire every timer due by now; return the cases that moved."""
        now = self.now()
        query = (
            select(Instance)
            .where(Instance.status == "running", Instance.next_timer_at <= now)
            .order_by(Instance.next_timer_at)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        fired = []
        for instance in session.scalars(query).all():
            # Each case in its own savepoint: a case changed concurrently, or one whose timer path
            # fails, must not hold back the other cases' timers.
            try:
                with session.begin_nested():
                    workflow = self.store.load(session, instance)
                    progress, _open_tasks = self._advance(session, instance, workflow, lambda: None)
                    append_event(session, instance, at=now, actor=SYSTEM.username, command="timer", payload=progress)
                    self.flush_command(session)
            except (Conflict, WorkflowFailed) as exc:
                log.warning("timers of case %s not fired this pass: %s", instance.id, exc.message)
                continue
            self.store.keep_after_commit(session, instance, workflow)
            fired.append(instance.id)
        return fired

    # -- queries -------------------------------------------------------------------------------

    def list_tasks(self, session: Session, actor: Actor, process: str | None = None) -> list[TaskView]:
        pairs = actor.lane_assignments()
        if not pairs:
            return []
        tasks = select_tasks_in(session, pairs, process)
        return [t for t in tasks if t.claimed_by in (None, actor.username)]

    def get_task(self, session: Session, actor: Actor, task_id: uuid.UUID) -> TaskDetail:
        row = self.find_open_task(session, task_id)
        if not actor.holds(row.role, row.org_code) and not actor.has_role("auditor"):
            raise NotFound(f"task {task_id} not found")
        instance = session.get(Instance, row.instance_id)
        version = self.store.version(session, instance.process_version_id)
        with self.store.reading(session, instance, [row.id]) as workflow:
            task = workflow.get_task_from_id(row.id)
            instructions = task.task_spec.extensions.get("instructionsForEndUser") or ""
            return TaskDetail(
                TaskView.of(row),
                version.forms.get(row.form or "", {}),
                _fill(instructions, task.data),
                jsonable(task.data),
            )

    def task_form(self, session: Session, task_id: uuid.UUID, actor: Actor | None = None) -> dict[str, Any]:
        """The JSON Schema of a task's form (checked against ``actor`` when one is given)."""
        if actor is not None:
            return self.get_task(session, actor, task_id).schema
        row = self.find_open_task(session, task_id)
        instance = session.get(Instance, row.instance_id)
        return self.store.version(session, instance.process_version_id).forms.get(row.form or "", {})

    def get_instance(self, session: Session, actor: Actor, instance_id: uuid.UUID) -> InstanceView:
        instance = session.get(Instance, instance_id)
        if instance is None:
            raise NotFound(f"instance {instance_id} not found")
        check_may_read(session, actor, instance)
        with self.store.reading(session, instance) as workflow:
            return self._view(session, instance, workflow)

    def history(self, session: Session, actor: Actor, instance_id: uuid.UUID) -> list[HistoryEvent]:
        instance = session.get(Instance, instance_id)
        if instance is None:
            raise NotFound(f"instance {instance_id} not found")
        check_may_read(session, actor, instance)
        return list(session.scalars(_HISTORY_OF_CASE, {"case_id": instance_id}))

    # -- internals -----------------------------------------------------------------------------

    def find_open_task(self, session: Session, task_id: uuid.UUID) -> OpenTask:
        """The open task, or Conflict if someone already completed it, or NotFound."""
        row = session.get(OpenTask, task_id)
        if row is not None:
            return row
        raise self._not_open(session, task_id)

    def _not_open(self, session: Session, task_id: uuid.UUID) -> EngineError:
        """Conflict if someone already completed the task, else NotFound."""
        done = session.scalar(
            select(HistoryEvent)
            .where(HistoryEvent.task_id == task_id, HistoryEvent.command.in_(("complete", "return")))
            .limit(1)
        )
        if done is not None:
            return Conflict(f"task {task_id} was already completed by {done.actor}")
        return NotFound(f"task {task_id} not found")

    def warm_case_of_task(self, session: Session, actor: Actor, task_id: uuid.UUID) -> None:
        """Load the workflow of open task ``task_id``'s case into the live cache, in a read transaction.

        Called before ``actor``'s command on the task, so that deserializing the case is not done while
        the command holds the writer's lock. The command uses it only if the case has not changed in
        between. Nothing is loaded for an actor who may not act on the task: the command refuses them.
        """
        if self.store.is_live_task(task_id):
            return
        instance, open_rows = select_case_of_task(session, task_id)
        row = next((r for r in open_rows if r.id == task_id), None)
        if instance is None or row is None or not actor.holds(row.role, row.org_code):
            return
        workflow = self.store.load(session, instance)
        self.store.keep_loaded(instance, workflow, [r.id for r in open_rows])

    def _load_for_action(self, session: Session, actor: Actor, task_id: uuid.UUID) -> _TaskAction:
        # The case with all its open rows (the task's among them) in one statement: saving the case needs them all.
        instance, open_rows = select_case_of_task(session, task_id, with_state=not self.store.is_live_task(task_id))
        row = next((r for r in open_rows if r.id == task_id), None)
        if instance is None or row is None:
            raise self._not_open(session, task_id)
        check_may_act(actor, row)
        version = self.store.version(session, instance.process_version_id)
        workflow = self.store.load(session, instance)
        task = workflow.get_task_from_id(row.id)
        if task.state & TaskState.FINISHED_MASK:
            # The task row was read before a concurrent command committed; the case already moved on.
            raise Conflict(f"task {task_id} was completed by someone else at the same time")
        if task.state != TaskState.READY:
            raise TaskNotReady(f"task {task_id} is {TaskState.get_name(task.state)}")
        return _TaskAction(row, open_rows, instance, version, workflow, task)

    def _run_task(self, session, actor, action, data, command, payload) -> InstanceView:  # noqa: ANN001
        row, instance, workflow, task = action.row, action.instance, action.workflow, action.task
        index = ready_index(workflow, task.id)
        progress, open_tasks = self._advance(
            session, instance, workflow, lambda: complete_user_task(task, data), action.open_rows, actor.username
        )
        append_event(
            session,
            instance,
            at=self.now(),
            actor=actor.username,
            role=row.role,
            org_code=row.org_code,
            command=command,
            task_id=row.id,
            bpmn_id=row.bpmn_id,
            payload={**payload, "ready_index": index, **progress},
        )
        self.flush_command(session, instance)
        self.store.keep_after_commit(session, instance, workflow)
        return self._view(session, instance, workflow, open_tasks)

    def _advance(
        self,
        session: Session,
        instance: Instance | CaseRow,
        workflow: Any,
        action: Callable[[], object],
        open_rows: list[Any] | None = None,
        actor: str = SYSTEM.username,
    ) -> tuple[dict[str, Any], list[Any]]:
        """Run ``action`` and the engine until the case waits, then save it.

        Returns what the history records of it — the steps completed and the service calls made (with
        their results, so a replay can reproduce them without side effects) — and the case's open tasks.
        """
        now = self.now()
        context = ServiceContext(session, now, instance, self)
        script_engine = ScriptEngine(
            helpers=script_helpers(now),
            services={name: _recorded(name, fn, context) for name, fn in SERVICES.items()},
        )
        completed = run_until_waiting(workflow, self.clock, script_engine, action)
        coalesce_missed_cycles(workflow, now)
        open_tasks = self.store.save(session, instance, workflow, now, open_rows, actor)
        progress = {"completed": completed, "services": context.calls} if context.calls else {"completed": completed}
        return progress, open_tasks

    def _touch(self, instance: Instance) -> None:
        instance.updated_at = self.now()

    def flush_command(self, session: Session, case: CaseRow | None = None) -> None:
        """Write a command's changes now (``case`` first, when the command read its case as a plain row),
        turning a lost race into Conflict."""
        try:
            if case is not None:
                write_case_row(session, case)
            session.flush()
            write_queued(session)
        except StaleDataError as exc:
            raise Conflict(CASE_CHANGED) from exc
        except IntegrityError as exc:
            raise Conflict("the change conflicts with a concurrent change; reload and try again") from exc
        except OperationalError as exc:
            # SQLite refuses to write from a snapshot another writer has overtaken; PostgreSQL may
            # pick this transaction as a deadlock or serialization victim. Both are lost races.
            lost_race = "locked" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")
            if not lost_race:
                raise
            raise Conflict(CASE_CHANGED) from exc

    def _view(self, session: Session, instance: Instance | CaseRow, workflow, open_rows=None) -> InstanceView:  # noqa: ANN001
        """The case as a command leaves it (``open_rows`` as it saved them) or as it is stored."""
        version = self.store.version(session, instance.process_version_id)
        if open_rows is None:
            open_rows = select_open_rows(session, instance.id)
        if workflow.is_completed():
            data = workflow.data
        else:
            ready = ready_user_tasks(workflow)
            data = {**workflow.task_tree.data, **(ready[-1].data if ready else _latest_data(workflow))}
        return InstanceView(
            instance.id,
            instance.process_id,
            version.version,
            instance.business_key,
            instance.status,
            instance.outcome,
            instance.county_code,
            instance.city_code,
            instance.revision,
            instance.created_at,
            instance.completed_at,
            instance.next_timer_at,
            [TaskView.of(r) for r in open_rows],
            jsonable(data),
        )


_HISTORY_OF_CASE = (
    select(HistoryEvent).where(HistoryEvent.instance_id == bindparam("case_id")).order_by(HistoryEvent.seq)
)
_RUNNING_CASE = select(Instance.id).where(
    Instance.process_id == bindparam("process_id"),
    Instance.county_code == bindparam("county_code"),
    Instance.status == "running",
)


def _scope_code(role: str, scope) -> str:  # noqa: ANN001
    kind = ROLES[role].scope
    return {"city": scope.city_code, "county": scope.county_code}.get(kind, "210000")


def _recorded(name: str, fn, context: ServiceContext):  # noqa: ANN001, ANN202
    def call(task_data: dict[str, Any], **params: Any) -> Any:
        result = fn(context, task_data, **params)
        context.calls.append({"operation": name, "params": jsonable(params), "result": jsonable(result)})
        return result

    return call


def _latest_data(workflow) -> dict[str, Any]:  # noqa: ANN001
    finished = [t for t in workflow.tasks.values() if t.state == TaskState.COMPLETED]
    return max(finished, key=lambda t: t.last_state_change).data if finished else {}


def _fill(template: str, data: dict[str, Any]) -> str:
    for key, value in data.items():
        if isinstance(value, str | int | float):
            template = template.replace("{{ " + key + " }}", str(value)).replace("{{" + key + "}}", str(value))
    return template


__all__ = ["Engine", "InstanceView", "TaskDetail", "TaskView", "DeployResult", "LoadedVersion"]
