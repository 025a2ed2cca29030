"""Restricted scripting: real SpiffWorkflow processes run with engine.scripting.ScriptEngine."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from engine.scripting import (
    RestrictedEnvironment,
    ScriptEngine,
    ScriptError,
    check_expression,
    check_script,
)

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="demo">"""

# start -> script task -> exclusive gateway: condition -> end_big, default -> end_small
SCRIPT_BPMN = HEAD + """
  <bpmn:process id="scripted" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute"/>
    <bpmn:scriptTask id="compute"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="compute" targetRef="gw"/>
    <bpmn:exclusiveGateway id="gw" default="to_small"/>
    <bpmn:sequenceFlow id="to_big" sourceRef="gw" targetRef="end_big">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_small" sourceRef="gw" targetRef="end_small"/>
    <bpmn:endEvent id="end_big"/>
    <bpmn:endEvent id="end_small"/>
  </bpmn:process>
</bpmn:definitions>"""

# start -> service task calling {operation}(amount=amount * 2, label='x') -> end
SERVICE_BPMN = HEAD + """
  <bpmn:process id="serviced" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <bpmn:serviceTask id="call">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id={operation} resultVariable="reply">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="amount" type="int" value="amount * 2"/>
            <spiffworkflow:parameter id="label" type="str" value="'x'"/>
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _workflow(bpmn: str, process_id: str, engine: ScriptEngine, data: dict[str, Any]) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(bpmn.encode())
    workflow = BpmnWorkflow(parser.get_spec(process_id), script_engine=engine)
    workflow.get_next_task(spec_name="Start").data.update(data)
    return workflow


def _scripted(script: str, condition: str = "total > 10", data: dict[str, Any] | None = None,
              engine: ScriptEngine | None = None) -> BpmnWorkflow:
    bpmn = SCRIPT_BPMN.format(script=_escape(script), condition=_escape(condition))
    return _workflow(bpmn, "scripted", engine or ScriptEngine(), data or {})


def _task_data(workflow: BpmnWorkflow, spec_name: str) -> dict[str, Any]:
    return workflow.get_next_task(spec_name=spec_name).data


def test_import_in_a_script_task_is_refused_and_the_task_errors() -> None:
    workflow = _scripted("import os\npid = os.getpid()", data={"total": 1})
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    assert "Import statements are not allowed" in str(caught.value)
    assert caught.value.error_type == "ScriptError"
    task = workflow.get_next_task(spec_name="compute")
    assert task.state == TaskState.ERROR
    assert "pid" not in task.data and "os" not in task.data
    assert not workflow.is_completed()


@pytest.mark.parametrize(
    ("script", "error_type", "fragment"),
    [
        ("n = len(().__class__.__mro__[1].__subclasses__())", "ScriptError", '"__mro__" is an invalid'),
        ("os = __import__('os')", "ScriptError", '"__import__" is an invalid variable name'),
        ("x = eval('1 + 1')", "ScriptError", "Eval calls are not allowed"),
        ("exec('x = 1')", "ScriptError", "Exec calls are not allowed"),
        ("text = open('/etc/hostname').read()", "NameError", "'open' is not defined"),
        ("cls = getattr((), '__class__')", "NameError", "'getattr' is not defined"),
        ("s = '{0.__class__}'.format(1)", "NotImplementedError", "format*() methods of `str` is not safe"),
        ("x = 2\nx **= 10", "ScriptError", "augmented assignment **= is not allowed"),
    ],
)
def test_escapes_are_refused(script: str, error_type: str, fragment: str) -> None:
    workflow = _scripted(script)
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    assert caught.value.error_type == error_type
    assert fragment in str(caught.value)
    assert workflow.get_next_task(spec_name="compute").state == TaskState.ERROR


def test_a_normal_script_runs_and_its_variables_land_in_task_data() -> None:
    script = """
total = sum(i * amount for i in items)
total += 1
label = f'{total:05d}'
squares = [i * i for i in items]
colour = options.get('colour', 'none')
size = options.get('size', 'M')
options['seen'] = True
first, *rest = items
words = 'a'
words += 'b'
gone_soon = 1
del obsolete, gone_soon
def helper_fn(x):
    return x
