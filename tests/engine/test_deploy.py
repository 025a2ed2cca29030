"""Deploying process definitions: versions by content hash, and clear findings for broken files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import Settings, build_engine
from engine.db import read_session, write_session
from engine.errors import SpecInvalid
from engine.models import ProcessVersion
from engine.programme import SERVICES
from engine.specs import load_definitions

DEFINITIONS = Path(__file__).parent.parent / "definitions"
PROJECT = Path(__file__).parent.parent.parent


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the small test process and its forms, free to break."""
    shutil.copytree(DEFINITIONS, tmp_path / "defs")
    return tmp_path / "defs"


def findings_for(workdir: Path, old: str, new: str) -> list:
    bpmn = workdir / "mini.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    assert old in text
    bpmn.write_text(text.replace(old, new, 1), encoding="utf-8")
    bundles, findings = load_definitions([bpmn], workdir / "forms", SERVICES)
    assert bundles == []
    return findings


def test_the_programme_definitions_are_valid() -> None:
    paths = [*(PROJECT / "processes").glob("*.bpmn"), *(PROJECT / "processes").glob("*.dmn")]
    bundles, findings = load_definitions(paths, PROJECT / "forms", SERVICES)
    assert [f for f in findings if f.severity == "error"] == []
    assert "zone_creation" in {b.process_id for b in bundles}


def test_deploy_stores_a_version_only_when_content_changes(engine, workdir: Path) -> None:
    with write_session(engine.sessions) as session:
        results = engine.deploy(session)
    assert all(not r.created for r in results), "the template database already holds these versions"

    mini = build_engine(
        Settings(database_url=engine.settings.database_url, processes_dir=workdir, forms_dir=workdir / "forms"),
        engine.clock,
    )
    try:
        with write_session(mini.sessions) as session:
            first = mini.deploy(session)
        with write_session(mini.sessions) as session:
            again = mini.deploy(session)
        form = workdir / "forms" / "a.json"
        form.write_text(form.read_text(encoding="utf-8").replace("数量", "件数"), encoding="utf-8")
        with write_session(mini.sessions) as session:
            changed = mini.deploy(session)
        with read_session(mini.sessions) as session:
            versions = session.scalar(select(func.count()).where(ProcessVersion.process_id == "mini"))
    finally:
        mini.db.dispose()
    assert [(r.version, r.created) for r in first] == [(1, True)]
    assert [(r.version, r.created) for r in again] == [(1, False)]
    assert [(r.version, r.created) for r in changed] == [(2, True)]
    assert versions == 2


@pytest.mark.parametrize(
    ("old", "new", "rule", "element"),
    [
        ('name="county_party"', 'name="county_boss"', "lane-role", "l2"),
        ('value="b.json"', 'value="missing.json"', "user-task-form", "b"),
        ('b_decision == "退回"', "b_decision ==", "condition", "f5"),
        ('"P10D"</bpmn:timeDuration>', "P10D</bpmn:timeDuration>", "timer", "timer"),
        ('id="issue_approval"', 'id="launch_rockets"', "service", "svc"),
        ('value="P10D"', 'value="ten days"', "due-in", "b"),
        ('<bpmn:serviceTask id="svc"', '<bpmn:serviceTask id="a"', "duplicate-id", "a"),
    ],
)
def test_broken_definitions_are_named_by_file_element_and_line(workdir, old, new, rule, element) -> None:
    findings = findings_for(workdir, old, new)
    matching = [f for f in findings if f.rule == rule]
    assert matching, findings
    assert matching[0].file == "mini.bpmn"
    assert matching[0].element_id == element
    assert matching[0].line and matching[0].line > 1


def test_a_script_that_imports_is_refused_at_deploy(workdir: Path) -> None:
    findings = findings_for(
        workdir,
        '<bpmn:endEvent id="end" name="已批复"/>',
        '<bpmn:endEvent id="end" name="已批复"/><bpmn:scriptTask id="evil" name="x"><bpmn:script>import os'
        "</bpmn:script></bpmn:scriptTask>",
    )
    assert any(f.rule == "script" and f.element_id == "evil" and "import" in f.message.lower() for f in findings)


