"""Inbox queries on the real engine and a SQLite file: who is offered what, paging, filters and sorting,
已办, 办结, what may be started, and overdue counts."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import inbox
from engine.db import write_session
from engine.errors import InvalidInput
from engine.inbox import InboxQuery, Page
from engine.models import Instance, OrgUnit, RoleAssignment, User
from engine.orgs import CANDIDATE_KINDS
from engine.roles import PROVINCE_CODE

SHENYANG_COUNTIES = ["210181", "210124", "210123", "2101GX", "210102"]  # 新民, 法库, 康平, 高新区, 和平区


def open_page(desk, username: str, **query) -> Page:
    with desk.as_user(username) as (session, actor):
        return inbox.open_tasks(desk.app, session, actor, InboxQuery(**query))


def ids(page: Page) -> list[uuid.UUID]:
    return [item.instance_id for item in page.items]


def start_many(desk, counties: list[str], **data) -> list[uuid.UUID]:
    """Start one case per county, a minute apart, so that their tasks are received in this order."""
    started = []
    for county in counties:
        started.append(desk.start(county, **data).id)
        desk.advance(minutes=1)
    return started


def candidates_under(desk, parent: str | None) -> list[tuple[str, str]]:
    with desk.as_user("auditor") as (session, _actor):
        query = select(OrgUnit.code, OrgUnit.name).where(OrgUnit.kind.in_(CANDIDATE_KINDS))
        if parent:
            query = query.where(OrgUnit.parent_code == parent)
        return [tuple(row) for row in session.execute(query.order_by(OrgUnit.code))]


def test_tasks_are_offered_to_the_actors_role_and_org_only(desk) -> None:
    shenyang_case = desk.start("210181").id
    dalian_case = desk.start("210281", username="dalian_sa").id

    assert ids(open_page(desk, "shenyang_sa")) == [shenyang_case]
    assert ids(open_page(desk, "dalian_sa")) == [dalian_case]
    assert open_page(desk, "xinmin_party").total == 0  # a county role; the case is at the city's step
    assert open_page(desk, "auditor").total == 0  # reads everything, is offered nothing


def test_an_official_with_several_lanes_sees_them_all_in_one_inbox_each_found_through_the_index(desk) -> None:
    """Shenyang's and Dalian's 市科协 desks held by one official: one 待办, one count, every task once.

    Each (role, org) pair is one index search: SQLite planned ``(role, org) IN (VALUES ...)`` of two
    pairs as a scan of every open task in the province.
    """
    desk.add_user("two_cities", "city_sa", "210100")
    with write_session(desk.app.sessions) as session:
        user = session.scalar(select(User).where(User.username == "two_cities"))
        user.roles.append(RoleAssignment(role="city_sa", org_code="210200"))
        user.roles.append(RoleAssignment(role="auditor", org_code=PROVINCE_CODE))  # reads all, offered nothing
    shenyang = start_many(desk, ["210181", "210124"])
    dalian = desk.start("210281", username="dalian_sa").id
    desk.start("210381", username="anshan_sa")  # 海城市, another city's desk

    page = open_page(desk, "two_cities", per_page=2)
    assert page.total == 3 and ids(page) + ids(open_page(desk, "two_cities", page=2, per_page=2)) == [*shenyang, dalian]
    with desk.as_user("two_cities") as (session, actor):
        assert inbox.open_task_counts(desk.app, session, actor) == (3, 0)
        assert [t.instance_id for t in desk.app.list_tasks(session, actor)] == [*shenyang, dalian]
        rows, count = inbox._open_task_statements(2, False, False, None, False, "due")
        for statement in (rows, count, inbox._open_and_overdue(2)):
            sql = str(statement.compile(dialect=session.bind.dialect))
            plan = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(range(sql.count("?"))))
            details = [row[-1] for row in plan]
            assert not any(d.startswith("SCAN open_task") for d in details), details
            assert sum("INDEX ix_open_task_role_org (role=? AND org_code=?)" in d for d in details) == 2, details


def test_a_task_claimed_by_a_colleague_is_no_longer_offered(desk) -> None:
    desk.add_user("shenyang_sa2", "city_sa", "210100")
    case = desk.start("210181").id
    task_id = desk.task(case, "fill").id
    with desk.as_user("shenyang_sa2") as (session, actor):
        desk.app.claim_task(session, actor, task_id)

    assert open_page(desk, "shenyang_sa").items == []
    [task] = open_page(desk, "shenyang_sa2").items
    assert task.claimed_by == "shenyang_sa2"


def test_pages_cover_every_task_exactly_once(desk) -> None:
    started = start_many(desk, SHENYANG_COUNTIES)

    pages = [open_page(desk, "shenyang_sa", per_page=2, page=n) for n in (1, 2, 3, 4)]

    assert [len(p.items) for p in pages] == [2, 2, 1, 0]
    assert {p.total for p in pages} == {5}
    assert pages[0].pages == 3
    assert sorted(i for p in pages for i in ids(p)) == sorted(started)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": 0}, "page"),
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"sort": "name"}, "sort"),
    ],
)
def test_bad_paging_or_sort_is_refused_with_the_field_named(desk, query: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        open_page(desk, "shenyang_sa", **query)
    assert set(raised.value.details) == {field}


def test_page_count() -> None:
    assert Page([], 0, 1, 20).pages == 0
    assert Page([], 40, 1, 20).pages == 2
    assert Page([], 41, 1, 20).pages == 3


def test_filters_by_process_county_and_search(desk) -> None:
    started = start_many(desk, SHENYANG_COUNTIES)
    with desk.as_user("auditor") as (session, _actor):
        kangping_key = session.scalar(select(Instance.business_key).where(Instance.id == started[2]))

    assert open_page(desk, "shenyang_sa", process="casework").total == 5
    assert open_page(desk, "shenyang_sa", process="notice").total == 0
    assert ids(open_page(desk, "shenyang_sa", county="210124")) == [started[1]]
    assert open_page(desk, "shenyang_sa", county="210100").total == 5  # a city code selects its counties
    assert ids(open_page(desk, "shenyang_sa", search="法库")) == [started[1]]  # case title
    assert open_page(desk, "shenyang_sa", search="填报").total == 5  # step name
    assert ids(open_page(desk, "shenyang_sa", search=kangping_key[-6:].upper())) == [
        started[2]
    ]  # business key
    assert open_page(desk, "shenyang_sa", search="%").total == 0  # wildcards are taken literally
    assert open_page(desk, "shenyang_sa", search="  ").total == 5


def test_overdue_filter_and_count(desk) -> None:
    late = start_many(desk, SHENYANG_COUNTIES[:3])  # 填报材料 is due in five days
    desk.advance(days=6)
    fresh = desk.start(SHENYANG_COUNTIES[3]).id

    assert sorted(ids(open_page(desk, "shenyang_sa", overdue=True))) == sorted(late)
    assert ids(open_page(desk, "shenyang_sa", overdue=False)) == [fresh]
    with desk.as_user("shenyang_sa") as (session, actor):
        assert inbox.overdue_count(desk.app, session, actor) == 3
    with desk.as_user("auditor") as (session, actor):
        assert inbox.overdue_count(desk.app, session, actor) == 0


def test_sorting_by_due_date_urgency_and_arrival(desk) -> None:
    normal = desk.start("210181", urgency="平件").id
    desk.advance(minutes=1)
    very_urgent = desk.start("210124", urgency="特急").id
    desk.advance(minutes=1)
    urgent = desk.start("210123", urgency="加急").id
    desk.advance(minutes=1)
    unmarked = desk.start("210102").id
    desk.advance(minutes=1)
    undated = desk.to_ack("2101GX", "shenyanggx_party")  # 阅知审核结果 has no due date

    assert ids(open_page(desk, "shenyang_sa")) == [normal, very_urgent, urgent, unmarked, undated]
    assert ids(open_page(desk, "shenyang_sa", sort="urgency")) == [
        very_urgent,
        urgent,
        normal,
        unmarked,
        undated,
    ]
    assert ids(open_page(desk, "shenyang_sa", sort="received")) == [
        undated,
        unmarked,
        urgent,
        very_urgent,
        normal,
    ]
    assert [t.urgency for t in open_page(desk, "shenyang_sa", sort="urgency").items][:3] == [
        "特急",
        "加急",
        "平件",
    ]


def test_done_tasks_list_completions_and_returns_newest_first(desk) -> None:
    case = desk.start("210181").id
    desk.complete("shenyang_sa", case, "fill", {"title": "初稿"})
    desk.advance(hours=1)
    review = desk.task(case, "review")
    with desk.as_user("xinmin_party") as (session, actor):
        desk.app.return_task(session, actor, review.id, "请补充材料")
    desk.advance(hours=1)
    second = desk.task(case, "fill")
    desk.complete("shenyang_sa", case, "fill", {"title": "修改稿"})

    with desk.as_user("shenyang_sa") as (session, actor):
        mine = inbox.done_tasks(session, actor)
        second_page = inbox.done_tasks(session, actor, page=2, per_page=1)
    with desk.as_user("xinmin_party") as (session, actor):
        party = inbox.done_tasks(session, actor)
    with desk.as_user("dalian_sa") as (session, actor):
        stranger = inbox.done_tasks(session, actor)

    assert mine.total == 2
    assert [d.task_id for d in mine.items][0] == second.id
    assert mine.items[0].at > mine.items[1].at
    assert {(d.step, d.name, d.command) for d in mine.items} == {("fill", "填报材料", "complete")}
    assert {(d.case_title, d.instance_status, d.instance_id) for d in mine.items} == {
        ("新民市 · 案卷流程", "running", case)
    }
    assert (second_page.total, second_page.pages, len(second_page.items)) == (2, 2, 1)
    assert [(d.step, d.name, d.command) for d in party.items] == [("review", "县委审核", "return")]
    assert stranger.total == 0


def test_finished_cases_are_those_the_actor_took_part_in(desk) -> None:
    done = desk.to_ack("210181", "xinmin_party")
    desk.complete("shenyang_sa", done, "ack", {})
    running = desk.start("210124").id  # never 办结 while it runs

    def finished(username: str) -> Page:
        with desk.as_user(username) as (session, actor):
            return inbox.finished_cases(session, actor)

    [summary] = finished("shenyang_sa").items
    assert (summary.instance_id, summary.status, summary.outcome) == (done, "completed", "办结")
    assert (summary.case_title, summary.county_name, summary.city_name) == (
        "新民市 · 案卷流程",
        "新民市",
        "沈阳市",
    )
    assert (summary.process, summary.process_name, summary.county_code) == ("casework", "案卷流程", "210181")
    assert summary.completed_at is not None
    assert summary.business_key.startswith("casework/210181/")
    assert ids(finished("xinmin_party")) == [done]
    for outsider in ("faku_party", "province_office", "auditor"):  # may read, or not, but took no part
        assert finished(outsider).total == 0

    with desk.as_user("auditor") as (session, _actor):  # no command terminates a case yet
        session.get(Instance, running).status = "terminated"
    assert sorted(ids(finished("shenyang_sa"))) == sorted([done, running])


def options(desk, username: str) -> list[inbox.StartOption]:
    with desk.as_user(username) as (session, actor):
        return inbox.startable(desk.app, session, actor)


def test_startable_offers_the_candidates_of_the_actors_own_city(desk) -> None:
    [shenyang] = options(desk, "shenyang_sa")
    assert (shenyang.process_id, shenyang.name) == ("casework", "案卷流程")
    assert shenyang.candidates == candidates_under(desk, "210100")
    assert len(shenyang.candidates) == 14 and ("2101GX", "沈阳高新技术产业开发区") in shenyang.candidates

    [dalian] = options(desk, "dalian_sa")
    assert dalian.candidates == candidates_under(desk, "210200")

    [province] = options(desk, "province_office")  # the start lane
    assert (province.process_id, province.candidates) == ("notice", candidates_under(desk, None))

    [county] = options(desk, "xinmin_party")  # listed in startRoles, for its own county only
    assert (county.process_id, county.candidates) == ("notice", [("210181", "新民市")])

    assert options(desk, "auditor") == []
    assert options(desk, "dalian_org") == []  # a city role that starts nothing


def test_startable_leaves_out_counties_with_a_running_case_where_only_one_is_allowed(
    desk, monkeypatch
) -> None:
    desk.start("210181")
    [option] = options(desk, "shenyang_sa")
    assert "210181" in dict(option.candidates)  # casework allows several cases per county

    monkeypatch.setattr(inbox, "ONE_RUNNING_CASE_PER_COUNTY", frozenset({"casework"}))
    [option] = options(desk, "shenyang_sa")
    assert "210181" not in dict(option.candidates) and len(option.candidates) == 13


def test_startable_uses_the_latest_deployed_version(desk, tmp_path: Path) -> None:
    revised = tmp_path / "processes"
    shutil.copytree(Path(__file__).parent / "processes", revised)
    bpmn = revised / "casework.bpmn"
    bpmn.write_text(
        bpmn.read_text(encoding="utf-8").replace('name="案卷流程"', 'name="案卷流程（修订）"'), "utf-8"
    )
    desk.deploy_from(revised)

    with desk.as_user("shenyang_sa") as (session, actor):
        [option] = inbox.startable(desk.app, session, actor)
    assert option.name == "案卷流程（修订）"
