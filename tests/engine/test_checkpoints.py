"""Global anchors: a checkpoint of every case's head and count (and the admin chain's) makes deleting a
whole case with its events, or truncating the log, detectable; the checkpoints are chained too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import delete, select, update

from engine import useradmin
from engine.access import load_actor
from engine.audit import verify_history
from engine.checkpoints import write_checkpoint
from engine.db import read_session, write_session
from engine.models import AdminEvent, AuditCheckpoint, HistoryEvent, Instance, Notification, OpenTask
from tests.support.scenario import Scenario
from tests.support.zone import fill, start


def verified(scenario: Scenario):  # noqa: ANN201
    with read_session(scenario.engine.sessions) as session:
        return verify_history(session)


def anchor(scenario: Scenario) -> AuditCheckpoint:
    with write_session(scenario.engine.sessions) as session:
        checkpoint = write_checkpoint(session, scenario.engine.now(), "test")
        session.expunge(checkpoint)
        return checkpoint


def two_cases(scenario: Scenario) -> tuple:
    start(scenario, "210181")
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    first = scenario.instance_id
    start(scenario, "210124")
    return first, scenario.instance_id


def test_a_case_deleted_with_all_its_events_is_detected(scenario: Scenario) -> None:
    first, second = two_cases(scenario)
    checkpoint = anchor(scenario)
    assert (checkpoint.case_count, checkpoint.event_count, checkpoint.seq) == (2, 3, 1)
    assert verified(scenario).ok and verified(scenario).anchor == checkpoint.hash
    with write_session(scenario.engine.sessions) as session:  # remove every trace of the second case
        for table in (OpenTask, Notification, HistoryEvent):
            session.execute(delete(table).where(table.instance_id == second))
        session.execute(delete(Instance).where(Instance.id == second))
    result = verified(scenario)
    assert not result.ok
    assert result.first_break.instance_id == str(second) and "missing" in result.first_break.reason


def test_a_truncated_case_is_detected_even_with_its_head_rewritten(scenario: Scenario) -> None:
    first, _second = two_cases(scenario)
    anchor(scenario)
    with write_session(scenario.engine.sessions) as session:  # drop the last event and make the case agree
        last = session.scalar(select(HistoryEvent).where(HistoryEvent.instance_id == first, HistoryEvent.seq == 2))
        session.execute(
            update(Instance).where(Instance.id == first).values(event_count=1, last_event_hash=last.prev_hash)
        )
        session.delete(last)
    result = verified(scenario)
    assert [b.instance_id for b in result.breaks] == [str(first)]
    assert "checkpoint #1 recorded 2" in result.first_break.reason


def test_truncated_admin_chain_and_altered_checkpoints_are_detected(scenario: Scenario) -> None:
    start(scenario)
    with write_session(scenario.engine.sessions) as session:
        useradmin.add_user(session, load_actor(session, "admin"), scenario.engine.now(), "zhao_l", "赵", "s3cret-pass")
    anchor(scenario)
    anchor(scenario)
    assert verified(scenario).ok and verified(scenario).checkpoints == 2
    with write_session(scenario.engine.sessions) as session:
        session.execute(delete(AdminEvent))
    result = verified(scenario)
    assert [b.instance_id for b in result.breaks] == ["admin"]
    with write_session(scenario.engine.sessions) as session:
        session.execute(update(AuditCheckpoint).where(AuditCheckpoint.seq == 1).values(event_count=99))
    assert verified(scenario).breaks[-1].instance_id == "checkpoint"
    with write_session(scenario.engine.sessions) as session:
        session.execute(update(AuditCheckpoint).where(AuditCheckpoint.seq == 1).values(event_count=1))
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq == 1))
    assert verified(scenario).breaks[-1].instance_id == "checkpoint"


def test_anchor_cli_prints_the_hash_and_verify_reports_it(scenario: Scenario) -> None:
    start(scenario)
    env = {**os.environ, "DEMOZONE_DATABASE_URL": scenario.engine.settings.database_url}
    cli = [sys.executable, "-m", "engine", "audit"]
    written = subprocess.run([*cli, "anchor", "--json"], env=env, capture_output=True, text=True, check=False)
    assert written.returncode == 0, written.stderr
    summary = json.loads(written.stdout)
    assert summary["cases"] == 1 and len(summary["hash"]) == 64
    report = subprocess.run([*cli, "verify", "--json"], env=env, capture_output=True, text=True, check=False)
    assert report.returncode == 0 and json.loads(report.stdout)["anchor"] == summary["hash"]


@pytest.mark.parametrize(
    "edit", [{"cases": [["00000000-0000-0000-0000-000000000000", None, 0]]}, {"cases_hash": "0" * 64}]
)
def test_an_edited_case_list_or_its_hash_breaks_the_checkpoint(scenario: Scenario, edit: dict) -> None:
    start(scenario)
    anchor(scenario)
    assert verified(scenario).ok
    with write_session(scenario.engine.sessions) as session:
        session.execute(update(AuditCheckpoint).where(AuditCheckpoint.seq == 1).values(**edit))
    result = verified(scenario)
    assert result.breaks[0].instance_id == "checkpoint" and "altered" in result.breaks[0].reason
    assert result.anchor is None
