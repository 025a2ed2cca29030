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
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine.errors import InvalidInput

MEMO_ATTRIBUTE = "_demozone_finished_task_dicts"


class _SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its spec, reusing the dicts of tasks that have finished.

    A finished task never changes again (a reset changes its state and timestamp, which is the
    memo key), so converting it once is enough: saving then costs what changed, not the whole tree.
    """

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        memo: dict[UUID, tuple[tuple[int, float], dict[str, Any]]] = getattr(workflow, MEMO_ATTRIBUTE, {})
        tasks = {}
        for task_id, task in workflow.tasks.items():
            key = (task.state, task.last_state_change)
            cached = memo.get(task_id)
            if cached is not None and cached[0] == key:
                tasks[str(task_id)] = cached[1]
                continue
            converted = self.registry.convert(task)
            tasks[str(task_id)] = converted
            if task.state & TaskState.FINISHED_MASK:
                memo[task_id] = (key, converted)
        setattr(workflow, MEMO_ATTRIBUTE, memo)
        return {
            "data": self.registry.convert(self.registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": tasks,
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
        setattr(
            workflow,
            MEMO_ATTRIBUTE,
            {
                task.id: ((task.state, task.last_state_change), task_dicts[str(task.id)])
                for task in workflow.tasks.values()
                if task.state & TaskState.FINISHED_MASK
            },
        )
        return workflow


class StateSerializer:
    """The single serializer registry of the engine (built per engine, never mutating Spiff's config)."""

    def __init__(self) -> None:
        config = dict(SPIFF_CONFIG)
        config[BpmnWorkflow] = _SpecFreeWorkflowConverter
        registry = BpmnWorkflowSerializer.configure(config)
        registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
        registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
        self._registry = registry
        self._serializer = BpmnWorkflowSerializer(registry)

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
        return self._serializer.serialize_json(workflow)

    def load_state(self, text: str, spec: Any, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
        dct = json.loads(text)
        self._serializer.migrate(dct)
        return self._registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)


def reject_reserved_keys(data: Any, path: str = "") -> None:
    """Refuse submitted data the serializer would misread (a dict with a ``typename`` key)."""
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}/{key}" if path else str(key)
            if key == "typename":
                raise InvalidInput("field name 'typename' is reserved", {where: "字段名 typename 为保留字"})
            reject_reserved_keys(value, where)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            reject_reserved_keys(value, f"{path}/{index}")
