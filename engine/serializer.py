"""Workflow state <-> JSON, with the spec kept out of every instance.

SpiffWorkflow embeds the whole process spec in each serialized workflow (about half its size, and
most of the time spent deserializing). We store the spec once per process version and serialize
instances without it, rebuilding the workflow around the cached spec on load.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine.errors import InvalidInput
from engine.workflow import LiveWorkflow

MEMO_ATTRIBUTE = "_demozone_task_dicts"
_NOT_REACHED = TaskState.FUTURE | TaskState.PREDICTED_MASK


class _TaskEntry:
    """A task as last converted: the task, its memo key, its dict and, once encoded, its JSON member text.

    Its dict is reusable if it changes only with the memo key (state, last state change) or, for a task not
    yet reached, with its children: a finished task never changes again (a reset changes its state and
    timestamp); a task not yet reached (FUTURE or predicted) whose data are empty gets them when it
    becomes READY.
    """

    __slots__ = ("task", "key", "finished", "reusable", "parent", "children", "triggered", "converted", "text")

    def __init__(self, task: Any, converted: dict[str, Any]) -> None:
        self.task = task
        self.key = (task._state, task.last_state_change)
        self.finished = bool(task._state & TaskState.FINISHED_MASK)
        unreached = bool(task._state & _NOT_REACHED)
        self.parent = task.parent if unreached else None
        self.reusable = self.finished or (unreached and _empty_so_far(task, self.parent))
        # A task not yet reached can have its children predicted anew, or be triggered, in the same state.
        self.children = list(task._children) if unreached and self.reusable else None
        self.triggered = task.triggered
        self.converted = converted
        self.text: str | None = None

    def unreached_unchanged(self, task: Any) -> bool:
        return (self.children == task._children and self.triggered == task.triggered
                and _empty_so_far(task, self.parent))


def _empty_so_far(task: Any, parent: Any) -> bool:
    # SpiffWorkflow stores a task's data as its difference from its parent's, so the parent's data count too.
    return not task.data and not task.internal_data and (parent is None or not parent.data)


class _SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its spec, reusing the JSON of tasks that cannot have changed.

    A finished task never changes again, and a task ahead of the current step changes only with its state
    or children, so converting and encoding each once is enough: saving then costs what changed, not the
    whole tree — a case of 200 steps used to re-encode all of them in every command.
    """

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = self._without_tasks(workflow)
        dct["tasks"] = {str(task_id): entry.converted for task_id, entry in self._converted(workflow)}
        return dct

    def to_json(self, workflow: BpmnWorkflow, encoder: json.JSONEncoder, extra: dict[str, Any]) -> str:
        """The JSON text of the workflow's dict and ``extra``, each reusable task's text taken from the memo.

        Call it with the registry in encoder mode, as SpiffWorkflow's ``serialize_json`` does: converters
        then leave dates and other values to ``encoder``.
        """
        # Finished tasks first, then the others, each group in the tree's order: a case reloaded from its
        # state lists its tasks in this order, and the history's lists of completed steps follow it.
        finished, unfinished = [], []
        for task_id, entry in self._converted(workflow):
            if entry.text is None:
                entry.text = encoder.encode({str(task_id): entry.converted})[1:-1]
            (finished if entry.finished else unfinished).append(entry.text)
        head = encoder.encode({**self._without_tasks(workflow), "typename": self.typename, **extra})
        return head[:-1] + ',"tasks":{' + ",".join(finished + unfinished) + "}}"

    def _converted(self, workflow: BpmnWorkflow) -> list[tuple[UUID, _TaskEntry]]:
        """Each task's converted dict: from the memo for a reusable task seen before, else converted now.

        The memo is keyed by id(task) (hashing 200 UUIDs per save was a visible cost of long cases); each
        entry holds its task, so the id cannot be reused while the entry exists.
        """
        memo: dict[int, _TaskEntry] = getattr(workflow, MEMO_ATTRIBUTE, {})
        entries = []
        for task_id, task in workflow.tasks.items():
            entry = memo.get(id(task))
            # Checked inline, not by a method: this runs for every task of the case on every save.
            if (entry is None or entry.task is not task or entry.key != (task._state, task.last_state_change)
                    or (entry.children is not None and not entry.unreached_unchanged(task))):
                entry = _TaskEntry(task, self.registry.convert(task))
                if entry.reusable:
                    memo[id(task)] = entry
                else:
                    memo.pop(id(task), None)
            entries.append((task_id, entry))
        if len(memo) > len(entries):  # predicted tasks a decision dropped from the tree: let them go
            memo = {id(entry.task): entry for _task_id, entry in entries if entry.reusable}
        setattr(workflow, MEMO_ATTRIBUTE, memo)
        return entries

    def _without_tasks(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        return {
            "data": self.registry.convert(self.registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "root": str(workflow.task_tree.id),
            "subprocesses": self.mapping_to_dict(workflow.subprocesses),
            "bpmn_events": self.registry.convert(workflow.bpmn_events),
        }

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        task_dicts = dct["tasks"]
        workflow.tasks = self.mapping_from_dict(task_dicts, UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        entries = [_TaskEntry(task, task_dicts[str(task.id)]) for task in workflow.tasks.values()]
        setattr(
            workflow,
            MEMO_ATTRIBUTE,
            {id(entry.task): entry for entry in entries if entry.reusable},
        )
        return workflow


class StateSerializer:
    """The single serializer registry of the engine (built per engine, never mutating Spiff's config)."""

    def __init__(self) -> None:
        registry = BpmnWorkflowSerializer.configure(dict(SPIFF_CONFIG))
        # Registering it replaces SpiffWorkflow's converter of workflows in this registry only; states keep
        # SpiffWorkflow's type name, and load as the engine's LiveWorkflow.
        self._workflow_converter = _SpecFreeWorkflowConverter(LiveWorkflow, registry, typename="BpmnWorkflow")
        registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
        registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
        self._registry = registry
        self._serializer = BpmnWorkflowSerializer(registry)
        # JSON without spaces after separators, and text as UTF-8 rather than \u escapes: a state is
        # rewritten by every command of its case, so its size is paid for on every commit. One encoder for
        # all (it keeps no state between calls), not one made per json.dumps: a save encodes a few pieces.
        self._encoder = create_encoder(registry)(separators=(",", ":"), ensure_ascii=False)

    @property
    def registry(self) -> Any:
        """The converter registry (SpiffWorkflow's diff tools need it to compare specs)."""
        return self._registry

    @property
    def version(self) -> str:
        return self._serializer.VERSION

    def dump_spec(self, spec: Any, subprocess_specs: dict[str, Any]) -> dict[str, Any]:
        return {
            "spec": self._registry.convert(spec),
            "subprocess_specs": {name: self._registry.convert(sp) for name, sp in subprocess_specs.items()},
        }

    def load_spec(self, dct: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        spec = self._registry.restore(dct["spec"])
        subprocess_specs = {name: self._registry.restore(sp) for name, sp in dct["subprocess_specs"].items()}
        return spec, subprocess_specs

    def dump_state(self, workflow: BpmnWorkflow) -> str:
        # SpiffWorkflow's serialize_json, with the finished tasks' JSON reused instead of re-encoded.
        self._registry._encoder_mode = True
        try:
            extra = {self._serializer.VERSION_KEY: self._serializer.VERSION}
            return self._workflow_converter.to_json(workflow, self._encoder, extra)
        finally:
            self._registry._encoder_mode = False

    def load_state(self, text: str, spec: Any, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
        dct = json.loads(text)
        self._serializer.migrate(dct)
        return self._registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)


def reject_unstorable(data: Any, path: str = "") -> None:
    """Refuse submitted data the serializer would misread (a dict with a ``typename`` key) or could not
    store: text that is not valid Unicode (a lone surrogate, which a JSON ``\\ud800`` escape can carry)."""
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}/{key}" if path else str(key)
            if key == "typename":
                raise InvalidInput("field name 'typename' is reserved", {where: "字段名 typename 为保留字"})
            _reject_invalid_text(key, where)
            reject_unstorable(value, where)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            reject_unstorable(value, f"{path}/{index}")
    else:
        _reject_invalid_text(data, path)


def _reject_invalid_text(value: Any, where: str) -> None:
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise InvalidInput(
                f"{where or 'the data'} holds text that is not valid Unicode", {where: "含有无效字符（孤立的代理码位）"}
            ) from exc
