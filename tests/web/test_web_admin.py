"""The admin page: users and roles changed by an administrator, each change recorded in the chain."""

from __future__ import annotations

from sqlalchemy import select

from engine.audit import verify_history
from engine.db import read_session
from engine.models import AdminEvent, User
from tests.web.conftest import Browser, World, signed_in


def test_an_admin_adds_disables_and_grants(world: World) -> None:
    admin = signed_in(world.app, "admin")
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "shenyang_sa" in page and "用户" in page
    added = admin.post(
        "/admin/users",
        {
            "username": "qian_m",
            "display_name": "钱敏",
            "password": "s3cret-pass",
            "role": "city_sa",
            "org_code": "210100",
        },
        follow_redirects=True,
    )
    assert added.status_code == 200 and "qian_m" in added.get_data(as_text=True)
    assert admin.post("/admin/users/qian_m/grant", {"role": "city_sa", "org_code": "210200"}).status_code == 302
    assert admin.post("/admin/users/qian_m/disable").status_code == 302
    bad = admin.post("/admin/users/qian_m/password", {"password": "short"}, follow_redirects=True)
    assert "密码至少8位" in bad.get_data(as_text=True)
    with read_session(world.engine().sessions) as session:
        user = session.scalar(select(User).where(User.username == "qian_m"))
        assert not user.active and len(user.roles) == 2
        commands = session.scalars(select(AdminEvent.command).order_by(AdminEvent.seq)).all()
        assert commands == ["user_add", "role_grant", "user_disable"]
        assert verify_history(session).ok
    assert Browser(world.app.test_client()).login("qian_m", "s3cret-pass").status_code != 302  # disabled: no sign-in


def test_others_are_refused(world: World) -> None:
    user = signed_in(world.app, "province_office")
    assert user.get("/admin/users").status_code == 403
    assert user.post("/admin/users/shenyang_sa/disable").status_code == 403
    with read_session(world.engine().sessions) as session:
        assert session.scalar(select(User.active).where(User.username == "shenyang_sa"))