doubled = helper_fn(2) * 2
"""
    data = {"items": [1, 2, 3], "amount": 5, "options": {"colour": "red"}, "obsolete": "x"}
    workflow = _scripted(script, data=data)
    workflow.do_engine_steps()
    assert workflow.is_completed()
    end = _task_data(workflow, "end_big")
    assert end == {
        "items": [1, 2, 3], "amount": 5, "options": {"colour": "red", "seen": True},
        "total": 31, "label": "00031", "squares": [1, 4, 9], "colour": "red", "size": "M",
        "first": 1, "rest": [2, 3], "words": "ab", "doubled": 4,
    }


def test_helpers_are_callable_and_never_leak_into_task_data() -> None:
    helpers = {"today": lambda: "2024-05-01", "add_years": lambda iso, n: f"{int(iso[:4]) + n}{iso[4:]}"}
    engine = ScriptEngine(helpers=helpers)
    workflow = _scripted("due = add_years(today(), 2)\ntotal = 0", condition="due > today()", engine=engine)
    workflow.do_engine_steps()
    data = _task_data(workflow, "end_big")
    assert data == {"due": "2026-05-01", "total": 0}


@pytest.mark.parametrize(
    ("items", "taken", "skipped"), [([5, 6], "end_big", "end_small"), ([1, 2], "end_small", "end_big")]
)
def test_gateway_conditions_are_evaluated(items: list[int], taken: str, skipped: str) -> None:
    condition = "total > 10 and len(items) == 2"
    workflow = _scripted("total = sum(items)", condition=condition, data={"items": items})
    workflow.do_engine_steps()
    assert workflow.is_completed()
    assert workflow.get_next_task(spec_name=taken).state == TaskState.COMPLETED
    assert workflow.get_next_task(spec_name=skipped, state=TaskState.COMPLETED) is None


def test_a_forbidden_condition_stops_the_process() -> None:
    workflow = _scripted("total = 1", condition="total.__class__ is int")
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    assert caught.value.error_type == "ScriptError"
    assert not workflow.is_completed()


def test_restricted_environment_directly() -> None:
    env = RestrictedEnvironment({"now": lambda: "12:00"})
    context: dict[str, Any] = {"a": 2, "b": 3}
    assert env.evaluate("a * b + len(now())", context) == 11
    assert env.evaluate("x > 1", context, external_context={"x": 5}) is True
    assert env.execute("c = a + x\nf = lambda: 1\nprint(c)", context, external_context={"x": 5}) is True
    assert context == {"a": 2, "b": 3, "c": 7}
    with pytest.raises(ScriptError, match="syntax error: line 1"):
        env.evaluate("a ==", context)


def _service_workflow(operation: str, services: dict[str, Any]) -> BpmnWorkflow:
    bpmn = SERVICE_BPMN.format(operation=quoteattr(operation))
    return _workflow(bpmn, "serviced", ScriptEngine(services=services), {"amount": 21, "name": "张三"})


def test_service_tasks_dispatch_to_the_registry_with_evaluated_params() -> None:
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def lookup(task_data: dict[str, Any], **params: Any) -> dict[str, Any]:
        calls.append((task_data, params))
        task_data["amount"] = -1  # a copy: must not reach the process
        return {"greeting": f"你好 {task_data['name']}", "amount": params["amount"], "label": params["label"]}

    workflow = _service_workflow("lookup", {"lookup": lookup})
    workflow.do_engine_steps()
    assert workflow.is_completed()
    assert calls == [({"amount": -1, "name": "张三"}, {"amount": 42, "label": "x"})]
    data = _task_data(workflow, "end")
    assert data["reply"] == {"greeting": "你好 张三", "amount": 42, "label": "x"}
    assert data["amount"] == 21


def test_direct_service_call_returns_json() -> None:
    engine = ScriptEngine(services={"echo": lambda data, **params: {**params, "n": data["n"]}})

    class FakeTask:
        data = {"n": 1}

    result = engine.call_service(FakeTask(), "echo", {"city": {"value": "沈阳", "type": "str"}})
    assert result == '{"city": "沈阳", "n": 1}'


def test_an_unknown_service_operation_fails_the_task() -> None:
    workflow = _service_workflow("nope", {"lookup": lambda data, **params: {}})
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    assert "unknown service operation 'nope'" in str(caught.value)
    assert caught.value.error_type == "ScriptError"
    assert workflow.get_next_task(spec_name="call").state == TaskState.ERROR


def test_a_failing_service_is_wrapped_with_its_error() -> None:
    def broken(task_data: dict[str, Any], **params: Any) -> Any:
        raise ValueError("registry offline")

    workflow = _service_workflow("broken", {"broken": broken})
    with pytest.raises(WorkflowTaskException, match="ValueError: registry offline") as caught:
        workflow.do_engine_steps()
    assert caught.value.error_type == "ValueError"


@pytest.mark.parametrize("text", ["amount > 3", "today() < due and status in ('a', 'b')", "f'{x:05d}'"])
def test_check_expression_accepts_good_code(text: str) -> None:
    assert check_expression(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("amount >", "syntax error: line 1: invalid syntax at statement: 'amount >'"),
        ("x = 1", "syntax error: line 1: invalid syntax at statement: 'x = 1'"),
        ("().__class__", 'forbidden construct: line 1: "__class__" is an invalid attribute name'),
        ("__import__('os')", 'forbidden construct: line 1: "__import__" is an invalid variable name'),
        ("", "syntax error: invalid syntax"),
    ],
)
def test_check_expression_reports_bad_code(text: str, message: str) -> None:
    result = check_expression(text)
    assert result is not None and result.startswith(message)
    assert "\n" not in result


@pytest.mark.parametrize("text", ["", "total = sum(items)\ntotal += 1", "for k, v in d.items():\n    n = k"])
def test_check_script_accepts_good_code(text: str) -> None:
    assert check_script(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("import os", "forbidden construct: line 1: Import statements are not allowed."),
        ("x = 1\nfrom os import path", "forbidden construct: line 2: Import statements are not allowed."),
        ("y = x.__dict__", 'forbidden construct: line 1: "__dict__" is an invalid attribute name'),
        ("a = 1\nb = (", "syntax error: line 2: '(' was never closed"),
        ("s = 'a\nb'", "syntax error: line 1: unterminated string literal"),
    ],
)
def test_check_script_reports_bad_code(text: str, message: str) -> None:
    result = check_script(text)
    assert result is not None and result.startswith(message)
    assert "\n" not in result


def test_script_error_is_not_a_syntax_error() -> None:
    assert not issubclass(ScriptError, SyntaxError)
    with pytest.raises(ScriptError) as caught:
        RestrictedEnvironment().execute("import os", {})
    assert str(caught.value) == "forbidden construct: line 1: Import statements are not allowed."
