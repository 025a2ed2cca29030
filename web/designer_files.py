"""The designer's files: check edited BPMN and forms together with everything else, then write and deploy.

An edit is never checked alone: the edited files are staged in a temporary copy of ``processes/`` and
``forms/`` and ``Engine.check_definitions`` runs over the whole set, as a deploy would. A deploy takes a
lock (one deploy at a time, across server workers), checks, writes the files into ``processes/`` and
``forms/``, and runs ``Engine.deploy`` in its own write transaction; if that fails, the files are put
back as they were, so the folders and the database never disagree.
"""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lxml import etree

from engine import AppEngine
from engine.errors import InvalidInput, SpecInvalid
from engine.runtime import DeployResult
from engine.specs import Finding
from web.db import get_session, write

log = logging.getLogger(__name__)
PROCESS_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
FORM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,95}\.json$")
MAX_SOURCE_BYTES = 5 * 1024 * 1024
NEW_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" \
xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" \
xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" \
id="Definitions_{pid}" targetNamespace="http://demozone.liaoning/bpmn">
  <bpmn:process id="{pid}" name="{pid}" isExecutable="true">
    <bpmn:startEvent id="start" name="开始"><bpmn:outgoing>flow_start</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="flow_start" sourceRef="start" targetRef="end" />
    <bpmn:endEvent id="end" name="办结"><bpmn:incoming>flow_start</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="diagram_{pid}">
    <bpmndi:BPMNPlane id="plane_{pid}" bpmnElement="{pid}">
      <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="180" y="160" width="36" height="36" />\
</bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="400" y="160" width="36" height="36" />\
</bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="flow_start_di" bpmnElement="flow_start"><di:waypoint x="216" y="178" />\
<di:waypoint x="400" y="178" /></bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def check_process_id(process_id: str) -> str:
    if not PROCESS_ID.match(process_id or ""):
        raise InvalidInput(f"not a process id: {process_id!r}", {"process": "invalid"})
    return process_id


def check_form_name(name: str) -> str:
    if not FORM_NAME.match(name or "") or ".." in name:
        raise InvalidInput(f"not a form file name: {name!r}", {"form": "invalid"})
    return name


def process_file(engine: AppEngine, process_id: str) -> Path:
    return engine.settings.processes_dir / f"{check_process_id(process_id)}.bpmn"


def form_file(engine: AppEngine, name: str) -> Path:
    return engine.settings.forms_dir / check_form_name(name)


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def same_source(text: str | None, stored: str) -> bool:
    """Whether a file's text is what a version was deployed from (the engine stores it re-serialized)."""
    if text is None or "<!DOCTYPE" in text or "<!ENTITY" in text:
        return False
    try:
        root = etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError:
        return False
    return etree.tostring(root, encoding="unicode") == stored


def process_files(engine: AppEngine) -> list[str]:
    """Ids of the BPMN processes in ``processes/`` (file stems)."""
    return sorted(p.stem for p in engine.settings.processes_dir.glob("*.bpmn"))


def form_files(engine: AppEngine) -> list[str]:
    return sorted(p.name for p in engine.settings.forms_dir.glob("*.json"))


def _stage(engine: AppEngine, folder: Path, processes: dict[str, str], forms: dict[str, str]) -> tuple[Path, Path]:
    staged_processes, staged_forms = folder / "processes", folder / "forms"
    staged_processes.mkdir()
    staged_forms.mkdir()
    for pattern in ("*.bpmn", "*.dmn"):
        for path in engine.settings.processes_dir.glob(pattern):
            shutil.copyfile(path, staged_processes / path.name)
    for path in engine.settings.forms_dir.glob("*.json"):
        shutil.copyfile(path, staged_forms / path.name)
    for name, text in processes.items():
        (staged_processes / name).write_text(text, encoding="utf-8")
    for name, text in forms.items():
        (staged_forms / name).write_text(text, encoding="utf-8")
    return staged_processes, staged_forms


def check_changes(
    engine: AppEngine, processes: dict[str, str] | None = None, forms: dict[str, str] | None = None
) -> list[Finding]:
    """Every finding for the current files with ``processes`` / ``forms`` ({file name: text}) replacing theirs."""
    for text in [*(processes or {}).values(), *(forms or {}).values()]:
        if len(text.encode("utf-8")) > MAX_SOURCE_BYTES:
            raise InvalidInput("file too large", {"file": "too_large"})
    with tempfile.TemporaryDirectory(prefix="demozone-designer-") as folder:
        staged_processes, staged_forms = _stage(engine, Path(folder), processes or {}, forms or {})
        checker = copy.copy(engine)  # the same engine, looking at the staged folders
        checker.settings = dataclasses.replace(engine.settings, processes_dir=staged_processes, forms_dir=staged_forms)
        _bundles, findings = checker.check_definitions()
    return findings


def errors_of(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


@contextmanager
def _deploy_lock(engine: AppEngine) -> Iterator[None]:
    key = hashlib.sha256(str(engine.settings.processes_dir.resolve()).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"demozone-deploy-{key}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _replace(path: Path, text: str | None) -> None:
    if text is None:
        path.unlink(missing_ok=True)
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def deploy_changes(
    engine: AppEngine, deployed_by: str, processes: dict[str, str] | None = None, forms: dict[str, str] | None = None
) -> tuple[list[DeployResult], list[Finding]]:
    """Check, write and deploy; SpecInvalid (with the findings) leaves files and database untouched.

    The caller must not hold a write transaction: the request's read transaction is ended here and the
    deploy runs in its own, after the files are in place.
    """
    processes, forms = processes or {}, forms or {}
    targets = {engine.settings.processes_dir / name: text for name, text in processes.items()}
    targets.update({engine.settings.forms_dir / name: text for name, text in forms.items()})
    with _deploy_lock(engine):
        findings = check_changes(engine, processes, forms)
        errors = errors_of(findings)
        if errors:
            raise SpecInvalid(f"{len(errors)} problem(s) in the process definitions", errors)
        backups: dict[Path, str | None] = {path: read_text(path) for path in targets}
        get_session().rollback()  # end the request's read transaction; the deploy takes the write lock
        try:
            for path, text in targets.items():
                _replace(path, text)
            with write() as session:
                results = engine.deploy(session, deployed_by)
        except BaseException:
            for path, text in backups.items():
                _replace(path, text)
            raise
    created = [f"{r.process_id} v{r.version}" for r in results if r.created]
    log.info("deploy by %s of %s: %s", deployed_by, sorted(targets), ", ".join(created) or "no new version")
    return results, findings


def element_names(xml: str) -> dict[str, str]:
    """BPMN element id -> name (or id), for labelling a diff."""
    try:
        root = etree.fromstring(xml.encode("utf-8"), _parser())
    except etree.XMLSyntaxError:
        return {}
    return {node.get("id"): node.get("name") or node.get("id") for node in root.iter() if node.get("id")}
