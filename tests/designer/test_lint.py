"""engine.lint: each structural rule fires on a small model that breaks it and stays quiet on one that doesn't."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from engine.designer_cli import lint_command
from engine.lint import BPMN, LintContext, lint_document, lint_documents, lint_files
from engine.specs import Finding

ROOT = Path(__file__).parents[2]

# start -> task -> end, all named: the smallest model every rule accepts.
LINE = """
<startEvent id="start" name="开始"/>
<task id="work" name="办理"/>
<endEvent id="end" name="结束"/>
<sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
<sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
"""
WORK = '<task id="work" name="办理"/>'
TASKS_AB = '<task id="a" name="甲"/><task id="b" name="乙"/>'
XOR = '<exclusiveGateway id="gw" name="同意？" {default}/>'
COND = '<conditionExpression>decision == "{value}"</conditionExpression>'


def model(body: str, before: str = "", process_id: str = "p") -> etree._Element:
    return etree.fromstring(
        f'<definitions xmlns="{BPMN}" id="defs" targetNamespace="t">{before}'
        f'<process id="{process_id}" isExecutable="true">{body}</process></definitions>'.encode()
    )


def flow(flow_id: str, source: str, target: str, condition: str | None = None, name: str = "") -> str:
    inner = COND.format(value=condition) if condition else ""
    refs = f'sourceRef="{source}" targetRef="{target}"'
    return f'<sequenceFlow id="{flow_id}" name="{name}" {refs}>{inner}</sequenceFlow>'


def with_work(element: str) -> str:
    """LINE with its task replaced by ``element`` (which keeps the id "work")."""
    return LINE.replace(WORK, element)


def decision(default: str | None = "to_b", with_conditions: bool = True) -> str:
    """start -> gw -> a | b -> end, the gateway's flows conditioned or not."""
    return (
        '<startEvent id="start" name="开始"/>'
        + XOR.format(default=f'default="{default}"' if default else "")
        + TASKS_AB
        + '<endEvent id="end" name="结束"/><exclusiveGateway id="merge"/>'
        + flow("to_gw", "start", "gw")
        + flow("to_a", "gw", "a", "同意" if with_conditions else None, "同意")
        + flow("to_b", "gw", "b", "退回" if with_conditions and default != "to_b" else None, "退回")
        + flow("a_done", "a", "merge")
        + flow("b_done", "b", "merge")
        + flow("to_end", "merge", "end")
    )


def by_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def element_ids(root: etree._Element, rule: str, context: LintContext | None = None) -> set[str | None]:
    return {f.element_id for f in by_rule(lint_document(root, "t.bpmn", context), rule)}


