"""Load, check and version the programme's BPMN, DMN and form files.

SpiffWorkflow parses and validates BPMN against the XSD, but it does not check what this engine
relies on: lanes that are known roles, forms that exist and are valid JSON Schema, Python
expressions that compile in the restricted environment, service operations that exist. Every
problem becomes a ``Finding`` naming the file, line and element, so a designer can fix it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine.durations import parse_duration
from engine.lint import lint_documents
from engine.roles import LANE_ROLES
from engine.scripting import check_expression, check_script

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiff": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
)
MAX_FILE_BYTES = 5 * 1024 * 1024
FORM_PROPERTY = "formJsonSchemaFilename"
_UNQUOTED_ISO = re.compile(r"^(R\d*/)?(P[\dYMWDTHS.]+|\d{4}-\d{2}-\d{2}\S*)$")


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning
    file: str
    line: int | None
    element_id: str | None
    element_name: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        element = ""
        if self.element_id:
            element = f" {self.element_id}" + (f" ({self.element_name})" if self.element_name else "")
        return f"{where}: {self.severity} [{self.rule}]{element}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ProcessBundle:
    """Everything one deployable process version consists of."""

    process_id: str
    name: str
    spec: Any
    subprocess_specs: dict[str, Any]
    sources: dict[str, str]
    forms: dict[str, Any]
    content_hash: str = ""


@dataclass
class _Document:
    path: Path
    root: etree._Element
    kind: str  # bpmn | dmn
    findings: list[Finding] = field(default_factory=list)


def _safe_parser() -> etree.XMLParser:
    # Designers upload files: never resolve entities, never touch the network, refuse huge trees.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def _read_document(path: Path) -> _Document | Finding:
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Finding("error", name, None, None, None, "file", f"cannot read file: {exc.strerror}")
    if len(raw) > MAX_FILE_BYTES:
        return Finding("error", name, None, None, None, "file", f"file is larger than {MAX_FILE_BYTES} bytes")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        return Finding("error", name, None, None, None, "xml", "DOCTYPE and entity declarations are refused")
    try:
        root = etree.fromstring(raw, _safe_parser())
    except etree.XMLSyntaxError as exc:
        return Finding("error", name, exc.lineno, None, None, "xml", f"malformed XML: {exc.msg}")
    if root.getroottree().docinfo.doctype:  # a declaration the byte check missed (e.g. UTF-16)
        return Finding("error", name, None, None, None, "xml", "DOCTYPE and entity declarations are refused")
    namespace = etree.QName(root).namespace
    if namespace == NS["bpmn"]:
        return _Document(path, root, "bpmn")
    if namespace in DMN_NAMESPACES:
        return _Document(path, root, "dmn")
    return Finding(
        "error", name, root.sourceline, None, None, "xml", f"not a BPMN 2.0 or DMN document (namespace {namespace!r})"
    )


def _element_finding(doc: _Document, node: etree._Element, rule: str, message: str) -> Finding:
    # Name the BPMN/DMN element, not an extension element that happens to carry an id of its own.
    owner = node
    while owner is not None and (owner.get("id") is None or etree.QName(owner).namespace == NS["spiff"]):
        owner = owner.getparent()
    element_id = owner.get("id") if owner is not None else None
    element_name = owner.get("name") if owner is not None else None
    return Finding("error", doc.path.name, node.sourceline, element_id, element_name, rule, message)


def _check_duplicate_ids(doc: _Document) -> None:
    # SpiffWorkflow finds elements by id across the document, extension elements included: two BPMN
    # elements sharing an id, or a service operator named like a task, make it misread the element
    # ("no support implemented for this task type"). Operators may share their (operation) names.
    seen: dict[str, etree._Element] = {}
    operators: list[etree._Element] = []
    for node in doc.root.iter():
        element_id = node.get("id") if isinstance(node.tag, str) else None
        if element_id is None:
            continue
        if etree.QName(node).namespace == NS["spiff"]:
            operators.append(node)
        elif element_id in seen:
            doc.findings.append(_duplicate(doc, node, seen[element_id]))
        else:
            seen[element_id] = node
    for node in operators:
        if node.get("id") in seen:
            doc.findings.append(_duplicate(doc, node, seen[node.get("id")]))


def _duplicate(doc: _Document, node: etree._Element, first: etree._Element) -> Finding:
    element_id = node.get("id")
    return Finding(
        "error",
        doc.path.name,
        node.sourceline,
        element_id,
        node.get("name"),
        "duplicate-id",
        f"id {element_id!r} is already used on line {first.sourceline}",
    )


def _check_lanes(doc: _Document) -> None:
    for lane in doc.root.iterfind(".//bpmn:lane", NS):
        if lane.get("name") not in LANE_ROLES:
            doc.findings.append(
                _element_finding(
                    doc,
                    lane,
                    "lane-role",
                    f"lane name {lane.get('name')!r} is not a role key; use one of {', '.join(sorted(LANE_ROLES))}",
                )
            )


def _task_properties(task: etree._Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in task.iterfind(".//spiff:property", NS)}


def _check_user_tasks(doc: _Document, forms_dir: Path, forms: dict[str, Any]) -> None:
    for task in doc.root.iterfind(".//bpmn:userTask", NS):
        properties = _task_properties(task)
        form_name = properties.get(FORM_PROPERTY)
        if not form_name:
            doc.findings.append(
                _element_finding(doc, task, "user-task-form", f"user task has no {FORM_PROPERTY} property")
            )
        else:
            finding = _load_form(forms_dir, form_name, forms)
            if finding:
                doc.findings.append(_element_finding(doc, task, "user-task-form", finding))
        due_in = properties.get("dueIn")
        if due_in:
            try:
                parse_duration(due_in)
            except ValueError as exc:
                doc.findings.append(_element_finding(doc, task, "due-in", str(exc)))
        if bool(properties.get("returnField")) != bool(properties.get("returnValue")):
            doc.findings.append(_element_finding(doc, task, "return", "returnField and returnValue go together"))


def _load_form(forms_dir: Path, form_name: str, forms: dict[str, Any]) -> str | None:
    """Load a form into ``forms``; return a message if it is missing or not valid JSON Schema."""
    if form_name in forms:
        return None
    path = forms_dir / form_name
    if "/" in form_name or "\\" in form_name or not path.is_file():
        return f"form {form_name!r} does not exist in {forms_dir.name}/"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
    except json.JSONDecodeError as exc:
        return f"form {form_name!r} is not valid JSON (line {exc.lineno}: {exc.msg})"
    except SchemaError as exc:
        return f"form {form_name!r} is not a valid JSON Schema: {exc.message}"
    wrong = wrong_example(schema)
    if wrong:
        field, example, why = wrong
        return f"form {form_name!r}: the example {example!r} of {field} is not valid for it: {why}"
    forms[form_name] = schema
    return None


def wrong_example(schema: Any, path: str = "") -> tuple[str, Any, str] | None:
    """The first ``examples`` value that its own field would refuse, as (field path, example, why).

    Officials are shown a field's examples as the format to follow (the placeholder and the format
    error quote them), so a wrong one is a defect of the form. Looks through ``properties`` and ``items``.
    """
    if not isinstance(schema, dict):
        return None
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        validator = Draft202012Validator(schema, format_checker=FormatChecker())
        for example in examples:
            error = next(validator.iter_errors(example), None)
            if error is not None:
                return path or "/", example, error.message
    children = [(f"{path}.{key}" if path else key, sub) for key, sub in schema.get("properties", {}).items()]
    if isinstance(schema.get("items"), dict):
        children.append((f"{path}[]", schema["items"]))
    for child_path, child in children:
        wrong = wrong_example(child, child_path)
        if wrong:
            return wrong
    return None


def _check_expressions(doc: _Document, services: Iterable[str]) -> None:
    def check(node: etree._Element, text: str | None, rule: str, *, script: bool = False) -> None:
        if text is None or not text.strip():
            return
        problem = check_script(text) if script else check_expression(text.strip())
        if problem:
            doc.findings.append(_element_finding(doc, node, rule, problem))

    for node in doc.root.iterfind(".//bpmn:conditionExpression", NS):
        check(node, node.text, "condition")
    for node in doc.root.iterfind(".//bpmn:scriptTask/bpmn:script", NS):
        check(node, node.text, "script", script=True)
    for tag in ("preScript", "postScript"):
        for node in doc.root.iterfind(f".//spiff:{tag}", NS):
            check(node, node.text, "script", script=True)
    for tag in ("timeDate", "timeDuration", "timeCycle"):
        for node in doc.root.iterfind(f".//bpmn:{tag}", NS):
            if node.text and _UNQUOTED_ISO.match(node.text.strip()):
                doc.findings.append(
                    _element_finding(
                        doc,
                        node,
                        "timer",
                        f'timer text is a Python expression: quote the ISO value, e.g. "{node.text.strip()}"',
                    )
                )
            else:
                check(node, node.text, "timer")
    for tag in ("loopCardinality", "completionCondition"):
        for node in doc.root.iterfind(f".//bpmn:{tag}", NS):
            check(node, node.text, "multi-instance")
    known = set(services)
    for node in doc.root.iterfind(".//spiff:serviceTaskOperator", NS):
        if node.get("id") not in known:
            doc.findings.append(
                _element_finding(
                    doc,
                    node,
                    "service",
                    f"unknown service operation {node.get('id')!r}; known: {', '.join(sorted(known))}",
                )
            )
        for param in node.iterfind(".//spiff:parameter", NS):
            check(param, param.get("value"), "service")


def _check_dmn(doc: _Document) -> None:
    ns = {"dmn": etree.QName(doc.root).namespace}
    for table in doc.root.iterfind(".//dmn:decisionTable", ns):
        inputs = [
            i.findtext("dmn:inputExpression/dmn:text", namespaces=ns) or "" for i in table.iterfind("dmn:input", ns)
        ]
        for text in inputs:
            problem = check_expression(text.strip()) if text.strip() else "input has no expression"
            if problem:
                doc.findings.append(_element_finding(doc, table, "dmn-input", problem))
        for rule in table.iterfind("dmn:rule", ns):
            for index, entry in enumerate(rule.iterfind("dmn:inputEntry", ns)):
                text = (entry.findtext("dmn:text", namespaces=ns) or "").strip()
                if text and text != "-" and index < len(inputs):
                    problem = _check_dmn_entry(inputs[index].strip(), text)
                    if problem:
                        doc.findings.append(_element_finding(doc, entry, "dmn-rule", problem))
            for entry in rule.iterfind("dmn:outputEntry", ns):
                text = (entry.findtext("dmn:text", namespaces=ns) or "").strip()
                problem = check_expression(text) if text else None
                if problem:
                    doc.findings.append(_element_finding(doc, entry, "dmn-rule", problem))


def _check_dmn_entry(input_expression: str, entry: str) -> str | None:
    # SpiffWorkflow evaluates an entry as "<input> == <entry>", "<input> <entry>" or with "?" replaced.
    if re.search(r"\?(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", entry):
        return check_expression(entry.replace("?", f"({input_expression})"))
    if check_expression(entry) is None:
        return None
    return check_expression(f"({input_expression}) {entry}")


def _parse_error_finding(exc: ValidationException, default_file: str, rule: str = "spiffworkflow") -> Finding:
    line = exc.line_number if isinstance(exc.line_number, int) and exc.line_number else None
    message = str(exc).split(". Error is on line")[0].split("\n")[0]
    return Finding("error", exc.file_name or default_file, line, exc.id or None, exc.name or None, rule, message)


def _source_hash(sources: dict[str, str], forms: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    for name in sorted(forms):
        digest.update(
            name.encode() + b"\0" + json.dumps(forms[name], sort_keys=True, ensure_ascii=False).encode() + b"\0"
        )
    return digest.hexdigest()


def load_definitions(
    paths: Iterable[Path], forms_dir: Path, services: Iterable[str]
) -> tuple[list[ProcessBundle], list[Finding]]:
    """Check the given BPMN/DMN files together and build one bundle per executable process.

    Processes are returned only when there is no error at all: a half-valid set is never deployed.
    """
    findings: list[Finding] = []
    documents: list[_Document] = []
    for path in sorted(paths):
        doc = _read_document(path)
        if isinstance(doc, Finding):
            findings.append(doc)
        else:
            documents.append(doc)

    # In order: the BPMN 2.0 XSD, the structural rules, the engine's own rules, SpiffWorkflow's parse.
    schema_invalid = set()
    for doc in documents:
        if doc.kind == "bpmn":
            try:
                VALIDATOR.validate(doc.root, doc.path.name)
            except ValidationException as exc:
                findings.append(_parse_error_finding(exc, doc.path.name, rule="xsd"))
                schema_invalid.add(doc.path.name)
    findings.extend(lint_documents((d.root, d.path.name) for d in documents if d.kind == "bpmn"))
    forms: dict[str, Any] = {}
    services = list(services)
    for doc in documents:
        _check_duplicate_ids(doc)
        if doc.kind == "bpmn":
            _check_lanes(doc)
            _check_user_tasks(doc, forms_dir, forms)
            _check_expressions(doc, services)
        else:
            _check_dmn(doc)
        findings.extend(doc.findings)

    parser = SpiffBpmnParser(validator=VALIDATOR)
    for doc in documents:
        if doc.path.name in schema_invalid:  # already reported; the parse would only repeat it
            continue
        try:
            if doc.kind == "bpmn":
                parser.add_bpmn_xml(doc.root, filename=doc.path.name)
            else:
                parser.add_dmn_xml(doc.root, filename=doc.path.name)
        except ValidationException as exc:
            findings.append(_parse_error_finding(exc, doc.path.name))
    if any(f.severity == "error" for f in findings):
        return [], findings

    bundles = []
    for doc in documents:
        if doc.kind != "bpmn":
            continue
        for process in doc.root.iterfind("bpmn:process", NS):
            if process.get("isExecutable") != "true":
                continue
            bundle = _build_bundle(parser, process, doc, documents, forms_dir, forms, findings)
            if bundle:
                bundles.append(bundle)
    if any(f.severity == "error" for f in findings):
        return [], findings
    return bundles, findings


def _build_bundle(parser, process, doc, documents, forms_dir, forms, findings) -> ProcessBundle | None:  # noqa: ANN001
    process_id = process.get("id")
    if process_id != doc.path.stem:
        findings.append(
            _element_finding(
                doc, process, "process-id", f"process id {process_id!r} must equal the file name {doc.path.stem!r}"
            )
        )
        return None
    try:
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        findings.append(_parse_error_finding(exc, doc.path.name))
        return None
    involved = {process_id, *subprocess_specs}
    files = {parser.process_parsers[pid].filename for pid in involved if pid in parser.process_parsers}
    decision_ids = {
        node.text.strip()
        for d in documents
        if d.path.name in files
        for node in d.root.iterfind(".//spiff:calledDecisionId", NS)
        if node.text
    }
    for d in documents:
        if d.kind == "dmn" and any(dec.get("id") in decision_ids for dec in d.root.iter("{*}decision")):
            files.add(d.path.name)
    sources = {d.path.name: etree.tostring(d.root, encoding="unicode") for d in documents if d.path.name in files}
    used_forms = {
        props[FORM_PROPERTY]: forms[props[FORM_PROPERTY]]
        for d in documents
        if d.path.name in files
        for task in d.root.iterfind(".//bpmn:userTask", NS)
        if (props := _task_properties(task)).get(FORM_PROPERTY) in forms
    }
    start_form = f"{process_id}.start.json"
    if (forms_dir / start_form).exists():
        problem = _load_form(forms_dir, start_form, forms)
        if problem:
            findings.append(_element_finding(doc, process, "start-form", problem))
            return None
        used_forms[start_form] = forms[start_form]
    bundle = ProcessBundle(process_id, process.get("name") or process_id, spec, subprocess_specs, sources, used_forms)
    bundle.content_hash = _source_hash(sources, used_forms)
    return bundle
