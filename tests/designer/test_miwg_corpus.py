"""Validation never crashes: the BPMN MIWG reference corpus (files written by other tools) and hostile
inputs go through ``load_definitions`` and the structural rules and come out as findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.lint import lint_document, lint_files
from engine.programme import SERVICES
from engine.specs import MAX_FILE_BYTES, Finding, _read_document, load_definitions

CORPUS = Path(__file__).parents[2].parent / "shared" / "corpus" / "miwg"
FILES = sorted(CORPUS.glob("*.bpmn")) if CORPUS.is_dir() else []
FORMS = Path(__file__).parents[2] / "forms"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"

# Rules that must fire on some corpus files: the structural problems bpmnlint 11.15 also reports
# there (corpus/miwg/LISTING.md), plus references that cannot resolve in a single file.
EXPECTED = {
    "A.2.1.bpmn": {"label-required", "no-implicit-join"},
    "A.3.0.bpmn": {"start-event-required", "end-event-required"},
    "A.4.0.bpmn": {"no-implicit-split"},
    "A.4.1.bpmn": {"no-implicit-split"},
    "B.1.0.bpmn": {"start-event-required", "end-event-required", "call-activity"},
    "B.2.0.bpmn": {"start-event-required", "end-event-required", "label-required", "no-implicit-join"},
    "C.2.0.bpmn": {"label-required", "no-implicit-join"},
    "C.3.0.bpmn": {"start-event-required", "end-event-required", "no-implicit-join"},
    "C.8.0.bpmn": {"label-required"},
}
# Files on which bpmnlint finds nothing structural; neither may we report an error.
CLEAN = {"A.1.0.bpmn", "C.9.1.bpmn"}

needs_corpus = pytest.mark.skipif(not FILES, reason=f"MIWG corpus not found at {CORPUS}")


def check_findings(findings: list[Finding], file_name: str) -> None:
    for finding in findings:
        assert isinstance(finding, Finding)
        assert finding.severity in ("error", "warning")
        assert finding.file == file_name
        assert finding.line is None or finding.line > 0
        assert finding.rule and finding.message


@needs_corpus
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_corpus_file_is_checked_without_a_traceback(path: Path) -> None:
    _bundles, findings = load_definitions([path], FORMS, SERVICES)
    check_findings(findings, path.name)
    document = _read_document(path)
    assert not isinstance(document, Finding), document
    structural = lint_document(document.root, path.name)
    check_findings(structural, path.name)
    rules = {f.rule for f in structural}
    assert EXPECTED.get(path.name, set()) <= rules
    if path.name in CLEAN:
        assert not [f for f in structural if f.severity == "error"]


@needs_corpus
def test_the_whole_corpus_lints_together() -> None:
    findings = lint_files(FILES)
    for path in FILES:
        check_findings([f for f in findings if f.file == path.name], path.name)
    assert {f.file for f in findings} <= {p.name for p in FILES}
    assert {"no-implicit-split", "conditional-flows", "label-required"} <= {f.rule for f in findings}


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def both(path: Path) -> list[Finding]:
    """The findings of deploy's check and of the structural lint, for one file."""
    _bundles, findings = load_definitions([path], FORMS, SERVICES)
    return findings + lint_files([path])


def minimal(process_id: str = "hostile", extra: str = "") -> str:
    return (
        f'<definitions xmlns="{BPMN_NS}" id="d" targetNamespace="t"><process id="{process_id}" isExecutable="true">'
        f'{extra}<startEvent id="s" name="开始"/><endEvent id="e" name="结束"/>'
        '<sequenceFlow id="f" sourceRef="s" targetRef="e"/></process></definitions>'
    )


HOSTILE = {
    "xxe": '<?xml version="1.0"?><!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + minimal(extra="<documentation>&xxe;</documentation>"),
    "external-dtd": '<?xml version="1.0"?><!DOCTYPE definitions SYSTEM "http://127.0.0.1:9/evil.dtd">' + minimal(),
    "billion-laughs": '<?xml version="1.0"?><!DOCTYPE definitions [<!ENTITY a "lol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + "]>"
    + minimal(extra="<documentation>&j;</documentation>"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_entities_and_doctypes_are_refused(tmp_path: Path, kind: str) -> None:
    findings = both(write(tmp_path, f"{kind}.bpmn", HOSTILE[kind]))
    assert findings and all(f.rule == "xml" and f.severity == "error" for f in findings)
    assert all("DOCTYPE and entity declarations are refused" in f.message for f in findings)


def test_a_utf16_doctype_never_resolves_an_entity(tmp_path: Path) -> None:
    text = HOSTILE["xxe"].replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    findings = both(write(tmp_path, "utf16.bpmn", text.encode("utf-16")))
    assert findings
    assert not any("root:" in f.message for f in findings)


def test_a_utf16_doctype_is_refused_like_any_other(tmp_path: Path) -> None:
    text = HOSTILE["xxe"].replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    findings = both(write(tmp_path, "utf16.bpmn", text.encode("utf-16")))
    assert all("DOCTYPE" in f.message for f in findings)


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    padding = "<documentation>" + "示" * (MAX_FILE_BYTES // 3 + 10) + "</documentation>"
    findings = both(write(tmp_path, "huge.bpmn", minimal(extra=padding)))
    assert findings and all(f.rule == "file" and "larger than" in f.message for f in findings)


@pytest.mark.parametrize(
    ("name", "content", "phrase"),
    [
        ("malformed.bpmn", minimal().replace("</process>", ""), "malformed XML"),
        ("empty.bpmn", "", "malformed XML"),
        ("binary.bpmn", bytes(range(256)) * 4, "malformed XML"),
        ("deep.bpmn", "<a>" * 5000 + "</a>" * 5000, "malformed XML"),
        ("wrong-namespace.bpmn", minimal().replace(BPMN_NS, "http://example.com/not-bpmn"), "not a BPMN 2.0"),
        ("no-namespace.bpmn", minimal().replace(f' xmlns="{BPMN_NS}"', ""), "not a BPMN 2.0"),
    ],
)
def test_broken_documents_give_one_clear_finding(tmp_path: Path, name: str, content: str | bytes, phrase: str) -> None:
    findings = both(write(tmp_path, name, content))
    assert findings and all(f.rule == "xml" and phrase in f.message for f in findings)


def test_duplicate_ids_are_reported_and_the_linter_carries_on(tmp_path: Path) -> None:
    path = write(tmp_path, "twice.bpmn", minimal(extra='<task id="s" name="重复"/>'))
    _bundles, findings = load_definitions([path], FORMS, SERVICES)
    assert "duplicate-id" in {f.rule for f in findings}
    check_findings(lint_files([path]), "twice.bpmn")
