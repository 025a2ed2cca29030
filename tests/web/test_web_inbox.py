"""待办 with its columns, filters, sorting, search and paging; bulk 签收 and 已阅; 已办; 办结; 发起."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.db import write_session
from engine.models import HistoryEvent, RoleAssignment, User
from tests.web.conftest import World, act, fill, open_task, signed_in


def test_the_inbox_row_shows_case_process_step_dates_and_urgency(world: World) -> None:
    page = signed_in(world.app, "xinmin_party").get("/inbox").get_data(as_text=True)
    assert "新民市" in page and "沈阳市" in page and "示范区创建" in page and "县委组织调研" in page
    assert "2026-03-02 09:00" in page  # received, Beijing time
    assert "2026-04-01" in page  # due: 30 days
    assert "平件" in page and "未签收" in page and "badge overdue" not in page


def test_overdue_tasks_are_marked_and_filtered(world: World) -> None:
    world.engine().clock.advance(timedelta(days=31))
    user = signed_in(world.app, "xinmin_party")
    page = user.get("/inbox").get_data(as_text=True)
    assert "已逾期" in page and "逾期 1 件" in page
    assert str(world.research_task) in user.get("/inbox?overdue=1").get_data(as_text=True)


def test_filters_search_sorting_and_paging(world: World) -> None:
    engine = world.engine()
    counties = ["210124", "210123", "210102", "210103", "210104"]  # 法库, 康平, 和平, 沈河, 大东
    for county in counties:
        act(
            engine,
            "shenyang_sa",
            lambda s, a, c=county: engine.start_instance(s, a, "zone_creation", {"county_code": c}),
        )
        engine.clock.advance(timedelta(minutes=1))
    user = signed_in(world.app, "shenyang_sa")
    everything = user.get("/inbox").get_data(as_text=True)
    assert everything.count('name="task_ids"') == 5 and "共 5 件" in everything
    assert user.get("/inbox?county=210124").get_data(as_text=True).count('name="task_ids"') == 1
    assert user.get("/inbox?county=210100").get_data(as_text=True).count('name="task_ids"') == 5  # by city
    assert user.get("/inbox?process=web_notice").get_data(as_text=True).count('name="task_ids"') == 0
    found = user.get("/inbox?q=法库").get_data(as_text=True)
    assert found.count('name="task_ids"') == 1 and "法库县" in found
    newest = user.get("/inbox?sort=received").get_data(as_text=True).split("<tbody>")[1]
    assert newest.index("大东区") < newest.index("法库县")
    oldest = user.get("/inbox?sort=due").get_data(as_text=True).split("<tbody>")[1]
    assert oldest.index("法库县") < oldest.index("大东区")
    assert user.get("/inbox?sort=nonsense&page=abc").status_code == 200  # bad values fall back
    import web.inbox

    web.inbox.PER_PAGE, old = 2, web.inbox.PER_PAGE
    try:
        first, third = user.get("/inbox").get_data(as_text=True), user.get("/inbox?page=3").get_data(as_text=True)
    finally:
        web.inbox.PER_PAGE = old
    assert first.count('name="task_ids"') == 2 and "第 1 页，共 3 页" in first and "page=2" in first
    assert third.count('name="task_ids"') == 1


def test_bulk_sign_for_all_or_nothing(world: World) -> None:
    engine = world.engine()
    second = act(
        engine, "shenyang_sa", lambda s, a: engine.start_instance(s, a, "zone_creation", {"county_code": "210124"})
    ).id
    mine = [open_task(engine, second, "recommend")]
    user = signed_in(world.app, "shenyang_sa")
    refused = user.post(
        "/inbox/bulk", [("action", "claim"), ("task_ids", str(mine[0])), ("task_ids", str(world.recommend_b))]
    )
    assert refused.status_code == 403
    assert user.post("/inbox/bulk", [("action", "claim"), ("task_ids", str(mine[0]))]).status_code == 302
    assert "已签收 1 件" in user.get("/inbox").get_data(as_text=True)
    assert "请至少选择一个事项" in _follow(user, user.post("/inbox/bulk", [("action", "claim")]))


def _follow(user, response) -> str:
    return user.get(response.headers["Location"]).get_data(as_text=True)


def test_bulk_read_completes_acknowledgements_only(world: World) -> None:
    engine = world.engine()
    notices = [
        act(engine, "shenyang_sa", lambda s, a: engine.start_instance(s, a, "web_notice", {"county_code": "210181"})).id
    ]
    ack = open_task(engine, notices[0], "read")
    user = signed_in(world.app, "xinmin_party")
    page = user.get("/inbox").get_data(as_text=True)
    assert "阅知" in page  # the tag of a task whose form asks for nothing
    mixed = user.post(
        "/inbox/bulk", [("action", "acknowledge"), ("task_ids", str(ack)), ("task_ids", str(world.research_task))]
    )
    assert "需要填写表单，不能批量办理" in _follow(user, mixed)
    done = user.post("/inbox/bulk", [("action", "acknowledge"), ("task_ids", str(ack))])
    assert "已阅 1 件" in _follow(user, done)
    with engine.sessions() as session:
        assert session.scalar(select(HistoryEvent.payload).where(HistoryEvent.task_id == ack))["data"] == {}
    assert "工作通知" in user.get("/inbox/finished").get_data(as_text=True)


def test_done_and_finished_tabs(world: World) -> None:
    engine = world.engine()
    user = signed_in(world.app, "shenyang_talent")
    done = user.get("/inbox/done").get_data(as_text=True)
    assert "人才办会签" in done and "提交" in done and "办理中" in done
    assert "暂无办结案件" in user.get("/inbox/finished").get_data(as_text=True)
    assert engine  # the finished tab with content is covered by the bulk-read and walk-through tests


def test_start_a_case_for_a_county_of_ones_city(world: World) -> None:
    user = signed_in(world.app, "shenyang_sa")
    page = next(
        part
        for part in user.get("/cases/new").get_data(as_text=True).split("<section")
        if 'value="zone_creation"' in part
    )
    assert "法库县（210124）" in page and "新民市（210181）" not in page  # 新民 has a running case
    assert "瓦房店" not in page  # another city's county
    response = user.post("/cases/new", {"process": "zone_creation", "county_code": "210124"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/tasks/")
    assert "已发起案件" in user.get(response.headers["Location"]).get_data(as_text=True)
    again = user.post("/cases/new", {"process": "zone_creation", "county_code": "210124"})
    assert again.status_code == 400 and "已有正在办理的同类案件" in again.get_data(as_text=True)
    other_city = user.post("/cases/new", {"process": "zone_creation", "county_code": "210281"})
    assert other_city.status_code == 403
    nothing = user.post("/cases/new", {"process": "zone_creation", "county_code": ""})
    assert nothing.status_code == 400


def test_a_county_sees_its_case_after_the_city_recommends(world: World) -> None:
    engine = world.engine()
    act(engine, "dalian_sa", lambda s, a: engine.complete_task(s, a, world.recommend_b, fill("recommend")))
    page = signed_in(world.app, "dalian_talent").get("/inbox").get_data(as_text=True)
    assert "瓦房店市" in page and "人才办会签" in page and "2026-03-12" in page


def test_a_kept_row_is_never_shown_stale_nor_in_the_other_language(world: World) -> None:
    """The 待办 rows' HTML is kept between requests: keyed by everything a row shows and the language."""
    user = signed_in(world.app, "xinmin_party")
    before = user.get("/inbox").get_data(as_text=True)
    assert "未签收" in before and "已签收" not in before
    assert user.post("/inbox/bulk", [("action", "claim"), ("task_ids", str(world.research_task))]).status_code == 302
    after = user.get("/inbox").get_data(as_text=True)
    assert "已签收" in after and "未签收" not in after

    assert user.post("/language", {"lang": "en"}).status_code == 302
    english = user.get("/inbox").get_data(as_text=True)
    assert "Signed" in english and "Handle" in english and "已签收" not in english and "办理" not in english
    assert user.post("/language", {"lang": "zh"}).status_code == 302
    assert "已签收" in user.get("/inbox").get_data(as_text=True)


def test_an_official_with_two_desks_sees_both_in_one_inbox_with_both_places_to_filter_by(world: World) -> None:
    """新民市's 县委 desk and 大连市科协's desk held by one official (each is one index search per pair)."""
    engine = world.engine()
    with write_session(engine.sessions) as session:
        user = session.scalar(select(User).where(User.username == "xinmin_party"))
        user.roles.append(RoleAssignment(role="city_sa", org_code="210200"))
    engine.db.dispose()
    user = signed_in(world.app, "xinmin_party")
    page = user.get("/inbox").get_data(as_text=True)
    assert str(world.research_task) in page and str(world.recommend_b) in page and "共 2 件" in page
    assert '<option value="210181"' in page and '<option value="210281"' in page  # 新民市, 瓦房店市
    dalian_only = user.get("/inbox?county=210281").get_data(as_text=True)
    assert str(world.recommend_b) in dalian_only and str(world.research_task) not in dalian_only
