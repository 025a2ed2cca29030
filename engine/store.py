"""Load and save workflow state in the caller's session; keep the open-task index in step.

Specs are deserialized once per process version and cached in memory: they are immutable.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.defaults import EndEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Delete, Select, bindparam, delete, event, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from engine.access import SYSTEM, scope_org_for
from engine.bound_lists import in_list, list_values, matches_pairs, pair_values
from engine.case_rows import CaseRow, OpenTaskRow, case_state
from engine.clock import parse_instant
from engine.durations import add_duration
from engine.errors import NotFound
from engine.flush_queue import write_at_flush
from engine.models import Instance, OpenTask, ProcessVersion
from engine.roles import LANE_ROLES
from engine.serializer import StateSerializer
from engine.task_notifications import notify_opened_tasks
from engine.views import TASK_VIEW_COLUMNS, TaskView
from engine.workflow import LiveWorkflow, task_properties

URGENCIES = ("平件", "加急", "特急")
_PENDING_KEY = "demozone_pending_workflows"
OPEN_TASKS_ATTRIBUTE = "_demozone_open_task_ids"  # set by save: the ids of the open tasks it left
TIMER_EVENT_TYPES = {"TimeDateEventDefinition", "DurationTimerEventDefinition", "CycleTimerEventDefinition"}


@dataclass(frozen=True)
class LoadedVersion:
    id: int
    process_id: str
    name: str
    version: int
    spec: Any
    subprocess_specs: dict[str, Any]
    forms: dict[str, Any]


def all_tasks(workflow: BpmnWorkflow) -> list[Any]:
    """Every task of the workflow and its subprocesses.

    A plain scan of the task dicts: SpiffWorkflow's tree iterator is slower, prunes by state, and
    stops at depth 1000.
    """
    tasks = list(workflow.tasks.values())
    for subprocess in workflow.subprocesses.values():
        tasks.extend(subprocess.tasks.values())
    return tasks


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Any]:
    return [t for t in all_tasks(workflow) if t._state == TaskState.READY and t.task_spec.manual]


# The open-task rows of a case, oldest first; built once, so SQLAlchemy reuses its compiled form.
_OPEN_ROWS_OF_CASE = (
    select(*OpenTask.__table__.c)
    .where(OpenTask.__table__.c.instance_id == bindparam("case_id"))
    .order_by(OpenTask.__table__.c.created_at)
)


@lru_cache(maxsize=16)
def _delete_open_rows(count: int) -> Delete:
    return delete(OpenTask.__table__).where(in_list(OpenTask.__table__.c.id, count, "task_id"))


_INSERT_OPEN_ROW = insert(OpenTask.__table__)


@lru_cache(maxsize=32)
def _tasks_in_pairs(pairs: int, of_process: bool) -> Select:
    """The open tasks of ``pairs`` bound (role, org) pairs, soonest due first, optionally of one process."""
    table = OpenTask.__table__
    rows = select(*(table.c[name] for name in TASK_VIEW_COLUMNS)).where(
        matches_pairs(table.c.role, table.c.org_code, pairs)
    )
    if of_process:
        rows = rows.where(table.c.process_id == bindparam("process"))
    return rows.order_by(table.c.due_at.is_(None), table.c.due_at, table.c.created_at)


def select_tasks_in(session: Session, pairs: list[tuple[str, str]], process: str | None = None) -> list[TaskView]:
    """The open tasks offered to ``pairs`` of (role, org code), soonest due first, optionally of one process."""
    if not pairs:
        return []
    params = pair_values(pairs)
    if process:
        params["process"] = process
    rows = session.connection().execute(_tasks_in_pairs(len(pairs), bool(process)), params)
    return [TaskView.from_columns(row) for row in rows]


_LATEST_VERSION = (
    select(ProcessVersion.id)
    .where(ProcessVersion.process_id == bindparam("process_id"))
    .order_by(ProcessVersion.version.desc())
    .limit(1)
)


def select_open_rows(session: Session, instance_id: uuid.UUID) -> list[Any]:
    """The open-task rows of a case, oldest first, as plain rows (a command reads them, never edits them)."""
    return list(session.connection().execute(_OPEN_ROWS_OF_CASE, {"case_id": instance_id}))


class WorkflowStore:
    """Loads and saves workflows; keeps recently committed ones alive to skip deserializing them.

    A live workflow is reused only when the row's revision is the one this process committed, so a
    change made by any other process or thread is never hidden. A workflow taken for a command
    leaves the cache, and comes back only when that command's transaction commits.
    """

    LIVE_CACHE_SIZE = 512

    def __init__(self, serializer: StateSerializer) -> None:
        self.serializer = serializer
        self._versions: dict[int, LoadedVersion] = {}
        self._live: OrderedDict[uuid.UUID, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._live_tasks: dict[uuid.UUID, uuid.UUID] = {}  # open task -> its case, for the cases kept live
        self._lock = threading.Lock()

    def version(self, session: Session, version_id: int) -> LoadedVersion:
        loaded = self._versions.get(version_id)
        if loaded is None:
            row = session.get(ProcessVersion, version_id)
            if row is None:
                raise NotFound(f"process version {version_id} not found")
            spec, subprocess_specs = self.serializer.load_spec(row.spec)
            loaded = LoadedVersion(row.id, row.process_id, row.name, row.version, spec, subprocess_specs, row.forms)
            self._versions[version_id] = loaded
        return loaded

    def latest_version(self, session: Session, process_id: str) -> LoadedVersion:
        version_id = session.connection().execute(_LATEST_VERSION, {"process_id": process_id}).scalar()
        if version_id is None:
            raise NotFound(f"process {process_id!r} is not deployed")
        return self.version(session, version_id)

    def new_workflow(self, version: LoadedVersion) -> BpmnWorkflow:
        return LiveWorkflow(version.spec, version.subprocess_specs)

    def load(self, session: Session, instance: Instance | CaseRow) -> BpmnWorkflow:
        """The workflow of ``instance`` for a command, taken out of the live cache when it is there."""
        with self._lock:
            live = self._live.pop(instance.id, None)
        if live is not None and live[0] == instance.revision:
            return live[1]
        version = self.version(session, instance.process_version_id)
        return self.serializer.load_state(case_state(session, instance), version.spec, version.subprocess_specs)

    def load_copy(self, session: Session, instance: Instance) -> BpmnWorkflow:
        """A private deserialized copy, for a caller that may change it."""
        version = self.version(session, instance.process_version_id)
        return self.serializer.load_state(instance.state, version.spec, version.subprocess_specs)

    @contextmanager
    def reading(
        self, session: Session, instance: Instance, open_task_ids: Iterable[uuid.UUID] = ()
    ) -> Iterator[BpmnWorkflow]:
        """The workflow of ``instance`` as read, to be read (never changed) inside the ``with``.

        The live one is taken out of the cache while it is read (a live workflow is never shared by two
        threads), else the state is deserialized; either way it is kept live afterwards, so the command
        that usually follows (a task page, then its 提交) finds it. ``open_task_ids``, the case's open
        tasks the caller knows of, feed the ``is_live_task`` hint.
        """
        with self._lock:
            live = self._live.get(instance.id)
            taken = live is not None and live[0] == instance.revision
            if taken:
                del self._live[instance.id]
        workflow = live[1] if taken else self.load_copy(session, instance)
        yield workflow
        if taken:
            self._keep({instance.id: (instance, workflow)})
        else:
            self.keep_loaded(instance, workflow, list(open_task_ids))

    def keep_after_commit(self, session: Session, instance: Instance | CaseRow, workflow: BpmnWorkflow) -> None:
        """Keep ``workflow`` live once the session commits (call after a command fully succeeded)."""
        _store, pending = session.info.setdefault(_PENDING_KEY, (self, {}))
        pending[instance.id] = (instance, workflow)

    def keep_loaded(self, instance: Instance | CaseRow, workflow: BpmnWorkflow, open_task_ids: list[uuid.UUID]) -> None:
        """Keep ``workflow``, just loaded from ``instance`` as committed, live now."""
        setattr(workflow, OPEN_TASKS_ATTRIBUTE, open_task_ids)
        self._keep({instance.id: (instance, workflow)})

    def _keep(self, pending: dict[uuid.UUID, tuple[Instance | CaseRow, BpmnWorkflow]]) -> None:
        """Keep each workflow live, unless one of a later revision is kept already (a read that ended
        after a command in another thread had kept that command's workflow)."""
        with self._lock:
            if len(self._live_tasks) > 8 * self.LIVE_CACHE_SIZE:
                self._live_tasks.clear()
            for instance_id, (instance, workflow) in pending.items():
                kept = self._live.get(instance_id)
                if kept is not None and kept[0] > instance.revision:
                    continue
                self._live[instance_id] = (instance.revision, workflow)
                self._live.move_to_end(instance_id)
                self._live_tasks.update(dict.fromkeys(getattr(workflow, OPEN_TASKS_ATTRIBUTE, ()), instance_id))
            while len(self._live) > self.LIVE_CACHE_SIZE:
                self._live.popitem(last=False)

    def is_live_task(self, task_id: uuid.UUID) -> bool:
        """Whether the case of open task ``task_id`` is probably live here (a hint: it can leave at any time)."""
        return self._live_tasks.get(task_id) in self._live

    def save(
        self,
        session: Session,
        instance: Instance | CaseRow,
        workflow: BpmnWorkflow,
        now: datetime,
        open_rows: list[Any] | None = None,
        actor: str = SYSTEM.username,
    ) -> list[Any]:
        """Write the state, status, next timer and open tasks of ``instance`` (no commit).

        ``open_rows`` are the case's open-task rows as the command read them (else they are read here);
        ``actor`` is who ran the command (not notified of the tasks it opens).
        Returns the case's open tasks after the command, oldest first: the rows kept and the rows added.
        """
        instance.state = self.serializer.dump_state(workflow)
        instance.serializer_version = self.serializer.version
        instance.updated_at = now
        instance.next_timer_at = _next_timer(workflow)
        if workflow.is_completed():
            instance.status = "completed"
            instance.completed_at = now
            instance.outcome = _outcome(workflow)
            instance.result = _plain(workflow.data)
            instance.next_timer_at = None
        if open_rows is None:
            open_rows = select_open_rows(session, instance.id)
        open_tasks = self._sync_open_tasks(session, instance, workflow, now, open_rows, actor)
        setattr(workflow, OPEN_TASKS_ATTRIBUTE, [row.id for row in open_tasks])
        return open_tasks

    def _sync_open_tasks(
        self,
        session: Session,
        instance: Instance | CaseRow,
        workflow: BpmnWorkflow,
        now: datetime,
        open_rows: list[Any],
        actor: str,
    ) -> list[Any]:
        existing = {row.id: row for row in open_rows}
        ready = {t.id: t for t in ready_user_tasks(workflow)} if instance.status == "running" else {}
        closed = [task_id for task_id in existing if task_id not in ready]
        if closed:
            # One statement for all, straight to the table (the rows were read as plain rows); a row object
            # some earlier step of the transaction loaded must not outlive its row.
            session.connection().execute(_delete_open_rows(len(closed)), list_values("task_id", closed))
            for task_id in closed:
                loaded = session.identity_map.get(identity_key(OpenTask, task_id))
                if loaded is not None:
                    session.expunge(loaded)
        kept = [row for row in open_rows if row.id in ready]
        added = []
        version = self.version(session, instance.process_version_id)
        case_data = workflow.task_tree.data if workflow.task_tree else {}
        for task_id, task in ready.items():
            if task_id in existing:
                continue
            props = task_properties(task)
            urgency = (
                task.data.get("urgency") if task.data.get("urgency") in URGENCIES else props.get("urgency", "平件")
            )
            role = _task_role(task, props)
            row = OpenTaskRow(
                id=task_id,
                instance_id=instance.id,
                process_id=instance.process_id,
                bpmn_id=task.task_spec.bpmn_id,
                name=task.task_spec.bpmn_name or task.task_spec.bpmn_id,
                role=role,
                org_code=scope_org_for(role, instance, task.data),
                form=props.get("formJsonSchemaFilename"),
                returnable=bool(props.get("returnField")),
                urgency=urgency,
                created_at=now,
                due_at=add_duration(now, props["dueIn"]) if props.get("dueIn") else None,
                claimed_by=None,
                case_title=f"{case_data.get('county_name') or task.data.get('county_name', '')} · {version.name}",
            )
            write_at_flush(session, _INSERT_OPEN_ROW, row._asdict())
            added.append(row)
        notify_opened_tasks(session, instance, workflow, opened=added, closed=closed, now=now, actor=actor)
        return kept + added


def _task_role(task: Any, props: dict[str, str]) -> str:
    """The lane's role, unless the task names a data variable that chooses a (valid) role."""
    chosen = task.data.get(props["roleVariable"]) if props.get("roleVariable") else None
    return chosen if chosen in LANE_ROLES else task.task_spec.lane


def _plain(value: Any) -> Any:
    """JSON-ready copy of workflow data (dates as ISO strings, no callables)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


# Listened to on the Session class, once: listening on each command's session cost more than the lookup.
@event.listens_for(Session, "after_commit")
def _keep_committed(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending is not None:
        store, workflows = pending
        store._keep(workflows)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def _next_timer(workflow: BpmnWorkflow) -> datetime | None:
    due = []
    for pending in workflow.waiting_events():
        if pending.event_type not in TIMER_EVENT_TYPES:
            continue
        value = pending.value
        if isinstance(value, dict):
            value = value.get("next") or value.get("start")
        if isinstance(value, str):
            due.append(parse_instant(value))
    return min(due) if due else None


def _outcome(workflow: BpmnWorkflow) -> str | None:
    ends = [t for t in workflow.tasks.values() if t.state == TaskState.COMPLETED and isinstance(t.task_spec, EndEvent)]
    ends.sort(key=lambda t: t.last_state_change)
    return (ends[-1].task_spec.bpmn_name or ends[-1].task_spec.bpmn_id) if ends else None
