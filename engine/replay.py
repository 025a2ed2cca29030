"""Replay: rebuild a case from its process version and its history alone, and compare.

The replay starts a fresh workflow from the stored spec, then re-applies each event with the clock
set to the event's time: the submitted form data, returns, timers. Service operations are not run
again (they would take new document numbers or start new cases): their recorded results are
returned instead. The rebuilt case must equal the stored one in status, open steps, completed path
and data; anything else means the stored state or the history was changed.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.util.diff import diff_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
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


def summarize(registry: Any, workflow: Any, status: str) -> dict[str, Any]:
    """What replay compares: status, open steps, the completed path, and the case data.

    Data appear as the serializer stores them (dates and decimals as tagged dicts) and are compared as
    canonical JSON text, so the stored side can be read from its JSON without rebuilding a workflow."""
    completed = Counter(
        t.task_spec.bpmn_id for t in all_tasks(workflow) if t.state == TaskState.COMPLETED and t.task_spec.bpmn_id
    )
    ready = ready_user_tasks(workflow)
    return {
        "status": status,
        "open_steps": sorted(t.task_spec.bpmn_id for t in ready),
        "completed": dict(sorted(completed.items())),
        "data": _stored_text(registry, workflow.data) if workflow.is_completed() else "{}",
        "task_data": sorted((t.task_spec.bpmn_id, _stored_text(registry, t.data)) for t in ready),
    }


def stored_summary(store: WorkflowStore, session: Session, instance: Any) -> dict[str, Any]:
    """`summarize` of the stored case, read straight from its serialized state.

    Deserializing the state into a workflow only to read task states and data was a fifth of a replay's
    time; the task dicts hold the same states, spec names and data. A state written by another serializer
    version is loaded (and migrated) the usual way."""
    version = store.version(session, instance.process_version_id)
    state = json.loads(instance.state)
    if state.get("serializer_version") != store.serializer.version:
        workflow = store.serializer.load_state(instance.state, version.spec, version.subprocess_specs)
        return summarize(store.serializer.registry, workflow, instance.status)
    tasks = [(t, version.spec.task_specs[t["task_spec"]], state["tasks"]) for t in state["tasks"].values()]
    top_finished = state["completed"] or not any(t["state"] & TaskState.NOT_FINISHED_MASK for t, _, _ in tasks)
    for subprocess in state["subprocesses"].values():
        specs = version.subprocess_specs[subprocess["spec"]].task_specs
        tasks.extend((t, specs[t["task_spec"]], subprocess["tasks"]) for t in subprocess["tasks"].values())
    completed = Counter(spec.bpmn_id for t, spec, _ in tasks if t["state"] == TaskState.COMPLETED and spec.bpmn_id)
    ready = [
        (spec.bpmn_id, _task_data(t, of_workflow))
        for t, spec, of_workflow in tasks
        if t["state"] == TaskState.READY and spec.manual
    ]
    return {
        "status": instance.status,
        "open_steps": sorted(bpmn_id for bpmn_id, _ in ready),
        "completed": dict(sorted(completed.items())),
        "data": _canonical(state["data"]) if top_finished else "{}",
        "task_data": sorted((bpmn_id, _canonical(data)) for bpmn_id, data in ready),
    }


def _task_data(task: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A task's data from its serialized form: SpiffWorkflow stores a child's data as changes to its parent's
    (as its TaskConverter.from_dict rebuilds it), so apply them from the nearest task holding all of it."""
    chain = []
    while task.get("delta") and task["parent"] is not None:
        chain.append(task["delta"])
        task = tasks[task["parent"]]
    data = dict(task["data"])
    for delta in reversed(chain):
        data.update(delta.get("updates", {}))
        for key in delta.get("deletions", ()):
            data.pop(key, None)
    return data


@functools.cache
def _encoder(registry: Any) -> type[json.JSONEncoder]:
    return create_encoder(registry)


def _stored_text(registry: Any, data: dict[str, Any]) -> str:
    """Live data as the serializer stores it (its encoder tags dates and decimals), as canonical text: one
    C-speed encode instead of converting value by value first."""
    return json.dumps(registry.clean(data), cls=_encoder(registry), sort_keys=True, ensure_ascii=False)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _difference(key: str, replayed: Any, recorded: Any) -> str:
    """The first difference, named by the data fields that differ rather than the whole case data."""
    if key in ("data", "task_data"):
        replayed_data, recorded_data = _as_fields(replayed), _as_fields(recorded)
        fields = sorted(
            k for k in replayed_data.keys() | recorded_data.keys() if replayed_data.get(k) != recorded_data.get(k)
        )
        if fields:
            shown = {k: (replayed_data.get(k), recorded_data.get(k)) for k in fields[:5]}
            return f"{key} differs in {fields}: (replay, stored) = {shown!r}"
    return f"{key} differs: replay gives {replayed!r}, the stored case has {recorded!r}"


def _as_fields(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return json.loads(value)
    return {f"{bpmn_id}#{i}.{k}": v for i, (bpmn_id, text) in enumerate(value) for k, v in json.loads(text).items()}


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


# Column reads, built once: a replay needs a few fields of the case and of its events, not ORM objects.
_CASE = select(
    Instance.id,
    Instance.status,
    Instance.state,
    Instance.process_id,
    Instance.process_version_id,
    Instance.created_at,
).where(Instance.id == bindparam("instance_id"))
_CASE_EVENTS = (
    select(
        HistoryEvent.seq,
        HistoryEvent.at,
        HistoryEvent.actor,
        HistoryEvent.command,
        HistoryEvent.bpmn_id,
        HistoryEvent.payload,
    )
    .where(HistoryEvent.instance_id == bindparam("instance_id"))
    .order_by(HistoryEvent.seq)
)
_OPEN_STEPS = select(OpenTask.bpmn_id).where(OpenTask.instance_id == bindparam("instance_id"))


def _events(session: Session, instance_id: uuid.UUID) -> tuple[Any, list[Any]]:
    instance = session.execute(_CASE, {"instance_id": instance_id}).first()
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    return instance, list(session.execute(_CASE_EVENTS, {"instance_id": instance_id}))


def _replay(store: WorkflowStore, session: Session, instance: Any, events: list[Any]):  # noqa: ANN202
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
    replayed = summarize(store.serializer.registry, workflow, _status(workflow, events))
    recorded = stored_summary(store, session, instance)
    for key in ("status", "open_steps", "completed", "data", "task_data"):
        if replayed[key] != recorded[key]:
            return result(_difference(key, replayed[key], recorded[key]))
    open_rows = sorted(session.execute(_OPEN_STEPS, {"instance_id": instance_id}).scalars())
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


def _status(workflow: Any, events: list[Any]) -> str:
    if any(e.command == "terminate" for e in events):
        return "terminated"
    return "completed" if workflow.is_completed() else "running"


def _first_version(session: Session, instance: Any, events: list[Any]) -> int:
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


def _migrate(store: WorkflowStore, session: Session, workflow: Any, event: Any) -> None:
    target = store.version(session, event.payload["to_version_id"])
    top, subprocesses = diff_workflow(store.serializer.registry, workflow, target.spec, target.subprocess_specs)
    apply_migration(workflow, top, subprocesses, target)


def _action_for(workflow: Any, event: Any):  # noqa: ANN202
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
