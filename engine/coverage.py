"""What a simulation found: how each case ended, and which BPMN elements the cases reached.

Elements come from the deployed sources (the process and every process it calls); what a case
reached comes from its SpiffWorkflow task tree and the steps its history records as completed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.lint import BPMN, FLOW_NODES
from engine.models import HistoryEvent, Instance
from engine.store import WorkflowStore, all_tasks

REACHED = TaskState.COMPLETED | TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR


@dataclass
class ElementCoverage:
    """One flow node or sequence flow and the number of simulated cases that reached it."""

    process_id: str
    element_id: str
    name: str | None
    kind: str
    source: str | None = None
    target: str | None = None
    instances: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class InstanceResult:
    """How one simulated case went; ``reason`` says why a stuck or failed case did not end."""

    index: int
    instance_id: uuid.UUID | None
    county_code: str | None
    status: str  # completed | stuck | failed
    outcome: str | None = None
    steps: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "instance_id": str(self.instance_id) if self.instance_id else None}


@dataclass
class SimulationReport:
    """Every case of one simulation and, per flow node and sequence flow, how many cases reached it."""

    process_id: str
    version: int
    seed: int
    instances: list[InstanceResult] = field(default_factory=list)
    node_coverage: list[ElementCoverage] = field(default_factory=list)
    flow_coverage: list[ElementCoverage] = field(default_factory=list)
    elapsed: float = 0.0

    def _with(self, status: str) -> list[InstanceResult]:
        return [r for r in self.instances if r.status == status]

    @property
    def completed(self) -> list[InstanceResult]:
        return self._with("completed")

    @property
    def stuck(self) -> list[InstanceResult]:
        return self._with("stuck")

    @property
    def failed(self) -> list[InstanceResult]:
        return self._with("failed")

    @property
    def unreached_nodes(self) -> list[ElementCoverage]:
        return [c for c in self.node_coverage if not c.instances]

    @property
    def unreached_flows(self) -> list[ElementCoverage]:
        return [c for c in self.flow_coverage if not c.instances]

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.completed:
            counts[result.outcome or "-"] = counts.get(result.outcome or "-", 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "process": self.process_id,
            "version": self.version,
            "seed": self.seed,
            "elapsed_seconds": round(self.elapsed, 3),
            "counts": {s: len(self._with(s)) for s in ("completed", "stuck", "failed")},
            "outcomes": self.outcomes(),
            "instances": [r.to_dict() for r in self.instances],
            "node_coverage": [c.to_dict() for c in self.node_coverage],
            "flow_coverage": [c.to_dict() for c in self.flow_coverage],
            "unreached_nodes": [c.element_id for c in self.unreached_nodes],
            "unreached_flows": [c.element_id for c in self.unreached_flows],
        }


def catalog_elements(sources: dict[str, str], process_id: str) -> tuple[list[ElementCoverage], list[ElementCoverage]]:
    """The flow nodes and sequence flows of ``process_id`` and of every process it calls, in document order."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    processes = {}
    for text in sources.values():
        root = etree.fromstring(text.encode(), parser)
        if etree.QName(root).namespace == BPMN:
            processes.update({p.get("id"): p for p in root.iterfind(f"{{{BPMN}}}process")})
    nodes: list[ElementCoverage] = []
    flows: list[ElementCoverage] = []
    pending, seen = [process_id], set()
    while pending:
        pid = pending.pop(0)
        if pid in seen or pid not in processes:
            continue
        seen.add(pid)
        for element in processes[pid].iter():
            kind = etree.QName(element).localname if isinstance(element.tag, str) else ""
            if kind in FLOW_NODES:
                nodes.append(ElementCoverage(pid, element.get("id"), element.get("name"), kind))
                if kind == "callActivity" and element.get("calledElement"):
                    pending.append(element.get("calledElement"))
            elif kind == "sequenceFlow":
                source, target = element.get("sourceRef"), element.get("targetRef")
                flows.append(ElementCoverage(pid, element.get("id"), element.get("name"), kind, source, target))
    return nodes, flows


def measure_coverage(
    store: WorkflowStore,
    session: Session,
    instance_ids: Iterable[uuid.UUID],
    nodes: list[ElementCoverage],
    flows: list[ElementCoverage],
) -> None:
    """Count, per element, the cases that reached it: from the task trees, and the history's completed steps.

    A flow counts as taken when its target ran right after its source in a case's task tree (each
    SpiffWorkflow task's parent is the step the token came from), so return loops are told apart
    from the forward path even though both reach the same gateways.
    """
    by_pair: dict[tuple[str | None, str | None], list[ElementCoverage]] = {}
    for flow in flows:
        by_pair.setdefault((flow.source, flow.target), []).append(flow)
    node_hits: dict[str, int] = {}
    flow_hits: dict[int, int] = {}
    for instance_id in instance_ids:
        instance = session.get(Instance, instance_id)
        reached: set[str] = set()
        taken: set[int] = set()
        for task in all_tasks(store.load_copy(session, instance)):
            bpmn_id = task.task_spec.bpmn_id
            if not bpmn_id or not task.state & REACHED:
                continue
            reached.add(bpmn_id)
            parent = task.parent
            while parent is not None and not parent.task_spec.bpmn_id:
                parent = parent.parent
            source = parent.task_spec.bpmn_id if parent is not None else None
            taken.update(id(flow) for flow in by_pair.get((source, bpmn_id), []))
        events = session.scalars(select(HistoryEvent.payload).where(HistoryEvent.instance_id == instance_id))
        reached.update(step for payload in events for step in (payload or {}).get("completed", []))
        for bpmn_id in reached:
            node_hits[bpmn_id] = node_hits.get(bpmn_id, 0) + 1
        for key in taken:
            flow_hits[key] = flow_hits.get(key, 0) + 1
    for node in nodes:
        node.instances = node_hits.get(node.element_id, 0)
    for flow in flows:
        flow.instances = flow_hits.get(id(flow), 0)
