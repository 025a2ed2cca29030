"""The read-only page of the administrators' chain and the global anchors (checkpoints), for auditors and
admins: it lists the changes and the checkpoints and reports a broken chain or a log that no longer
matches its latest checkpoint."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import delete, update

from engine import useradmin
from engine.access import load_actor
from engine.checkpoints import write_checkpoint
from engine.db import write_session
from engine.models import AdminEvent, HistoryEvent, Instance, Notification, OpenTask
from tests.web.conftest import World, signed_in


def _admin_change_and_checkpoint(world: World) -> str:
    engine = world.engine()
    with write_session(engine.sessions) as session:
        useradmin.add_user(session, load_actor(session, "admin"), engine.now(), "zhou_q", "周琴", "s3cret-pass")
        return write_checkpoint(session, engine.now(), "auditor").hash


@pytest.mark.parametrize("username", ["auditor", "admin"])
def test_auditors_and_admins_see_the_changes_and_checkpoints_verified(world: World, username: str) -> None:
    anchor = _admin_change_and_checkpoint(world)
    page = signed_in(world.app, username).get("/audit/chain").get_data(as_text=True)
    assert "管理变更链完整" in page and 'id="admin-event-1"' in page and "zhou_q" in page and "新增用户" in page
    assert "检查点完整" in page and 'id="checkpoint-1"' in page and anchor in page
    assert set(re.findall(r'<form method="post" action="([^"]+)"', page)) <= {"/language", "/logout"}  # read-only


def test_a_rewritten_admin_change_and_a_deleted_case_are_reported(world: World) -> None:
    _admin_change_and_checkpoint(world)
    with write_session(world.engine().sessions) as session:
        session.execute(update(AdminEvent).where(AdminEvent.seq == 1).values(target="someone_else"))
        for table in (HistoryEvent, OpenTask, Notification):
            session.execute(delete(table).where(table.instance_id == world.case_b))
        session.execute(delete(Instance).where(Instance.id == world.case_b))
    page = signed_in(world.app, "auditor").get("/audit/chain").get_data(as_text=True)
    assert "管理变更链已断裂" in page and "断裂于第 1 条变更" in page and "altered" in page
    assert "检查点校验未通过" in page and str(world.case_b) in page and "missing" in page


@pytest.mark.parametrize("username", ["shenyang_sa", "province_office", "designer"])
def test_others_cannot_open_it(world: World, username: str) -> None:
    response = signed_in(world.app, username).get("/audit/chain")
    assert response.status_code == 403 and "Traceback" not in response.get_data(as_text=True)
