"""The notification centre: the unread count in every page's header, the list, marking read (one or
all, only one's own), the link to the case, and per-kind e-mail preferences."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from engine.db import write_session
from engine.models import Notification, NotificationPreference
from tests.conftest import START
from tests.web.conftest import World, act, fill, open_task, signed_in

MESSAGES = (  # (user, kind, message, minutes after START)
    ("xinmin_party", "催办", "调研报告即将到期，请尽快办理。", 1),
    ("xinmin_party", "决定", "新民市的推荐已由人才办会签同意。", 2),
    ("xinmin_party", "督办", "调研报告已逾期，市科协督办。", 3),
    ("shenyang_sa", "通知", "新民市已进入调研阶段。", 4),
)


@pytest.fixture
def notes(world: World) -> dict[str, int]:
    """The messages above, unread, on ``world``'s case A; returns their ids by message."""
    ids = {}
    with write_session(world.engine().sessions) as session:
        session.execute(delete(Notification))  # the 新任务 the template's commands wrote: start from these alone
        for username, kind, message, minutes in MESSAGES:
            row = Notification(username=username, kind=kind, message=message, instance_id=world.case_a,
                               created_at=START + timedelta(minutes=minutes))
            session.add(row)
            session.flush()
            ids[message] = row.id
    return ids


def _badge(page: str) -> str | None:
    import re

    match = re.search(r'class="notify-link"[^>]*>[^<]*(?:<span class="badge unread"[^>]*>(\d+)</span>)?</a>', page)
    assert match, "no notification link in the header"
    return match.group(1)


def test_the_header_counts_unread_notifications_on_every_page(world: World, notes: dict[str, int]) -> None:
    user = signed_in(world.app, "xinmin_party")
    for url in ("/inbox", "/inbox/done", f"/cases/{world.case_a}", "/notifications/", "/no-such-page"):
        assert _badge(user.get(url).get_data(as_text=True)) == "3", url
    assert _badge(signed_in(world.app, "shenyang_sa").get("/inbox").get_data(as_text=True)) == "1"
    assert _badge(signed_in(world.app, "auditor").get("/inbox").get_data(as_text=True)) is None


def test_the_list_shows_ones_own_notifications_newest_first(world: World, notes: dict[str, int]) -> None:
    page = signed_in(world.app, "xinmin_party").get("/notifications/").get_data(as_text=True)
    first, second, third = (page.index(m) for m in ("调研报告已逾期", "推荐已由人才办会签同意", "调研报告即将到期"))
    assert first < second < third
    assert "新民市已进入调研阶段" not in page  # shenyang_sa's
    for label in ("催办", "督办", "决定"):
        assert f">{label}</span>" in page
    assert page.count(f'href="/cases/{world.case_a}"') == 3 and page.count("标为已读") >= 3


def test_marking_one_and_all_as_read(world: World, notes: dict[str, int]) -> None:
    user = signed_in(world.app, "xinmin_party")
    reminder = notes["调研报告即将到期，请尽快办理。"]
    response = user.post(f"/notifications/{reminder}/read", {"next": "/notifications/?show=unread"})
    assert response.status_code == 302 and response.headers["Location"] == "/notifications/?show=unread"
    unread = user.get("/notifications/?show=unread").get_data(as_text=True)
    assert _badge(unread) == "2" and "调研报告即将到期" not in unread and "调研报告已逾期" in unread
    assert "已读于" in user.get("/notifications/").get_data(as_text=True)
    assert user.post(f"/notifications/{reminder}/read").status_code == 302  # again: nothing to do
    response = user.post("/notifications/read-all", {"next": "https://evil.example/"})
    assert response.headers["Location"] == "/notifications/"  # no open redirect
    page = user.get("/notifications/").get_data(as_text=True)
    assert _badge(page) is None and "已将 2 条通知标为已读" in page
    assert "没有未读通知" in user.get("/notifications/?show=unread").get_data(as_text=True)
    assert _badge(signed_in(world.app, "shenyang_sa").get("/inbox").get_data(as_text=True)) == "1"


def test_nobody_marks_another_users_notification(world: World, notes: dict[str, int]) -> None:
    theirs = notes["新民市已进入调研阶段。"]
    user = signed_in(world.app, "xinmin_party")
    assert user.post(f"/notifications/{theirs}/read").status_code == 302  # ignored, so ids cannot be probed
    assert user.post("/notifications/999999/read").status_code == 302
    assert _badge(user.get("/inbox").get_data(as_text=True)) == "3"
    with world.engine().sessions() as session:
        assert session.get(Notification, theirs).read_at is None


def test_preferences_per_kind(world: World) -> None:
    user = signed_in(world.app, "xinmin_party")
    page = user.get("/notifications/preferences").get_data(as_text=True)
    assert page.count('type="checkbox" name="email"') == 6 and "checked" not in page.split("<tbody>")[1]
    assert user.post("/notifications/preferences", [("email", "催办"), ("email", "督办")]).status_code == 302
    page = user.get("/notifications/preferences").get_data(as_text=True)
    assert "通知设置已保存" in page
    assert 'value="催办" checked' in page and 'value="督办" checked' in page and 'value="通知" checked' not in page
    user.post("/notifications/preferences", [("email", "决定")])
    with world.engine().sessions() as session:
        rows = session.execute(
            select(NotificationPreference.kind, NotificationPreference.email).where(
                NotificationPreference.username == "xinmin_party"
            )
        ).all()
    assert dict(rows) == {"新任务": False, "退回": False, "催办": False, "督办": False, "通知": False, "决定": True}
    assert user.post("/notifications/preferences", [("email", "广告")]).status_code == 400


def test_the_english_notification_centre(world: World, notes: dict[str, int]) -> None:
    user = signed_in(world.app, "xinmin_party")
    user.post("/language", {"lang": "en"})
    page = user.get("/notifications/").get_data(as_text=True)
    assert "Notifications" in page and "Reminder" in page and "Escalation" in page and "Mark all as read" in page
    assert "Also by e-mail" in user.get("/notifications/preferences").get_data(as_text=True)


def test_signed_out_users_are_sent_to_sign_in(shared: World) -> None:
    client = shared.app.test_client()
    for url in ("/notifications/", "/notifications/preferences", "/overview", "/audit/"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url


def test_the_commands_new_tasks_and_returns_arrive_in_the_centre(world: World) -> None:
    party = signed_in(world.app, "xinmin_party")
    page = party.get("/notifications/").get_data(as_text=True)
    assert ">新任务</span>" in page and "新民市 · 示范区创建 — 县委组织调研（办理期限 2026-04-01）" in page
    assert f'href="/cases/{world.case_a}"' in page
    assert f'href="/tasks/{world.research_task}">去办理</a>' in page  # straight to the task while it is open
    engine = world.engine()
    act(engine, "xinmin_party", lambda s, a: engine.complete_task(s, a, world.research_task, fill("research_report")))
    consent = open_task(engine, world.case_a, "org_consent")
    returned = signed_in(world.app, "shenyang_org").post(f"/tasks/{consent}/return", {"reason": "调研报告缺少人才数据"})
    assert returned.status_code == 302
    page = party.get("/notifications/?show=unread").get_data(as_text=True)
    assert ">退回</span>" in page and "退回理由：调研报告缺少人才数据" in page
    assert _badge(page) == "2"  # the first 新任务 and the 退回
    assert f'href="/tasks/{world.research_task}"' not in page  # done: its 新任务 leads to the case only
