"""新任务, 退回 and 决定 notifications written by the commands themselves, and their e-mail through a real
SMTP server on loopback (aiosmtpd), on SQLite and PostgreSQL.

Who is notified is compared with the role assignments read independently here: every active user holding
the opened task's role in its org unit, nobody else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, update

from engine import AppEngine
from engine.access import load_actor
from engine.db import read_session, write_session
from engine.mailer import deliver_outbox, set_preference
from engine.models import Notification, OutboxMail, RoleAssignment, User
from engine.notifications import list_notifications
from tests.documents.test_mailer import Inbox, smtp  # noqa: F401 (the real SMTP server fixture)
from tests.support.scenario import Scenario
from tests.support.zone import GOOD, evaluate, fill, start, through_joint_request

SHENYANG, XINMIN, PROVINCE = "210100", "210181", "210000"


def holders(engine: AppEngine, role: str, org_code: str) -> set[str]:
    with read_session(engine.sessions) as session:
        return set(
            session.scalars(
                select(User.username)
                .join(RoleAssignment, RoleAssignment.user_id == User.id)
                .where(RoleAssignment.role == role, RoleAssignment.org_code == org_code, User.active.is_(True))
            )
        )


def notes(engine: AppEngine, kind: str | None = None) -> list[tuple[str, str, str]]:
    """(username, kind, message) of every notification, oldest first."""
    with read_session(engine.sessions) as session:
        query = select(Notification.username, Notification.kind, Notification.message).order_by(Notification.id)
        if kind:
            query = query.where(Notification.kind == kind)
        return list(session.execute(query).tuples())


def add_colleague(engine: AppEngine, username: str, role: str, org_code: str) -> None:
    with write_session(engine.sessions) as session:
        user = User(username=username, display_name=username, password_hash="x", active=True, created_at=engine.now())
        user.roles.append(RoleAssignment(role=role, org_code=org_code))
        session.add(user)


def test_a_new_task_notifies_everyone_who_may_claim_it_and_no_one_else(scenario: Scenario) -> None:
    engine = scenario.engine
    add_colleague(engine, "shenyang_sa_deputy", "city_sa", SHENYANG)
    start(scenario)  # by shenyang_sa, who sees the recommendation form at once: not notified of it
    first = notes(engine)
    assert {user for user, _, _ in first} == holders(engine, "city_sa", SHENYANG) - {"shenyang_sa"}
    assert {user for user, _, _ in first} == {"shenyang_sa_deputy"}
    recommend = scenario.task("shenyang_sa_deputy", "recommend")
    with read_session(engine.sessions) as session:
        (note,) = list_notifications(session, "shenyang_sa_deputy").items
    assert note.open_task_id == recommend.id and note.instance_id == recommend.instance_id  # links to the task
    assert {kind for _, kind, _ in first} == {"新任务"}
    assert all("新民市 · 示范区创建 — 填报推荐表" in message for _, _, message in first)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    second = notes(engine)[len(first) :]
    assert {user for user, _, _ in second} == holders(engine, "city_talent_office", SHENYANG)
    assert all("人才办会签（办理期限 2026-03-12）" in message for _, _, message in second)
    assert "xinmin_party" not in {user for user, _, _ in notes(engine)}  # not this step's role
    with read_session(engine.sessions) as session:
        (note,) = list_notifications(session, "shenyang_sa_deputy").items
    assert note.open_task_id is None and note.instance_id == recommend.instance_id  # done: only the case is left


def test_each_society_hears_only_of_its_own_evaluation(scenario: Scenario) -> None:
    engine = scenario.engine
    start(scenario)
    through_joint_request(scenario)
    before = len(notes(engine))
    assigned = fill("assign_societies", assigned_societies=["S003", "S005"])
    scenario.complete("province_office", "assign_societies", assigned)
    evaluation = [(user, kind) for user, kind, message in notes(engine)[before:] if "学会考察评估" in message]
    expected = holders(engine, "society", "S003") | holders(engine, "society", "S005")
    assert Counter(user for user, _ in evaluation) == Counter(expected)  # one each
    assert {"s003", "s005"} <= expected and "s001" not in expected


def test_a_return_tells_the_step_it_went_back_to_why(scenario: Scenario) -> None:
    engine = scenario.engine
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    before = len(notes(engine))
    scenario.return_task("shenyang_talent", "talent_cosign", "推荐理由不充分，请补充主导产业情况")
    returned = notes(engine)[before:]
    assert {user for user, _, _ in returned} == holders(engine, "city_sa", SHENYANG)
    assert {kind for _, kind, _ in returned} == {"退回"}
    assert all("填报推荐表" in m and "退回理由：推荐理由不充分，请补充主导产业情况" in m for _, _, m in returned)
    # The form's own 退回 choice takes the same path and is a 退回 as well.
    through = len(notes(engine))
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    scenario.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    scenario.complete("xinmin_party", "research_report", fill("research_report"))
    scenario.complete("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
    scenario.complete("shenyang_sa", "joint_request", fill("joint_request"))
    scenario.complete("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="退回"))
    last = [(kind, message) for _, kind, message in notes(engine)[through:] if "起草联合请示" in message]
    city = len(holders(engine, "city_sa", SHENYANG))
    assert [kind for kind, _ in last] == ["新任务"] * city + ["退回"] * city
    assert all("请查看案卷意见" in message for kind, message in last if kind == "退回")  # no stale reason


def test_the_decision_reaches_the_city_and_the_county(scenario: Scenario) -> None:
    engine = scenario.engine
    start(scenario)
    through_joint_request(scenario)
    evaluate(scenario, {"S001": GOOD, "S002": GOOD})
    scenario.complete("province_office", "province_decision", fill("province_decision", province_decision="批准"))
    decided = notes(engine, "决定")
    expected = (
        holders(engine, "city_sa", SHENYANG)
        | holders(engine, "city_talent_office", SHENYANG)
        | holders(engine, "county_party", XINMIN)
        | holders(engine, "county_gov", XINMIN)
    )
    assert {user for user, _, _ in decided} == expected and "shenyang_sa" in expected
    assert all("新民市创建示范区（县）已获省科协批复（辽科协发〔2026〕1号）" in m for _, _, m in decided)
    assert "province_office" not in {user for user, _, _ in decided}


def test_one_insert_per_opened_task_whatever_the_number_of_users(scenario: Scenario) -> None:
    engine = scenario.engine
    start(scenario)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.db, "before_cursor_execute", record)
    try:
        scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    finally:
        event.remove(engine.db, "before_cursor_execute", record)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO NOTIFICATION")]
    mails = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO OUTBOX_MAIL")]
    assert len(inserts) == 1 and len(mails) == 1  # one opened task: talent_cosign
    assert all("SELECT" in s.upper() for s in inserts + mails)


@pytest.fixture
def mailed(engine: AppEngine) -> Iterator[AppEngine]:
    """shenyang_sa has an address and wants 退回 by e-mail (新任务 in-app only)."""
    with write_session(engine.sessions) as session:
        session.execute(update(User).where(User.username == "shenyang_sa").values(email="sa@shenyang.example"))
        set_preference(session, "shenyang_sa", "退回", True)
    yield engine


def test_a_return_is_mailed_after_commit_once(mailed: AppEngine, smtp: tuple[str, Inbox]) -> None:  # noqa: F811
    engine, (url, inbox) = mailed, smtp
    case = Scenario(engine)
    start(case)
    case.complete("shenyang_sa", "recommend", fill("recommend"))
    assert deliver_outbox(engine.sessions, url, engine.now()) == 0  # 新任务: in-app only
    with pytest.raises(RuntimeError), write_session(engine.sessions) as session:
        task = case.task("shenyang_talent", "talent_cosign")
        engine.return_task(session, load_actor(session, "shenyang_talent"), task.id, "第一次退回，已撤销")
        raise RuntimeError("the command is rolled back: no notification, no mail")
    assert notes(engine, "退回") == []
    case.return_task("shenyang_talent", "talent_cosign", "请补充推荐理由")
    assert deliver_outbox(engine.sessions, url, engine.now()) == 1
    assert deliver_outbox(engine.sessions, url, engine.now()) == 0  # sent once
    [message] = inbox.messages
    assert message["To"] == "sa@shenyang.example"
    assert message["Subject"].startswith("【退回】案卷已退回：新民市") and "填报推荐表" in message["Subject"]
    assert "退回理由：请补充推荐理由" in message.get_content()
    with read_session(engine.sessions) as session:
        assert [m.status for m in session.scalars(select(OutboxMail))] == ["sent"]
