"""终止: 省科协 or an administrator ends a running case early; its tasks, timers and call-activity
subprocesses go, the history records who and why, and replay reproduces it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import select

from engine.access import load_actor
from engine.audit import verify_history
from engine.db import read_session, write_session
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.models import Instance, OpenTask
from engine.replay import replay_instance
from tests.support.scenario import Scenario
from tests.support.zone import GOOD, evaluate, fill, start, through_joint_request


def terminate(scenario: Scenario, username: str, reason: str, instance_id: uuid.UUID | None = None):  # noqa: ANN201
    with write_session(scenario.engine.sessions) as session:
        actor = load_actor(session, username)
        return scenario.engine.terminate_instance(session, actor, instance_id or scenario.instance_id, reason)


def stored(scenario: Scenario, instance_id: uuid.UUID) -> tuple[str, int, object]:
    with read_session(scenario.engine.sessions) as session:
        instance = session.get(Instance, instance_id)
        open_rows = session.scalar(select(OpenTask.id).where(OpenTask.instance_id == instance_id).limit(1))
        return instance.status, open_rows, instance.next_timer_at


def replays(scenario: Scenario, instance_id: uuid.UUID):  # noqa: ANN201
    with read_session(scenario.engine.sessions) as session:
        return replay_instance(scenario.engine.store, session, instance_id)


def test_province_office_terminates_a_running_case_with_a_reason(scenario: Scenario) -> None:
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    assert scenario.open_steps()
    view = terminate(scenario, "province_office", "  县里撤回申报  ")
    assert view.status == "terminated" and view.open_tasks == []
    assert stored(scenario, scenario.instance_id) == ("terminated", None, None)
    last = scenario.history()[-1]
    assert (last.command, last.actor, last.role) == ("terminate", "province_office", "province_office")
    assert last.payload["reason"] == "县里撤回申报" and last.payload["cancelled"]
    assert scenario.tasks("shenyang_talent") == []
    result = replays(scenario, scenario.instance_id)
    assert result.matches, result.difference
    with read_session(scenario.engine.sessions) as session:
        assert verify_history(session).ok
    with pytest.raises(Conflict):
        terminate(scenario, "province_office", "再次终止")


def test_a_terminated_case_frees_the_county_for_a_new_case(scenario: Scenario) -> None:
    start(scenario)
    first = scenario.instance_id
    terminate(scenario, "admin", "重复申报")
    start(scenario)
    assert scenario.instance_id != first


def test_terminating_a_term_case_cancels_its_call_activity(scenario: Scenario) -> None:
    start(scenario)
    through_joint_request(scenario)
    evaluate(scenario, {"S001": GOOD, "S002": GOOD})
    scenario.complete("province_office", "province_decision", fill("province_decision", province_decision="批准"))
    with read_session(scenario.engine.sessions) as session:
        term = session.scalar(select(Instance).where(Instance.parent_id == scenario.instance_id))
        assert term.status == "running"
        term_id = term.id
    term_case = Scenario(scenario.engine)
    term_case.instance_id = term_id
    term_case.complete("xinmin_office", "group_registration", fill("group_registration"))
    term_case.complete("shenyang_org", "talent_city", fill("talent_city"))
    term_case.complete("xinmin_party", "talent_county", fill("talent_county"))
    assert "annual_plan" in term_case.open_steps()  # inside the first year's call activity
    terminate(scenario, "province_office", "示范区主动退出", term_id)
    assert stored(scenario, term_id) == ("terminated", None, None)
    with read_session(scenario.engine.sessions) as session:
        workflow = scenario.engine.store.load_copy(session, session.get(Instance, term_id))
        assert workflow.subprocesses, "the term case runs its first year as a call activity"
        for subprocess_workflow in workflow.subprocesses.values():
            assert subprocess_workflow.is_completed() and not subprocess_workflow.success
    scenario.advance(days=400)  # no timer of a terminated case fires
    assert stored(scenario, term_id)[0] == "terminated"
    result = replays(scenario, term_id)
    assert result.matches, result.difference


@pytest.mark.parametrize("username", ["shenyang_sa", "auditor", "xinmin_party"])
def test_others_may_not_terminate(scenario: Scenario, username: str) -> None:
    start(scenario)
    with pytest.raises((PermissionDenied, NotFound)):
        terminate(scenario, username, "越权")
    assert stored(scenario, scenario.instance_id)[0] == "running"
    assert [e.command for e in scenario.history()] == ["start"]


@pytest.mark.parametrize("reason", ["", "   ", "长" * 501])
def test_a_reason_is_required(scenario: Scenario, reason: str) -> None:
    start(scenario)
    with pytest.raises(InvalidInput) as error:
        terminate(scenario, "province_office", reason)
    assert "reason" in error.value.details
    assert stored(scenario, scenario.instance_id)[0] == "running"


def test_terminate_cli(scenario: Scenario) -> None:
    start(scenario)
    env = {**os.environ, "DEMOZONE_DATABASE_URL": scenario.engine.settings.database_url}
    cli = [sys.executable, "-m", "engine", "terminate", str(scenario.instance_id)]
    refused = subprocess.run([*cli, "--as", "auditor", "--reason", "x"], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    done = subprocess.run(
        [*cli, "--as", "province_office", "--reason", "撤回", "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert '"terminated"' in done.stdout
