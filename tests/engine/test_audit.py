"""Tamper-evident history and replay: a case rebuilt from its events equals the stored case, and any
change to the events or to the stored state is reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select, update

from engine.audit import export_events, verify_history
from engine.db import read_session, write_session
from engine.models import HistoryEvent, Instance
from engine.replay import replay_instance
from tests.support.scenario import Scenario
from tests.support.zone import FAIR, GOOD, evaluate, fill, start, through_joint_request


def approved_case(scenario: Scenario) -> Scenario:
    """A case with a return, a fired timer, multi-instance evaluations and a 批复."""
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    scenario.return_task("shenyang_talent", "talent_cosign", "请补充")
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    scenario.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    scenario.advance(days=31)
    scenario.complete("shenyang_sa", "research_overdue", fill("research_overdue"))
    scenario.complete("xinmin_party", "research_report", fill("research_report"))
    scenario.complete("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
    scenario.complete("shenyang_sa", "joint_request", fill("joint_request"))
    scenario.complete("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
    evaluate(scenario, {"S001": GOOD, "S002": FAIR, "S003": GOOD})
    scenario.complete("province_office", "province_decision", fill("province_decision", province_decision="批准"))
    return scenario


def replay(scenario: Scenario):
    with read_session(scenario.engine.sessions) as session:
        return replay_instance(scenario.engine.store, session, scenario.instance_id)


def verify(scenario: Scenario):
    with read_session(scenario.engine.sessions) as session:
        return verify_history(session)


def test_a_finished_case_replays_to_its_stored_state(scenario: Scenario) -> None:
    approved_case(scenario)
    result = replay(scenario)
    assert result.matches, result.difference
    assert result.events == len(scenario.history())
    assert verify(scenario).ok


def test_a_running_case_replays_too(scenario: Scenario) -> None:
    start(scenario)
    through_joint_request(scenario)
    scenario.complete(
        "province_office", "assign_societies", fill("assign_societies", assigned_societies=["S001", "S002"])
    )
    scenario.complete(
        "s002",
        "society_evaluation",
        fill(
            "society_evaluation",
            **GOOD,
            veto_falsified=False,
            veto_no_leading_industry=False,
            veto_no_funding=False,
            veto_major_incident=False,
        ),
    )
    assert replay(scenario).matches


def test_a_corrupted_stored_state_is_reported(scenario: Scenario) -> None:
    approved_case(scenario)
    with write_session(scenario.engine.sessions) as session:
        instance = session.get(Instance, scenario.instance_id)
        state = json.loads(instance.state)
        state["data"]["approval"]["approval_no"] = "辽科协发〔2026〕99号"
        session.execute(update(Instance).where(Instance.id == instance.id).values(state=json.dumps(state)))
    scenario.engine.store._live.clear()
    result = replay(scenario)
    assert not result.matches
    assert "data differs" in result.difference and "99号" in result.difference


@pytest.mark.parametrize("tamper", ["alter", "delete", "reorder", "insert", "truncate"])
def test_tampered_history_is_detected(scenario: Scenario, tamper: str) -> None:
    start(scenario)
    through_joint_request(scenario)
    assert verify(scenario).ok
    with write_session(scenario.engine.sessions) as session:
        events = session.scalars(
            select(HistoryEvent).where(HistoryEvent.instance_id == scenario.instance_id).order_by(HistoryEvent.seq)
        ).all()
        third, fourth = events[2], events[3]
        if tamper == "alter":
            third.payload = {**third.payload, "data": {**third.payload["data"], "research_goals": "改写"}}
        elif tamper == "delete":
            session.delete(third)
        elif tamper == "reorder":
            third.seq, fourth.seq = -1, 3
            session.flush()
            third.seq = 4
        elif tamper == "insert":
            session.add(
                HistoryEvent(
                    instance_id=third.instance_id,
                    seq=len(events) + 1,
                    at=third.at,
                    actor="intruder",
                    command="complete",
                    payload={},
                    prev_hash=events[-1].hash,
                    hash="0" * 64,
                )
            )
        elif tamper == "truncate":
            session.delete(events[-1])
    result = verify(scenario)
    assert not result.ok
    assert result.first_break.instance_id == str(scenario.instance_id)
    if tamper in ("alter", "delete", "reorder"):
        assert result.first_break.seq in (3, 4)


def test_history_exports_as_json_and_csv(scenario: Scenario) -> None:
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    events = scenario.history()
    as_json = json.loads(export_events(events, "json"))
    assert [e["command"] for e in as_json] == ["start", "complete"]
    assert as_json[1]["payload"]["data"]["recommend_contact_person"]
    as_csv = export_events(events, "csv").splitlines()
    assert as_csv[0].startswith("seq,at,actor,role,org_code,command")
    assert len(as_csv) == 3


def test_audit_cli_reports_a_broken_chain_with_exit_1(scenario: Scenario) -> None:
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    env = {**os.environ, "DEMOZONE_DATABASE_URL": scenario.engine.settings.database_url}
    cli = [sys.executable, "-m", "engine"]
    clean = subprocess.run([*cli, "audit", "verify"], env=env, capture_output=True, text=True, check=False)
    assert clean.returncode == 0 and "history intact" in clean.stdout
    replayed = subprocess.run([*cli, "replay", "--all"], env=env, capture_output=True, text=True, check=False)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    with write_session(scenario.engine.sessions) as session:
        session.execute(update(HistoryEvent).where(HistoryEvent.seq == 2).values(actor="someone_else"))
    broken = subprocess.run([*cli, "audit", "verify", "--json"], env=env, capture_output=True, text=True, check=False)
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["first_break"]["seq"] == 2 and "altered" in report["first_break"]["reason"]