def test_invalid_form_schema_is_reported(workdir: Path) -> None:
    (workdir / "forms" / "a.json").write_text('{"type": "objekt"}', encoding="utf-8")
    bundles, findings = load_definitions([workdir / "mini.bpmn"], workdir / "forms", SERVICES)
    assert bundles == []
    assert any(f.rule == "user-task-form" and "not a valid JSON Schema" in f.message for f in findings)


def test_a_form_example_its_own_field_would_refuse_is_reported(workdir: Path) -> None:
    # Officials are shown a field's examples as the format to follow, so a wrong one must not deploy.
    schema = {
        "type": "object",
        "properties": {
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"phone": {"type": "string", "pattern": "^1[0-9]{10}$", "examples": ["024-1"]}},
                },
            }
        },
    }
    (workdir / "forms" / "a.json").write_text(json.dumps(schema), encoding="utf-8")
    bundles, findings = load_definitions([workdir / "mini.bpmn"], workdir / "forms", SERVICES)
    assert bundles == []
    assert any(
        f.rule == "user-task-form" and "the example '024-1' of rows[].phone" in f.message for f in findings
    ), findings


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<bpmn:definitions", "malformed XML"),
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "DOCTYPE"),
        ('<definitions xmlns="http://example.com/not-bpmn"/>', "not a BPMN 2.0"),
    ],
)
def test_hostile_or_foreign_files_get_a_finding_not_a_crash(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.bpmn"
    path.write_text(content, encoding="utf-8")
    bundles, findings = load_definitions([path], tmp_path, SERVICES)
    assert bundles == []
    assert expected in findings[0].message


def test_deploy_refuses_everything_when_one_file_is_broken(engine, workdir: Path) -> None:
    bpmn = workdir / "mini.bpmn"
    bpmn.write_text(bpmn.read_text(encoding="utf-8").replace('name="city_sa"', 'name="mayor"'), encoding="utf-8")
    mini = build_engine(
        Settings(database_url=engine.settings.database_url, processes_dir=workdir, forms_dir=workdir / "forms"),
        engine.clock,
    )
    try:
        with pytest.raises(SpecInvalid) as raised, write_session(mini.sessions) as session:
            mini.deploy(session)
        with read_session(mini.sessions) as session:
            assert session.scalar(select(func.count()).where(ProcessVersion.process_id == "mini")) == 0
    finally:
        mini.db.dispose()
    assert any(f.rule == "lane-role" for f in raised.value.details)


def test_cli_validate_prints_one_line_per_problem_and_exits_1(workdir: Path) -> None:
    bpmn = workdir / "mini.bpmn"
    text = bpmn.read_text(encoding="utf-8").replace('name="city_sa"', 'name="mayor"')
    bpmn.write_text(text.replace('value="b.json"', 'value="nope.json"'), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "engine", "validate", str(bpmn)],
        capture_output=True,
        text=True,
        env={"DEMOZONE_FORMS_DIR": str(workdir / "forms"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if " error [" in line]
    assert len(problems) == 2
    assert any("mini.bpmn:" in line and "[lane-role] l1" in line for line in problems)
    assert any("[user-task-form] b" in line and "nope.json" in line for line in problems)


def test_the_xsd_is_checked_first_and_named_by_line(workdir: Path) -> None:
    findings = findings_for(workdir, '<bpmn:startEvent id="start"/>', '<bpmn:startEvent id="start"/><bpmn:bogus/>')
    assert findings[0].rule == "xsd"
    assert findings[0].file == "mini.bpmn" and findings[0].line and "bogus" in findings[0].message
    assert [f for f in findings if f.rule == "spiffworkflow"] == [], "the parse does not repeat the XSD error"
