"""终止 cascades: terminating a case also terminates the running cases it started (``parent_id``), each
with its own history event naming the parent; the child alone can be terminated without its parent.

No shipped process keeps running after it starts another case (zone_creation ends right after starting
zone_term), so the test process ``tests/engine/cascade/cascade.bpmn`` starts a ``notice`` case and then
waits on its own step."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from engine.audit import verify_history
from engine.db import read_session
from engine.models import HistoryEvent, Instance, OpenTask
from engine.replay import replay_instance
from tests.engine.conftest import Desk

CASCADE = Path(__file__).parent / "cascade"


def _parent_and_child(desk: Desk) -> tuple[uuid.UUID, uuid.UUID]:
    desk.deploy_from(CASCADE)
    parent = desk.start("210181", username="province_office", process="cascade").id
    with read_session(desk.app.sessions) as session:
        child = session.scalar(select(Instance.id).where(Instance.parent_id == parent))
    assert child is not None
    return parent, child


def _state(desk: Desk, instance_id: uuid.UUID) -> tuple[str, list[str], HistoryEvent]:
    with read_session(desk.app.sessions) as session:
        status = session.scalar(select(Instance.status).where(Instance.id == instance_id))
        open_steps = list(session.scalars(select(OpenTask.bpmn_id).where(OpenTask.instance_id == instance_id)))
        last = session.scalars(
            select(HistoryEvent).where(HistoryEvent.instance_id == instance_id).order_by(HistoryEvent.seq.desc())
        ).first()
        session.expunge(last)
        return status, open_steps, last


def _replays(desk: Desk, instance_id: uuid.UUID) -> None:
    with read_session(desk.app.sessions) as session:
        result = replay_instance(desk.app.store, session, instance_id)
    assert result.matches, result.difference


def test_terminating_a_parent_terminates_its_running_child(desk: Desk) -> None:
    parent, child = _parent_and_child(desk)
    assert _state(desk, parent)[:2] == ("running", ["read"]) and _state(desk, child)[:2] == ("running", ["read"])
    with desk.as_user("admin") as (session, actor):
        desk.app.terminate_instance(session, actor, parent, "撤销试点")
    for case in (parent, child):
        status, open_steps, last = _state(desk, case)
        assert (status, open_steps) == ("terminated", [])
        assert (last.command, last.actor, last.role) == ("terminate", "admin", "admin")
        assert last.payload["reason"] == "撤销试点"
        _replays(desk, case)
    assert "terminated_with" not in _state(desk, parent)[2].payload
    assert _state(desk, child)[2].payload["terminated_with"] == str(parent)
    with read_session(desk.app.sessions) as session:
        assert verify_history(session).ok


def test_terminating_the_child_leaves_the_parent_running(desk: Desk) -> None:
    parent, child = _parent_and_child(desk)
    with desk.as_user("province_office") as (session, actor):
        desk.app.terminate_instance(session, actor, child, "单独撤回")
    assert _state(desk, child)[0] == "terminated"
    assert _state(desk, parent)[:2] == ("running", ["read"])
    _replays(desk, child)
    _replays(desk, parent)
