"""engine.simulate: cases driven to the end through the real engine, with coverage of the BPMN elements."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from engine import AppEngine, Settings
from engine.clock import Clock
from engine.coverage import SimulationReport
from engine.designer_cli import simulate_command
from engine.errors import InvalidInput, NotFound
from engine.simulate import simulate

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
RETURN_LOOPS = ("flow_talent_return", "flow_consent_return", "flow_cosign_return", "flow_decision_supplement")


def counts(report: SimulationReport) -> dict[str, int]:
    return {c.element_id: c.instances for c in report.node_coverage + report.flow_coverage}


def comparable(report: SimulationReport) -> dict[str, Any]:
    """The report without what differs between two runs of the same seed (random case ids, time taken)."""
    data = report.to_dict()
    data.pop("elapsed_seconds")
    for result in data["instances"]:
        result.pop("instance_id")
    return data


def test_zone_creation_cases_end_and_reach_every_ending_and_return_loop(
    fresh_engine: Callable[[], AppEngine],
) -> None:
    ticks: list[int] = []
    report = simulate(fresh_engine(), "zone_creation", 8, seed=3, progress=ticks.append)
    assert len(report.instances) == 8 and sum(ticks) == 8
    assert len(report.completed) + len(report.stuck) + len(report.failed) == 8
    assert report.failed == [] and report.stuck == []
    assert {"已批复", "不予批准"} <= set(report.outcomes())
    reached = counts(report)
    assert reached["end_approved"] and reached["end_rejected"]
    for loop in RETURN_LOOPS:
        assert reached[loop], loop
    # The non-interrupting timer fires while the county's report is late: 督办 is covered too.
    assert reached["research_timer"] and reached["flow_overdue"] and reached["end_overdue"]
    assert report.unreached_nodes == [] and report.unreached_flows == []
    assert reached["start"] == 8 and reached["flow_to_recommend"] == 8


def test_the_same_seed_takes_the_same_paths(fresh_engine: Callable[[], AppEngine]) -> None:
    first = simulate(fresh_engine(), "zone_creation", 4, seed=11)
    second = simulate(fresh_engine(), "zone_creation", 4, seed=11)
    assert comparable(first) == comparable(second)
    assert [r.outcome for r in first.instances] == [r.outcome for r in second.instances]


def test_coverage_tells_a_return_loop_from_the_forward_path(fresh_engine: Callable[[], AppEngine]) -> None:
    # With no returns and forward decisions only, the loops' gateways are reached but their flows are not.
    report = simulate(fresh_engine(), "zone_creation", 1, seed=1, return_rate=0.0, max_visits=0)
    reached = counts(report)
    assert report.completed and reached["gw_talent"] == 1 and reached["merge_recommend"] == 1
    assert {f.element_id for f in report.unreached_flows} >= set(RETURN_LOOPS)


def test_failed_and_stuck_cases_are_reported_not_raised(faults_engine: AppEngine) -> None:
    report = simulate(faults_engine, "sim_faults", 9, seed=2)
    assert report.completed and report.failed and report.stuck
    assert all("division by zero" in r.reason and "divide" in r.reason for r in report.failed)
    assert all("waiting at: wait_message" in r.reason for r in report.stuck)
    assert {r.outcome for r in report.completed} == {"正常结束"}
    # A failed step is rolled back with its command, so it shows in the failure, not in the coverage.
    assert {c.element_id for c in report.unreached_nodes} == {"divide", "end_divided", "end_message"}
    json.dumps(report.to_dict(), ensure_ascii=False)


def test_a_case_that_never_ends_is_stopped_at_the_step_budget(fresh_engine: Callable[[], AppEngine]) -> None:
    report = simulate(fresh_engine(), "zone_creation", 1, seed=1, max_steps=3)
    [stuck] = report.stuck
    assert stuck.steps == 3 and "after 3 steps" in stuck.reason and "open:" in stuck.reason


def test_simulation_needs_a_fixed_clock_and_a_deployed_process(fresh_engine: Callable[[], AppEngine]) -> None:
    engine = fresh_engine()
    with pytest.raises(NotFound):
        simulate(engine, "no_such_process", 1, seed=1)
    engine.clock = Clock()
    with pytest.raises(InvalidInput):
        simulate(engine, "zone_creation", 1, seed=1)


def test_simulate_command_prints_json_and_exits_zero_without_failures() -> None:
    # The main group's object is the engine; the command takes its folders and start time from its settings.
    obj = SimpleNamespace(settings=Settings(fixed_now=START))
    args = ["zone_creation", "--instances", "2", "--seed", "4", "--json"]
    result = CliRunner().invoke(simulate_command, args, obj=obj)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"]["completed"] == 2 and data["process"] == "zone_creation"
    assert {"node_coverage", "flow_coverage", "unreached_nodes", "unreached_flows"} <= set(data)
    text = CliRunner().invoke(simulate_command, ["zone_creation", "-n", "1", "--seed", "4"], obj=obj)
    assert text.exit_code == 0 and "flow nodes reached" in text.stdout and "never reached:" in text.stdout
