"""终止 on the case page and in the API: 省科协 terminates with a confirmed reason; others are refused."""

from __future__ import annotations

from sqlalchemy import select

from engine.db import read_session
from engine.models import HistoryEvent, Instance
from tests.web.conftest import World, signed_in


def _status(world: World) -> str:
    with read_session(world.engine().sessions) as session:
        return session.scalar(select(Instance.status).where(Instance.id == world.case_a))


def test_province_office_terminates_from_the_case_page(world: World) -> None:
    user = signed_in(world.app, "province_office")
    page = user.get(f"/cases/{world.case_a}").get_data(as_text=True)
    assert f'action="/cases/{world.case_a}/terminate"' in page and "终止" in page
    unconfirmed = user.post(f"/cases/{world.case_a}/terminate", {"reason": "撤回"}, follow_redirects=True)
    assert "勾选" in unconfirmed.get_data(as_text=True) and _status(world) == "running"
    no_reason = user.post(f"/cases/{world.case_a}/terminate", {"reason": " ", "confirm": "yes"}, follow_redirects=True)
    assert "终止理由" in no_reason.get_data(as_text=True) and _status(world) == "running"
    done = user.post(
        f"/cases/{world.case_a}/terminate", {"reason": "县里撤回", "confirm": "yes"}, follow_redirects=True
    )
    assert done.status_code == 200 and "已终止" in done.get_data(as_text=True)
    assert _status(world) == "terminated"
    assert f'action="/cases/{world.case_a}/terminate"' not in done.get_data(as_text=True)
    assert "案件终止" in done.get_data(as_text=True)  # the timeline entry, with its reason


def test_others_see_no_form_and_are_refused(world: World) -> None:
    user = signed_in(world.app, "shenyang_sa")
    assert "/terminate" not in user.get(f"/cases/{world.case_a}").get_data(as_text=True)
    refused = user.post(f"/cases/{world.case_a}/terminate", {"reason": "x", "confirm": "yes"})
    assert refused.status_code == 403 and _status(world) == "running"


def test_the_api_terminates_with_a_reason(world: World) -> None:
    api = world.app.test_client()
    url = f"/api/v1/instances/{world.case_a}/terminate"
    as_city = {"Authorization": f"Bearer {world.tokens['shenyang_sa']}"}
    assert api.post(url, json={"reason": "x"}, headers=as_city).status_code == 403
    as_province = {"Authorization": f"Bearer {world.tokens['province_office']}"}
    missing = api.post(url, json={}, headers=as_province)
    assert missing.status_code == 400 and "reason" in missing.get_json()["error"]["details"]
    done = api.post(url, json={"reason": "县里撤回"}, headers=as_province)
    assert done.status_code == 200 and done.get_json()["status"] == "terminated"
    with read_session(world.engine().sessions) as session:
        last = session.scalars(
            select(HistoryEvent).where(HistoryEvent.instance_id == world.case_a).order_by(HistoryEvent.seq.desc())
        ).first()
        assert last.command == "terminate" and last.payload["reason"] == "县里撤回"
