"""终止 by an administrator: admins may terminate any case but read none, so they reach a case's
termination page by its number from the admin page; it shows only what identifies the case."""

from __future__ import annotations

from sqlalchemy import select

from engine.db import read_session
from engine.models import HistoryEvent, Instance
from tests.web.conftest import World, signed_in


def _status(world: World) -> str:
    with read_session(world.engine().sessions) as session:
        return session.scalar(select(Instance.status).where(Instance.id == world.case_a))


def test_an_admin_terminates_from_the_case_termination_page(world: World) -> None:
    admin = signed_in(world.app, "admin")
    assert admin.get(f"/cases/{world.case_a}").status_code == 404  # admins do not read cases
    with read_session(world.engine().sessions) as session:
        number = session.scalar(select(Instance.business_key).where(Instance.id == world.case_a))
    assert 'action="/terminate"' in admin.get("/admin/users").get_data(as_text=True)
    assert "未找到" in admin.get("/terminate?case=不存在的编号", follow_redirects=True).get_data(as_text=True)
    found = admin.get(f"/terminate?case={number}")
    assert found.status_code == 302 and found.headers["Location"].endswith(f"/cases/{world.case_a}/terminate")
    page = admin.get(f"/cases/{world.case_a}/terminate").get_data(as_text=True)
    assert number in page and f'action="/cases/{world.case_a}/terminate"' in page
    assert "请县委抓紧调研" not in page  # the case's comments and data stay hidden
    done = admin.post(
        f"/cases/{world.case_a}/terminate", {"reason": "重复立案", "confirm": "yes"}, follow_redirects=True
    )
    assert done.status_code == 200 and "已终止" in done.get_data(as_text=True)
    assert _status(world) == "terminated"
    with read_session(world.engine().sessions) as session:
        last = session.scalars(
            select(HistoryEvent).where(HistoryEvent.instance_id == world.case_a).order_by(HistoryEvent.seq.desc())
        ).first()
        assert (last.command, last.actor, last.role) == ("terminate", "admin", "admin")
        assert last.payload["reason"] == "重复立案"


def test_the_termination_page_is_for_terminators_only(world: World) -> None:
    city = signed_in(world.app, "shenyang_sa")
    assert city.get(f"/cases/{world.case_a}/terminate").status_code == 403
    assert city.get(f"/terminate?case={world.case_a}").status_code == 403
    province = signed_in(world.app, "province_office")  # who may read the case gets the case page's form
    moved = province.get(f"/cases/{world.case_a}/terminate")
    assert moved.status_code == 302 and moved.headers["Location"].endswith(f"/cases/{world.case_a}#terminate")
