"""Replay: rebuild a case from its process version and its history alone, and compare.

The replay starts a fresh workflow from the stored spec, then re-applies each event with the clock
set to the event's time: the submitted form data, returns, timers. Service operations are not run
again (they would take new document numbers or start new cases): their recorded results are
returned instead. The rebuilt case must equal the stored one in status, open steps, completed path
and data; anything else means the stored state or the history was changed.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.util.diff import diff_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import FixedClock, as_utc
from engine.errors import EngineError, NotFound
from engine.execution import complete_user_task, run_until_waiting, task_at
from engine.migration import apply_migration
from engine.models import HistoryEvent, Instance, OpenTask, ProcessVersion
from engine.programme import script_helpers
from engine.scripting import ScriptEngine
from engine.store import WorkflowStore, all_tasks, ready_user_tasks, task_properties
from engine.timers import coalesce_missed_cycles

STATE_COMMANDS = ("start", "complete", "return", "timer")


@dataclass
class ReplayResult:
    instance_id: str
    matches: bool
    events: int
    difference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(workflow: Any, status: str) -> dict[str, Any]:
    """What replay compares: status, open steps, the completed path, and the case data."""
    completed = Counter(
        t.task_spec.bpmn_id for t in all_tasks(workflow) if t.state == TaskState.COMPLETED and t.task_spec.bpmn_id
    )
    ready = ready_user_tasks(workflow)
    data = workflow.data if workflow.is_completed() else {}
    return {
        "status": status,
        "open_steps": sorted(t.task_spec.bpmn_id for t in ready),
        "completed": dict(sorted(completed.items())),
        "data": data,
        "task_data": sorted(
            (t.task_spec.bpmn_id, json.dumps(t.data, sort_keys=True, ensure_ascii=False, default=str)) for t in ready
        ),
    }


class _RecordedServices(ScriptEngine):
    """A script engine whose service operations are answered from the history instead of being run.

    The answers never look at the task data, so unlike the live engine's services they get no copy of it
    (the copy was a tenth of a replay's time)."""

    def __init__(self, clock: FixedClock, calls: list[dict[str, Any]]) -> None:
        super().__init__(helpers=script_helpers(clock.now()))
        self._calls = list(calls)

    def call_service(self, task: Any, operation_name: str, operation_params: Any) -> str:
        if not self._calls or self._calls[0]["operation"] != operation_name:
            raise ReplayDiverged(f"the history records no call of {operation_name} here")
        return json.dumps(self._calls.pop(0)["result"], ensure_ascii=False)


@dataclass
class ReplayStep:
    """The case as it stood right after one event: for auditors stepping through a history."""

    seq: int
    command: str
    actor: str
    at: str
    bpmn_id: str | None
    completed: list[str]
    active: list[str]
    data: dict[str, Any]


def _events(session: Session, instance_id: uuid.UUID) -> tuple[Instance, list[HistoryEvent]]:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    events = session.scalars(
        select(HistoryEvent).where(HistoryEvent.instance_id == instance_id).order_by(HistoryEvent.seq)
    )
    return instance, list(events)


def _replay(store: WorkflowStore, session: Session, instance: Instance, events: list[HistoryEvent]):  # noqa: ANN202
    """Re-apply the events one by one; yields (event, workflow). Raises ReplayDiverged on a mismatch."""
    start_version = next((e.payload.get("version_id") for e in events if e.command == "start"), None)
    first_version = _first_version(session, instance, events) if start_version is None else start_version
    workflow = store.new_workflow(store.version(session, first_version))
    clock = FixedClock(as_utc(instance.created_at))
    for event in events:
        if event.command == "migrate":
            _migrate(store, session, workflow, event)
        elif event.command == "terminate":
            workflow.cancel()
        elif event.command in STATE_COMMANDS:
            clock.set(as_utc(event.at))
            engine = _RecordedServices(clock, event.payload.get("services", []))
            try:
                completed = run_until_waiting(workflow, clock, engine, _action_for(workflow, event))
                coalesce_missed_cycles(workflow, clock.now())
            except EngineError as exc:
                raise ReplayDiverged(
                    f"event #{event.seq} ({event.command} {event.bpmn_id or ''}) cannot be replayed: {exc}"
                ) from exc
            if completed != event.payload.get("completed", completed):
                raise ReplayDiverged(
                    f"event #{event.seq} ({event.command}): replay completed {completed}, "
                    f"the history records {event.payload.get('completed')}"
                )
        yield event, workflow


class ReplayDiverged(EngineError):
    code = "replay_diverged"


def replay_instance(store: WorkflowStore, session: Session, instance_id: uuid.UUID) -> ReplayResult:
    """Rebuild the case from its events and compare it with the stored state."""
    instance, events = _events(session, instance_id)

    def result(difference: str | None) -> ReplayResult:
        return ReplayResult(str(instance_id), difference is None, len(events), difference)

    try:
        replayed_events = list(_replay(store, session, instance, events))
    except ReplayDiverged as exc:
        return result(exc.message)
    workflow = replayed_events[-1][1] if replayed_events else None
    if workflow is None:
        return result("the case has no history")
    stored = store.load_copy(session, instance)
    replayed = summarize(workflow, _status(workflow, events))
    recorded = summarize(stored, instance.status)
    for key in ("status", "open_steps", "completed", "data", "task_data"):
        if replayed[key] != recorded[key]:
            return result(f"{key} differs: replay gives {replayed[key]!r}, the stored case has {recorded[key]!r}")
    open_rows = sorted(session.scalars(select(OpenTask.bpmn_id).where(OpenTask.instance_id == instance_id)))
    if open_rows != recorded["open_steps"]:
        return result(f"the open-task index lists {open_rows}, the stored case has {recorded['open_steps']}")
    return result(None)


def replay_steps(store: WorkflowStore, session: Session, instance_id: uuid.UUID) -> list[ReplayStep]:
    """The case after each of its events (claims and comments repeat the state before them)."""
    instance, events = _events(session, instance_id)
    steps = []
    for event, workflow in _replay(store, session, instance, events):
        finished = [t for t in all_tasks(workflow) if t.state == TaskState.COMPLETED and t.task_spec.bpmn_id]
        ready = ready_user_tasks(workflow)
        data = (
            workflow.data
            if workflow.is_completed()
            else {**workflow.task_tree.data, **(ready[-1].data if ready else {})}
        )
        steps.append(
            ReplayStep(
                event.seq,
                event.command,
                event.actor,
                as_utc(event.at).isoformat(),
                event.bpmn_id,
                sorted({t.task_spec.bpmn_id for t in finished}),
                sorted({t.task_spec.bpmn_id for t in ready}),
                json.loads(json.dumps(data, default=str, ensure_ascii=False)),
            )
        )
    return steps


def _status(workflow: Any, events: list[HistoryEvent]) -> str:
    if any(e.command == "terminate" for e in events):
        return "terminated"
    return "completed" if workflow.is_completed() else "running"


def _first_version(session: Session, instance: Instance, events: list[HistoryEvent]) -> int:
    """The version the case started on: before any migration, the one it is on now."""
    migration = next((e for e in events if e.command == "migrate"), None)
    if migration is None:
        return instance.process_version_id
    version = session.scalar(
        select(ProcessVersion.id).where(
            ProcessVersion.process_id == instance.process_id,
            ProcessVersion.version == migration.payload["from_version"],
        )
    )
    if version is None:
        raise ReplayDiverged(f"version {migration.payload['from_version']} of {instance.process_id} is missing")
    return version


def _migrate(store: WorkflowStore, session: Session, workflow: Any, event: HistoryEvent) -> None:
    target = store.version(session, event.payload["to_version_id"])
    top, subprocesses = diff_workflow(store.serializer.registry, workflow, target.spec, target.subprocess_specs)
    apply_migration(workflow, top, subprocesses, target)


def _action_for(workflow: Any, event: HistoryEvent):  # noqa: ANN202
    payload = event.payload
    if event.command == "start":

        def start() -> None:
            workflow.task_tree.data.update({**payload.get("data", {}), **payload.get("scope", {})})
            if payload.get("parent_case"):
                workflow.task_tree.data["parent_case"] = payload["parent_case"]
            workflow.task_tree.data.update(payload.get("batch", {}))

        return start
    if event.command == "timer":
        return lambda: None
    task = task_at(workflow, event.bpmn_id, payload.get("ready_index", 0))
    if event.command == "complete":
        return lambda: complete_user_task(task, payload.get("data", {}))
    props = task_properties(task)
    data = {props.get("returnField"): props.get("returnValue"), "return_reason": payload.get("reason", "")}
    return lambda: complete_user_task(task, data)
