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

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import FixedClock, as_utc
from engine.errors import EngineError, NotFound
from engine.execution import complete_user_task, run_until_waiting, task_at
from engine.models import HistoryEvent, Instance, OpenTask
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


class _RecordedServices:
    """Service operations answered from the history instead of being run."""

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self._calls = list(calls)

    def operation(self, name: str):  # noqa: ANN201
        def answer(task_data: dict[str, Any], **params: Any) -> Any:
            if not self._calls or self._calls[0]["operation"] != name:
                raise EngineError(f"the history records no call of {name} here")
            return self._calls.pop(0)["result"]

        return answer

    def for_names(self, names: set[str]) -> dict[str, Any]:
        return {name: self.operation(name) for name in names}


def replay_instance(store: WorkflowStore, session: Session, instance_id: uuid.UUID) -> ReplayResult:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    events = list(
        session.scalars(select(HistoryEvent).where(HistoryEvent.instance_id == instance_id).order_by(HistoryEvent.seq))
    )
    version = store.version(session, instance.process_version_id)
    workflow = store.new_workflow(version)
    clock = FixedClock(as_utc(instance.created_at))
    operations = {call["operation"] for e in events for call in e.payload.get("services", [])}

    def result(difference: str | None) -> ReplayResult:
        return ReplayResult(str(instance_id), difference is None, len(events), difference)

    for event in events:
        if event.command not in STATE_COMMANDS:
            continue
        clock.set(as_utc(event.at))
        services = _RecordedServices(event.payload.get("services", []))
        engine = ScriptEngine(helpers=script_helpers(clock.now()), services=services.for_names(operations))
        try:
            action = _action_for(workflow, event)
            completed = run_until_waiting(workflow, clock, engine, action)
            coalesce_missed_cycles(workflow, clock.now())
        except EngineError as exc:
            return result(f"event #{event.seq} ({event.command} {event.bpmn_id or ''}) cannot be replayed: {exc}")
        if completed != event.payload.get("completed", completed):
            return result(
                f"event #{event.seq} ({event.command}): replay completed {completed}, "
                f"the history records {event.payload.get('completed')}"
            )

    stored = store.load_copy(session, instance)
    replayed = summarize(workflow, "completed" if workflow.is_completed() else "running")
    recorded = summarize(stored, instance.status)
    for key in ("status", "open_steps", "completed", "data", "task_data"):
        if replayed[key] != recorded[key]:
            return result(f"{key} differs: replay gives {replayed[key]!r}, the stored case has {recorded[key]!r}")
    open_rows = sorted(session.scalars(select(OpenTask.bpmn_id).where(OpenTask.instance_id == instance_id)))
    if open_rows != recorded["open_steps"]:
        return result(f"the open-task index lists {open_rows}, the stored case has {recorded['open_steps']}")
    return result(None)


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