# (rule, a body that breaks it, the element named, a body that keeps it)
CASES = [
    ("start-event-required", LINE.replace('<startEvent id="start" name="开始"/>', "").replace(
        '<sequenceFlow id="f1" sourceRef="start" targetRef="work"/>', ""), "p", LINE),
    ("end-event-required", LINE.replace('<endEvent id="end" name="结束"/>', "").replace(
        '<sequenceFlow id="f2" sourceRef="work" targetRef="end"/>', ""), "p", LINE),
    ("single-blank-start-event", LINE + '<startEvent id="again" name="再开始"/>' + flow("f3", "again", "work"),
     "again", LINE + '<startEvent id="timed" name="定时"><timerEventDefinition><timeDuration>"P1D"</timeDuration>'
     "</timerEventDefinition></startEvent>" + flow("f3", "timed", "work")),
    ("no-disconnected", LINE + '<task id="alone" name="孤立"/>', "alone", LINE),
    ("no-implicit-start", LINE + '<task id="orphan" name="无来源"/>' + flow("f3", "orphan", "end"), "orphan", LINE),
    ("no-implicit-split", LINE + '<endEvent id="end2" name="另一结束"/>' + flow("f3", "work", "end2"), "work",
     LINE.replace('targetRef="end"/>', 'targetRef="fork"/>') + '<parallelGateway id="fork"/><endEvent id="end2" '
     'name="另一结束"/>' + flow("f3", "fork", "end") + flow("f4", "fork", "end2")),
    ("no-implicit-join", LINE + '<startEvent id="s2" name="定时开始"><timerEventDefinition><timeDate>"2026-01-01"'
     "</timeDate></timerEventDefinition></startEvent>" + flow("f3", "s2", "work"), "work", LINE),
    ("conditional-flows", decision(default=None), "gw", decision()),
    ("no-gateway-join-fork", '<startEvent id="s" name="开始"/><startEvent id="s2" name="定时">'
     '<timerEventDefinition><timeDate>"2026-01-01"</timeDate></timerEventDefinition></startEvent>'
     '<parallelGateway id="pg"/>' + TASKS_AB + '<endEvent id="e" name="结束"/><endEvent id="e2" name="结束2"/>'
     + flow("x1", "s", "pg") + flow("x2", "s2", "pg") + flow("x3", "pg", "a") + flow("x4", "pg", "b")
     + flow("x5", "a", "e") + flow("x6", "b", "e2"), "pg", decision()),
    ("label-required", LINE.replace('name="办理"', ""), "work", LINE),
    ("no-duplicate-sequence-flows", LINE + flow("f2b", "work", "end"), "f2b", LINE),
    ("flow-reference", LINE + flow("f3", "work", "nowhere"), "f3", LINE),
    ("boundary-attachment", LINE + '<boundaryEvent id="late" name="超时" attachedToRef="ghost"><timerEventDefinition>'
     '<timeDuration>"P1D"</timeDuration></timerEventDefinition></boundaryEvent><endEvent id="e3" name="超时结束"/>'
     + flow("f3", "late", "e3"), "late", LINE + '<boundaryEvent id="late" name="超时" attachedToRef="work">'
     '<timerEventDefinition><timeDuration>"P1D"</timeDuration></timerEventDefinition></boundaryEvent>'
     '<endEvent id="e3" name="超时结束"/>' + flow("f3", "late", "e3")),
    ("default-flow", decision(default="f2"), "gw", decision()),
    ("call-activity", with_work('<callActivity id="work" name="办理" calledElement="missing_process"/>'), "work",
     with_work('<callActivity id="work" name="办理" calledElement="p"/>')),
    ("single-event-definition", with_work('<intermediateCatchEvent id="work" name="等待"><timerEventDefinition>'
     '<timeDuration>"P1D"</timeDuration></timerEventDefinition><signalEventDefinition/></intermediateCatchEvent>'),
     "work", with_work('<intermediateCatchEvent id="work" name="等待"><timerEventDefinition><timeDuration>"P1D"'
     "</timeDuration></timerEventDefinition></intermediateCatchEvent>")),
    ("timer-definition", LINE + '<boundaryEvent id="late" name="超时" attachedToRef="work"><timerEventDefinition/>'
     '</boundaryEvent><endEvent id="e3" name="超时结束"/>' + flow("f3", "late", "e3"), "late", LINE),
    ("event-based-gateway", '<startEvent id="s" name="开始"/><eventBasedGateway id="ebg"/>' + TASKS_AB
     + '<endEvent id="e" name="结束"/>' + flow("x1", "s", "ebg") + flow("x2", "ebg", "a") + flow("x3", "ebg", "b")
     + flow("x4", "a", "e") + flow("x5", "b", "e"), "ebg", LINE),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "bad", "element", "good"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_fires_on_a_broken_model_and_not_on_a_sound_one(rule: str, bad: str, element: str, good: str) -> None:
    assert element in element_ids(model(bad), rule)
    assert element_ids(model(good), rule) == set()


def test_a_sound_model_and_the_programme_have_no_findings() -> None:
    assert lint_document(model(LINE), "t.bpmn") == []
    assert lint_document(model(decision()), "t.bpmn") == []
    programme = sorted((ROOT / "processes").glob("*.bpmn"))
    assert programme and lint_files(programme) == []


def test_a_finding_names_file_line_element_rule_and_severity() -> None:
    root = model(LINE + '<task id="alone" name="孤立"/>')
    [finding] = lint_document(root, "demo.bpmn")
    assert (finding.file, finding.element_id, finding.element_name) == ("demo.bpmn", "alone", "孤立")
    assert (finding.severity, finding.rule) == ("error", "no-disconnected")
    assert finding.line == 7 and "never runs" in finding.message  # LINE spans lines 1-6
    assert str(finding).startswith("demo.bpmn:7: error [no-disconnected] alone (孤立):")


def test_style_rules_warn_and_execution_rules_are_errors() -> None:
    unnamed = lint_document(model(LINE.replace('name="办理"', "")), "t.bpmn")
    assert {(f.rule, f.severity) for f in unnamed} == {("label-required", "warning")}
    dead_end = model(LINE + '<task id="tail" name="尾"/>' + flow("f3", "start", "tail"))
    assert ("no-implicit-end", "warning") in {(f.rule, f.severity) for f in lint_document(dead_end, "t.bpmn")}
    gateway_dead_end = model(LINE + XOR.format(default="") + flow("f3", "work", "gw"))
    assert ("no-implicit-end", "error") in {(f.rule, f.severity) for f in lint_document(gateway_dead_end, "t.bpmn")}


def test_conditional_flows_also_catches_an_unconditioned_branch_and_conditions_on_task_flows() -> None:
    assert "to_a" in element_ids(model(decision(with_conditions=False)), "conditional-flows")
    task_conditions = LINE + '<endEvent id="e2" name="另一"/>' + flow("f3", "work", "e2", "x")
    assert "work" in element_ids(model(task_conditions), "conditional-flows")
    unnamed_choice = decision().replace('name="同意"', 'name=""', 1)
    assert "to_a" in element_ids(model(unnamed_choice), "label-required")


def test_flows_may_not_cross_a_sub_process_border_and_sub_processes_need_start_and_end() -> None:
    body = with_work('<subProcess id="work" name="子流程"><task id="inner" name="内"/></subProcess>')
    root = model(body + flow("f3", "start", "inner"))
    [crossing] = by_rule(lint_document(root, "t.bpmn"), "flow-reference")
    assert crossing.element_id == "f3" and "another (sub-)process" in crossing.message
    assert element_ids(root, "start-event-required") == {"work"}
    collapsed = model(with_work('<subProcess id="work" name="空"/>'))
    assert element_ids(collapsed, "end-event-required") == {"work"}


def test_messages_resolve_across_the_documents_linted_together() -> None:
    message = '<message id="m_done" name="done"/>'
    waiting = with_work(
        '<intermediateCatchEvent id="work" name="等回复">'
        '<messageEventDefinition messageRef="m_done"/></intermediateCatchEvent>'
    )
    sending = with_work(
        '<intermediateThrowEvent id="work" name="回复">'
        '<messageEventDefinition messageRef="m_done"/></intermediateThrowEvent>'
    )
    alone = lint_document(model(waiting, message), "wait.bpmn")
    assert {(f.rule, f.element_id) for f in alone} == {("message-unmatched", "work")}
    together = lint_documents([(model(waiting, message), "wait.bpmn"), (model(sending, message, "q"), "send.bpmn")])
    assert together == []
    [unknown] = by_rule(lint_document(model(waiting), "wait.bpmn"), "message-ref")
    assert (unknown.element_id, unknown.element_name) == ("work", "等回复")  # the event that holds the reference


def test_call_activities_resolve_against_the_context() -> None:
    caller = model(with_work('<callActivity id="work" name="办理" calledElement="q"/>'))
    assert element_ids(caller, "call-activity") == {"work"}
    assert element_ids(caller, "call-activity", LintContext(process_ids=frozenset({"q"}))) == set()


def test_other_documents_and_odd_content_give_no_traceback() -> None:
    dmn = etree.fromstring(b'<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d"/>')
    assert lint_document(dmn, "d.dmn") == []
    odd = model("<!-- a comment --><?pi x?>" + LINE + "<task/><sequenceFlow/>")
    findings = lint_document(odd, "odd.bpmn")
    assert {f.rule for f in findings} >= {"flow-reference"}
    assert lint_document(model(""), "empty.bpmn") == []  # a black-box pool: nothing to run


def test_lint_command_prints_findings_and_fails_on_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bpmn"
    broken.write_bytes(etree.tostring(model(LINE + '<task id="alone" name="孤立"/>')))
    result = CliRunner().invoke(lint_command, [str(broken)])
    assert result.exit_code == 1
    assert "broken.bpmn:7: error [no-disconnected] alone (孤立)" in result.stdout
    result = CliRunner().invoke(lint_command, [str(ROOT / "processes" / "zone_creation.bpmn"), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
