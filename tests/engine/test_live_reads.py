"""Reading a case (a task page, a case page) keeps its workflow live for the command that usually
follows, and never shows a workflow older than the stored row. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from engine import AppEngine, Settings, build_engine
from engine.access import load_actor
from engine.clock import FixedClock
from engine.db import read_session
from engine.models import Instance
from tests.support.scenario import Scenario
from tests.support.zone import fill, start


def count_deserializations(engine: AppEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    load_state = engine.store.serializer.load_state

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return load_state(*args, **kwargs)

    monkeypatch.setattr(engine.store.serializer, "load_state", counted)
    return calls


def test_a_task_read_then_completed_is_deserialized_once(
    engine: AppEngine, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(scenario)
    task = scenario.task("shenyang_sa", "recommend")
    engine.store._live.clear()  # as in a worker that has not seen the case yet
    calls = count_deserializations(engine, monkeypatch)
    with read_session(engine.sessions) as session:
        detail = engine.get_task(session, load_actor(session, "shenyang_sa"), task.id)
    assert detail.task.id == task.id and len(calls) == 1
    assert engine.store.is_live_task(task.id)

    view = scenario.complete_id("shenyang_sa", task.id, fill("recommend"))
    assert len(calls) == 1, "the command deserialized the case again"
    assert [t.step for t in view.open_tasks] == ["talent_cosign"]


def test_a_read_after_another_process_changed_the_case_shows_the_change(
    engine: AppEngine, scenario: Scenario, database_url: str, clock: FixedClock
) -> None:
    start(scenario)
    task = scenario.task("shenyang_sa", "recommend")
    with read_session(engine.sessions) as session:
        engine.get_task(session, load_actor(session, "shenyang_sa"), task.id)  # kept live here
    other = build_engine(Settings(database_url=database_url), clock)  # another worker process
    try:
        Scenario(other).complete_id("shenyang_sa", task.id, fill("recommend"))
    finally:
        other.db.dispose()
    with read_session(engine.sessions) as session:
        view = engine.get_instance(session, load_actor(session, "auditor"), scenario.instance_id)
        revision = session.get(Instance, scenario.instance_id).revision
    assert [t.step for t in view.open_tasks] == ["talent_cosign"]
    assert view.data["county_code"] == "210181"
    assert engine.store._live[scenario.instance_id][0] == revision


def test_a_read_does_not_put_back_an_older_workflow_over_one_a_command_kept_meanwhile(
    engine: AppEngine, scenario: Scenario
) -> None:
    start(scenario)
    task = scenario.task("shenyang_sa", "recommend")
    with read_session(engine.sessions) as session:
        instance = session.get(Instance, scenario.instance_id)
        with engine.store.reading(session, instance) as workflow:
            assert scenario.instance_id not in engine.store._live  # taken out while it is read
            scenario.complete_id("shenyang_sa", task.id, fill("recommend"))  # a command in another thread
        kept_revision, kept = engine.store._live[instance.id]
    assert kept is not workflow
    assert kept_revision == instance.revision + 1
