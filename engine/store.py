"""Load and save workflow state in the caller's session; keep the open-task index in step.

Specs are deserialized once per process version and cached in memory: they are immutable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.defaults import EndEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access import scope_org_for
from engine.clock import parse_instant
from engine.durations import add_duration
from engine.errors import NotFound
from engine.models import Instance, OpenTask, ProcessVersion
from engine.serializer import StateSerializer

URGENCIES = ("平件", "加急", "特急")
TIMER_EVENT_TYPES = {"TimeDateEventDefinition", "DurationTimerEventDefinition", "CycleTimerEventDefinition"}
MAX_TREE_DEPTH = 1_000_000  # SpiffWorkflow's iterator stops at depth 1000 by default and then loses tasks


@dataclass(frozen=True)
class LoadedVersion:
    id: int
    process_id: str
    name: str
    version: int
    spec: Any
    subprocess_specs: dict[str, Any]
    forms: dict[str, Any]


def task_properties(task: Any) -> dict[str, str]:
    return task.task_spec.extensions.get("properties", {}) if hasattr(task.task_spec, "extensions") else {}


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Any]:
    return workflow.get_tasks(state=TaskState.READY, manual=True, max_depth=MAX_TREE_DEPTH)


class WorkflowStore:
    def __init__(self, serializer: StateSerializer) -> None:
        self.serializer = serializer
        self._versions: dict[int, LoadedVersion] = {}

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
        version_id = session.scalar(
            select(ProcessVersion.id)
            .where(ProcessVersion.process_id == process_id)
            .order_by(ProcessVersion.version.desc())
            .limit(1)
        )
        if version_id is None:
            raise NotFound(f"process {process_id!r} is not deployed")
        return self.version(session, version_id)

    def new_workflow(self, version: LoadedVersion) -> BpmnWorkflow:
        return BpmnWorkflow(version.spec, version.subprocess_specs)

    def load(self, session: Session, instance: Instance) -> BpmnWorkflow:
        version = self.version(session, instance.process_version_id)
        return self.serializer.load_state(instance.state, version.spec, version.subprocess_specs)

    def save(self, session: Session, instance: Instance, workflow: BpmnWorkflow, now: datetime) -> None:
        """Write the state, status, next timer and open tasks of ``instance`` (no commit)."""
        instance.state = self.serializer.dump_state(workflow)
        instance.serializer_version = self.serializer.version
        instance.updated_at = now
        instance.next_timer_at = _next_timer(workflow)
        if workflow.is_completed():
            instance.status = "completed"
            instance.completed_at = now
            instance.outcome = _outcome(workflow)
            instance.next_timer_at = None
        self._sync_open_tasks(session, instance, workflow, now)

    def _sync_open_tasks(self, session: Session, instance: Instance, workflow: BpmnWorkflow, now: datetime) -> None:
        existing = {t.id: t for t in session.scalars(select(OpenTask).where(OpenTask.instance_id == instance.id))}
        ready = {t.id: t for t in ready_user_tasks(workflow)} if instance.status == "running" else {}
        for task_id, row in existing.items():
            if task_id not in ready:
                session.delete(row)
        version = self.version(session, instance.process_version_id)
        case_data = workflow.task_tree.data if workflow.task_tree else {}
        for task_id, task in ready.items():
            if task_id in existing:
                continue
            props = task_properties(task)
            urgency = (
                task.data.get("urgency") if task.data.get("urgency") in URGENCIES else props.get("urgency", "平件")
            )
            role = task.task_spec.lane
            session.add(
                OpenTask(
                    id=task_id,
                    instance=instance,
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
                    case_title=f"{case_data.get('county_name') or task.data.get('county_name', '')} · {version.name}",
                )
            )


def _next_timer(workflow: BpmnWorkflow) -> datetime | None:
    due = []
    for event in workflow.waiting_events():
        if event.event_type not in TIMER_EVENT_TYPES:
            continue
        value = event.value
        if isinstance(value, dict):
            value = value.get("next") or value.get("start")
        if isinstance(value, str):
            due.append(parse_instant(value))
    return min(due) if due else None


def _outcome(workflow: BpmnWorkflow) -> str | None:
    ends = [
        t
        for t in workflow.get_tasks(state=TaskState.COMPLETED, spec_class=EndEvent, max_depth=MAX_TREE_DEPTH)
        if t.workflow is workflow
    ]
    ends.sort(key=lambda t: t.last_state_change)
    return (ends[-1].task_spec.bpmn_name or ends[-1].task_spec.bpmn_id) if ends else None
