"""How a command saves a case: the stored state is exactly SpiffWorkflow's serialization without the spec,
although the JSON of finished tasks and of tasks not yet reached is reused from earlier saves; the
open-task rows a command reads as plain rows are written back correctly. Runs on SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from sqlalchemy import select

from engine import AppEngine
from engine.access import load_actor
from engine.db import read_session, write_session
from engine.models import Instance, OpenTask
from engine.serializer import MEMO_ATTRIBUTE
from engine.workflow import LiveWorkflow
from tests.support.scenario import Scenario
from tests.support.zone import GOOD, NO_VETO, evaluate, fill, start


def spiff_state(workflow: Any) -> dict[str, Any]:
    """SpiffWorkflow's own serialization of ``workflow`` (its default converters), the spec left out."""
    registry = BpmnWorkflowSerializer.configure(dict(SPIFF_CONFIG))
    BpmnWorkflowConverter(LiveWorkflow, registry, typename="BpmnWorkflow")
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
    state = json.loads(BpmnWorkflowSerializer(registry).serialize_json(workflow))
    del state["spec"], state["subprocess_specs"]
    return state


def assert_stored_state_is_spiffs(engine: AppEngine, case: Scenario) -> None:
    with read_session(engine.sessions) as session:
        instance = session.get(Instance, case.instance_id)
        stored = json.loads(instance.state)
        revision, live = engine.store._live[instance.id]  # the workflow the last command ran and saved
    assert revision == instance.revision
    assert stored == spiff_state(live)
    # The memo of reusable task dicts lets go of predicted tasks a decision dropped from the tree.
    assert len(getattr(live, MEMO_ATTRIBUTE)) <= len(live.tasks)


def test_each_saved_state_equals_spiffworkflows_serialization(engine: AppEngine, scenario: Scenario) -> None:
    steps = [
        ("shenyang_sa", "recommend", fill("recommend")),
        ("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意")),
        ("xinmin_party", "research_report", fill("research_report")),
        ("shenyang_org", "org_consent", fill("org_consent", consent_decision="退回")),
        ("xinmin_party", "research_report", fill("research_report")),
        ("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意")),
        ("shenyang_sa", "joint_request", fill("joint_request")),
        ("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意")),
    ]
    start(scenario)
    assert_stored_state_is_spiffs(engine, scenario)
    for username, step, data in steps:
        scenario.complete(username, step, data)
        assert_stored_state_is_spiffs(engine, scenario)
    evaluate(scenario, {"S001": {**NO_VETO, **GOOD}, "S002": {**NO_VETO, **GOOD}})  # multi-instance
    assert_stored_state_is_spiffs(engine, scenario)


def test_a_completion_after_reading_the_task_in_the_same_transaction(engine: AppEngine, scenario: Scenario) -> None:
    """A web request may load the task (an ORM row) before completing it: the row must not outlive the task."""
    start(scenario)
    task = scenario.task("shenyang_sa", "recommend")
    with write_session(engine.sessions) as session:
        actor = load_actor(session, "shenyang_sa")
        engine.get_task(session, actor, task.id)
        view = engine.complete_task(session, actor, task.id, fill("recommend"))
        assert session.get(OpenTask, task.id) is None
    assert [t.step for t in view.open_tasks] == ["talent_cosign"]
    with read_session(engine.sessions) as session:
        stored = session.scalars(select(OpenTask.bpmn_id).where(OpenTask.instance_id == scenario.instance_id)).all()
    assert stored == ["talent_cosign"]
    assert [t.step for t in scenario.view().open_tasks] == ["talent_cosign"]


def test_the_engines_scans_see_the_state_spiffworkflows_property_gives(engine: AppEngine, scenario: Scenario) -> None:
    """The engine's loops over every task read ``Task._state`` (engine/workflow.py): a SpiffWorkflow whose
    ``state`` property stopped returning it would make them see another state than SpiffWorkflow does."""
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    with read_session(engine.sessions) as session:
        instance = session.scalar(select(Instance))
        workflow = engine.store.load_copy(session, instance)
    tasks = list(workflow.tasks.values())
    assert len({t.state for t in tasks}) >= 3, "finished, ready and predicted tasks"
    for task in tasks:
        assert task._state == task.state
        task._state = task.state ^ 0xFFFF  # a different value is seen through the property too
        assert task.state == task._state
