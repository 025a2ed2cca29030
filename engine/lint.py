"""Structural rules for BPMN documents, in the spirit of bpmnlint's recommended set.

The XSD says a document is well-formed BPMN; these rules say whether its graph makes sense: every
(sub-)process starts and ends, nothing is disconnected, splits and joins are explicit, decisions have
a default, references resolve. They run on documents already read safely (``engine.specs``) and
never raise on odd input: what other tools write becomes findings, not tracebacks.

Severity follows what SpiffWorkflow would do: "error" where it refuses the model, runs it wrongly or
gets stuck; "warning" where it runs but a reader is misled (labels, implicit joins and ends).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

# A module import, not a name import: engine.specs may run these rules, so the two import each other.
import engine.specs as specs

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SCOPES = frozenset({"subProcess", "transaction", "adHocSubProcess"})
TASKS = frozenset(
    {"task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask", "sendTask", "receiveTask"}
)
ACTIVITIES = SCOPES | TASKS | {"callActivity"}
THROWS = frozenset({"intermediateThrowEvent", "endEvent", "implicitThrowEvent"})
EVENTS = THROWS | {"startEvent", "boundaryEvent", "intermediateCatchEvent"}
GATEWAYS = frozenset({"exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway"})
FLOW_NODES = ACTIVITIES | EVENTS | GATEWAYS
DECIDING_GATEWAYS = frozenset({"exclusiveGateway", "inclusiveGateway", "complexGateway"})
_PREFIX = f"{{{BPMN}}}"
_PREFIX_LENGTH = len(_PREFIX)


@dataclass(frozen=True)
class LintContext:
    """What the documents checked together define: processes to call, messages sent and received."""

    process_ids: frozenset[str] = frozenset()
    messages_thrown: frozenset[str] = frozenset()
    messages_caught: frozenset[str] = frozenset()

    @classmethod
    def of(cls, roots: Iterable[etree._Element]) -> LintContext:
        processes, thrown, caught = set(), set(), set()
        for root in roots:
            if _is_bpmn(root):
                processes.update(p.get("id") for p in root.iterfind(f"{{{BPMN}}}process") if p.get("id"))
                sent, received = _message_uses(root)
                thrown.update(name for name, _node in sent)
                caught.update(name for name, _node in received)
        return cls(frozenset(processes), frozenset(thrown), frozenset(caught))


def lint_document(root: etree._Element, filename: str, context: LintContext | None = None) -> list[specs.Finding]:
    """Every structural finding in one BPMN document (a DMN or foreign root gives none).

    ``context`` names the processes and messages of all documents checked together; without it
    the document stands alone.
    """
    if not _is_bpmn(root):
        return []
    linter = _Linter(root, filename, context or LintContext.of([root]))
    linter.run()
    return linter.findings


def lint_documents(documents: Iterable[tuple[etree._Element, str]]) -> list[specs.Finding]:
    """Lint (root, file name) pairs that belong together, so calls and messages resolve across them."""
    documents = list(documents)
    context = LintContext.of(root for root, _name in documents)
    return [finding for root, name in documents for finding in lint_document(root, name, context)]


def lint_files(paths: Iterable[Path]) -> list[specs.Finding]:
    """Read files with the same safety as deploy (no DTDs or entities, size limit) and lint them together."""
    findings: list[specs.Finding] = []
    documents = []
    for path in sorted(Path(p) for p in paths):
        doc = specs._read_document(path)
        if isinstance(doc, specs.Finding):
            findings.append(doc)
        elif doc.kind == "bpmn":
            documents.append((doc.root, doc.path.name))
    return findings + lint_documents(documents)


def _is_bpmn(root: etree._Element) -> bool:
    return isinstance(root.tag, str) and etree.QName(root).namespace == BPMN


def _local(node: etree._Element) -> str:
    # Plain string work: this runs on every element, and building a QName each time doubles lint time.
    # Comments and processing instructions have a non-string tag; they are never BPMN elements.
    tag = node.tag
    return tag[_PREFIX_LENGTH:] if isinstance(tag, str) and tag.startswith(_PREFIX) else ""


def _children(node: etree._Element, *names: str) -> list[etree._Element]:
    return [child for child in node if _local(child) in names]


def _definitions(event: etree._Element) -> list[str]:
    return [_local(c) for c in event if _local(c).endswith("EventDefinition")]


def _named(node: etree._Element) -> bool:
    return bool((node.get("name") or "").strip())


def _message_uses(root: etree._Element) -> tuple[list, list]:
    """(name, element) pairs of messages sent and received; matched by name, as SpiffWorkflow does."""
    names = {m.get("id"): (m.get("name") or m.get("id")) for m in root.iter(f"{{{BPMN}}}message")}
    sent, received = [], []
    kinds = ("sendTask", "receiveTask", "messageEventDefinition")
    for node in root.iter(*(f"{{{BPMN}}}{kind}" for kind in kinds)):  # filtered in C: documents can be large
        ref = node.get("messageRef")
        if not ref:
            continue
        kind = _local(node)
        if kind == "messageEventDefinition":
            kind = "sendTask" if _local(node.getparent()) in THROWS else "receiveTask"
        (sent if kind == "sendTask" else received).append((names.get(ref, ref), node))
    return sent, received


class _Linter:
    def __init__(self, root: etree._Element, filename: str, context: LintContext) -> None:
        self.root = root
        self.filename = filename
        self.context = context
        self.findings: list[specs.Finding] = []
        self.ids: dict[str, etree._Element] = {}
        for node in root.xpath("//*[@id]"):
            self.ids.setdefault(node.get("id"), node)

    def report(self, severity: str, node: etree._Element, rule: str, message: str) -> None:
        # Name the nearest element with an id: an event definition is known by its event.
        owner = node
        while owner.get("id") is None and owner.getparent() is not None:
            owner = owner.getparent()
        where = (self.filename, node.sourceline, owner.get("id"), owner.get("name"))
        finding = specs.Finding(severity, *where, rule, message)
        self.findings.append(finding)

    def error(self, node: etree._Element, rule: str, message: str) -> None:
        self.report("error", node, rule, message)

    def warn(self, node: etree._Element, rule: str, message: str) -> None:
        self.report("warning", node, rule, message)

    def run(self) -> None:
        for process in _children(self.root, "process"):
            self.scope(process)
        self.messages()

    # -- one process or sub-process --------------------------------------------------------------

    def scope(self, scope: etree._Element) -> None:
        nodes = {n.get("id"): n for n in scope if _local(n) in FLOW_NODES and n.get("id")}
        for node in nodes.values():
            if _local(node) in SCOPES:
                self.scope(node)
        if not nodes:
            # A black-box pool runs nowhere; an empty (collapsed) sub-process cannot start or end.
            if _local(scope) in ("subProcess", "transaction"):
                self.start_and_end(scope, nodes)
            return
        incoming: dict[str, list] = defaultdict(list)
        outgoing: dict[str, list] = defaultdict(list)
        pairs: set[tuple[str, str]] = set()
        for flow in _children(scope, "sequenceFlow"):
            if not self.flow_resolves(flow, nodes):
                continue
            pair = (flow.get("sourceRef"), flow.get("targetRef"))
            if pair in pairs:
                self.error(flow, "no-duplicate-sequence-flows", f"a second flow from {pair[0]!r} to {pair[1]!r}")
            pairs.add(pair)
            outgoing[pair[0]].append(flow)
            incoming[pair[1]].append(flow)
        self.start_and_end(scope, nodes)
        for node_id, node in nodes.items():
            # In an ad-hoc sub-process activities run in any order, so flows are optional there.
            if _local(scope) != "adHocSubProcess":
                self.connections(node, incoming[node_id], outgoing[node_id])
            self.attachment(node, nodes)
            self.splits(node, outgoing[node_id])
            self.labels(node, outgoing[node_id])
            self.definitions(node)

    def flow_resolves(self, flow: etree._Element, nodes: dict) -> bool:
        ok = True
        for attribute in ("sourceRef", "targetRef"):
            ref = flow.get(attribute)
            if ref not in nodes:
                ok = False
                where = "is in another (sub-)process: flows cannot cross it" if ref in self.ids else "is missing"
                self.error(flow, "flow-reference", f"{attribute} {ref!r} {where}")
        return ok

    def start_and_end(self, scope: etree._Element, nodes: dict) -> None:
        if _local(scope) == "adHocSubProcess":
            return  # ad-hoc sub-processes have neither, by definition
        kinds = [_local(n) for n in nodes.values()]
        what = "process" if _local(scope) == "process" else "sub-process"
        if "startEvent" not in kinds:
            self.error(scope, "start-event-required", f"the {what} has no start event")
        if "endEvent" not in kinds:
            self.error(scope, "end-event-required", f"the {what} has no end event (a case's outcome is its name)")
        blank = [n for n in nodes.values() if _local(n) == "startEvent" and not _definitions(n)]
        for extra in blank[1:]:
            self.error(extra, "single-blank-start-event", f"a second blank start event: the {what} would run twice")

    def connections(self, node: etree._Element, ins: list, outs: list) -> None:
        kind, definitions = _local(node), _definitions(node)
        if kind == "boundaryEvent" and not outs and "compensateEventDefinition" not in definitions:
            self.warn(node, "no-implicit-end", "no outgoing flow: when it fires, its path just stops")
        if kind == "boundaryEvent" or node.get("isForCompensation") == "true":
            return  # entered by its activity or by compensation, never by a flow
        if kind == "subProcess" and node.get("triggeredByEvent") == "true":
            return  # an event sub-process is started by its event
        link_catch = kind == "intermediateCatchEvent" and "linkEventDefinition" in definitions
        link_throw = kind == "intermediateThrowEvent" and "linkEventDefinition" in definitions
        if not ins and not outs and not (link_catch or link_throw):
            self.error(node, "no-disconnected", "no sequence flow connects it, so it never runs")
        elif not ins and kind != "startEvent" and not link_catch:
            self.error(node, "no-implicit-start", "no incoming flow: nothing leads here, so it never runs")
        elif not outs and kind != "endEvent" and not link_throw:
            # SpiffWorkflow quietly ends a task's path; a gateway with nowhere to go is a bug.
            severity = "error" if kind in GATEWAYS else "warning"
            self.report(severity, node, "no-implicit-end", "no outgoing flow: the path stops without an end event")
        if len(ins) > 1 and kind in ACTIVITIES:
            message = f"{len(ins)} incoming flows: each token runs it again; merge them with a gateway in front"
            self.warn(node, "no-implicit-join", message)
        if kind in GATEWAYS and len(ins) > 1 and len(outs) > 1:
            self.warn(node, "no-gateway-join-fork", "the gateway both joins and forks; use one gateway for each")

    def attachment(self, node: etree._Element, nodes: dict) -> None:
        if _local(node) != "boundaryEvent":
            return
        ref = node.get("attachedToRef")
        if _local(nodes.get(ref or "", node)) not in ACTIVITIES:
            self.error(node, "boundary-attachment", f"attachedToRef {ref!r} is no activity here; it would never fire")

    def splits(self, node: etree._Element, outs: list) -> None:
        kind, default = _local(node), node.get("default")
        if default and default not in {f.get("id") for f in outs}:
            self.error(node, "default-flow", f"default flow {default!r} is not one of its outgoing flows")
        conditioned = [f for f in outs if _children(f, "conditionExpression")]
        plain = [f for f in outs if f not in conditioned and f.get("id") != default]
        for flow in conditioned:
            if flow.get("id") == default:
                self.warn(flow, "conditional-flows", "the default flow's condition is ignored; remove it")
        if kind in DECIDING_GATEWAYS and len(outs) > 1:
            for flow in plain:
                self.error(flow, "conditional-flows", f"leaves gateway {node.get('id')!r} unconditioned, not default")
            if not default and not plain:
                message = "no default flow: when no condition holds, the case fails; mark one flow as default"
                self.error(node, "conditional-flows", message)
        elif kind == "eventBasedGateway":
            targets = [_local(self.ids.get(f.get("targetRef") or "", node)) for f in outs]
            if len(outs) < 2 or conditioned or any(t not in ("intermediateCatchEvent", "receiveTask") for t in targets):
                message = "needs two or more unconditioned flows, each to a catch event or receive task"
                self.error(node, "event-based-gateway", message)
        elif kind == "parallelGateway":
            for flow in conditioned:
                self.warn(flow, "conditional-flows", "a condition after a parallel gateway is ignored")
        elif kind not in GATEWAYS and len(plain) > 1:
            message = f"{len(plain)} unconditioned outgoing flows: split with a parallel gateway"
            self.error(node, "no-implicit-split", message)
        elif kind not in GATEWAYS and len(outs) > 1:
            message = "conditions on flows leaving a task or event are not supported; add an exclusive gateway"
            self.error(node, "conditional-flows", message)
        elif kind not in GATEWAYS and conditioned:
            self.warn(conditioned[0], "conditional-flows", "a condition on the only outgoing flow is ignored")

    def labels(self, node: etree._Element, outs: list) -> None:
        kind = _local(node)
        deciding = kind in DECIDING_GATEWAYS and len(outs) > 1
        # Sub-processes, joins and parallel or event-based gateways read fine unnamed (as in bpmnlint).
        if (kind in TASKS or kind == "callActivity" or kind in EVENTS or deciding) and not _named(node):
            self.warn(node, "label-required", f"the {kind} has no name")
        if deciding:
            for flow in outs:
                if _children(flow, "conditionExpression") and not _named(flow):
                    self.warn(flow, "label-required", "the conditional flow has no name; name the choice")

    def definitions(self, node: etree._Element) -> None:
        kind = _local(node)
        if kind == "callActivity":
            called = node.get("calledElement")
            if not called:
                self.error(node, "call-activity", "the call activity names no calledElement")
            elif called not in self.context.process_ids:
                self.error(node, "call-activity", f"calls process {called!r}, which none of the given files defines")
        for timer in _children(node, "timerEventDefinition"):
            if not _children(timer, "timeDate", "timeDuration", "timeCycle"):
                self.error(node, "timer-definition", "the timer has no timeDate, timeDuration or timeCycle")
        if kind in EVENTS and len(_definitions(node)) > 1:
            self.error(node, "single-event-definition", "an event may have only one event definition")

    # -- references across the document and the documents checked with it ------------------------

    def messages(self) -> None:
        message_ids = {m.get("id") for m in self.root.iter(f"{{{BPMN}}}message")}
        flows = list(self.root.iter(f"{{{BPMN}}}messageFlow"))
        for flow in flows:
            for attribute in ("sourceRef", "targetRef"):
                if flow.get(attribute) not in self.ids:
                    self.error(flow, "flow-reference", f"{attribute} {flow.get(attribute)!r} is missing")
        for node in self.root.xpath("//*[@messageRef]"):
            if _local(node) and node.get("messageRef") not in message_ids:
                self.error(node, "message-ref", f"messageRef {node.get('messageRef')!r} names no message in this file")
        # A message flow drawn to or from another pool stands for a partner outside these files.
        sources, targets = {f.get("sourceRef") for f in flows}, {f.get("targetRef") for f in flows}
        sent, received = _message_uses(self.root)
        for name, node in received:
            event = node if _local(node) == "receiveTask" else node.getparent()
            if name not in self.context.messages_thrown and event.get("id") not in targets:
                self.warn(event, "message-unmatched", f"waits for message {name!r}, which no given file sends")
        for name, node in sent:
            event = node if _local(node) == "sendTask" else node.getparent()
            if name not in self.context.messages_caught and event.get("id") not in sources:
                self.warn(event, "message-unmatched", f"sends message {name!r}, which no given file receives")
