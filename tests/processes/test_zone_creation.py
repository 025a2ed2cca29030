"""Scenario tests of processes/zone_creation.bpmn (seed §五): recommendation to 批复.

Each test acts as the real demo users of 沈阳市 / 新民市 (210181), the province and the societies.
"""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from sqlalchemy import select

from engine.db import read_session
from engine.errors import InvalidInput, NotFound, PermissionDenied
from engine.models import Document
from tests.support.scenario import Scenario
from tests.support.zone import FAIR, GOOD, NO_VETO, evaluate, fill, start, through_joint_request


def test_a_county_is_recommended_evaluated_and_approved(scenario: Scenario) -> None:
    start(scenario)
    assert scenario.open_steps() == ["recommend"]
    through_joint_request(scenario)
    evaluate(scenario, {"S001": GOOD, "S008": GOOD})
    decision = scenario.task("province_office", "province_decision")
    assert decision.returnable
    view = scenario.complete(
        "province_office", "province_decision", fill("province_decision", province_decision="批准")
    )
    assert (view.status, view.outcome) == ("completed", "已批复")
    assert view.data["recommendation"] == "推荐"
    assert view.data["avg_score"] == 89
    assert view.data["veto_count"] == 0 and view.data["evaluation_count"] == 2
    assert view.data["approval"] == {
        "approval_no": "辽科协发〔2026〕1号",
        "approval_date": "2026-03-02",
        "term_start": "2026-03-02",
        "term_end": "2029-03-02",
    }
    assert view.data["county_name"] == "新民市" and view.data["city_name"] == "沈阳市"
    path = scenario.path()
    for step in (
        "recommend",
        "talent_cosign",
        "research_report",
        "org_consent",
        "joint_request",
        "joint_cosign",
        "assign_societies",
        "society_evaluation",
        "compute_scores",
        "recommendation",
        "province_decision",
        "issue_approval_task",
        "end_approved",
    ):
        assert step in path, step
    assert path.index("compute_scores") < path.index("recommendation") < path.index("issue_approval_task")


def issued(case: Scenario) -> list[tuple[str, str]]:
    """The case's documents as (kind, 文号), in issue order; each stored with the SHA-256 of its bytes."""
    with read_session(case.engine.sessions) as session:
        rows = session.scalars(
            select(Document).where(Document.instance_id == case.instance_id).order_by(Document.created_at)
        ).all()
    for row in rows:
        assert row.content.startswith(b"%PDF") and row.sha256 == hashlib.sha256(row.content).hexdigest()
    return [(row.kind, row.document_no) for row in rows]


def test_each_document_is_issued_by_the_step_that_produces_it(scenario: Scenario) -> None:
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    scenario.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    scenario.complete("xinmin_party", "research_report", fill("research_report"))
    scenario.complete("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
    scenario.complete("shenyang_sa", "joint_request", fill("joint_request", joint_document_no="沈科协发〔2026〕8号"))
    assert issued(scenario) == []  # drafted, not yet co-signed
    scenario.complete("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
    assert issued(scenario) == [("联合请示", "沈科协发〔2026〕8号")]
    evaluate(scenario, {"S001": FAIR, "S002": FAIR})
    assert issued(scenario)[1:] == [("考察评估意见表", "辽科协评〔2026〕1号")]
    # 退回补充: a redrafted request with a new 文号 and a second round of evaluations are new documents.
    scenario.return_task("province_office", "province_decision", "请补充县级配套经费承诺")
    scenario.complete("shenyang_sa", "joint_request", fill("joint_request", joint_document_no="沈科协发〔2026〕11号"))
    scenario.complete("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
    evaluate(scenario, {"S001": GOOD, "S002": GOOD})
    view = scenario.complete(
        "province_office", "province_decision", fill("province_decision", province_decision="批准")
    )
    assert issued(scenario) == [
        ("联合请示", "沈科协发〔2026〕8号"),
        ("考察评估意见表", "辽科协评〔2026〕1号"),
        ("联合请示", "沈科协发〔2026〕11号"),
        ("考察评估意见表", "辽科协评〔2026〕2号"),
        ("批复", "辽科协发〔2026〕1号"),
    ]
    assert view.data["approval_document"]["document_no"] == view.data["approval"]["approval_no"]
    services = [c for e in scenario.history() for c in e.payload.get("services", []) if c["operation"] == "issue_pdf"]
    assert [c["result"]["document_no"] for c in services] == [number for _kind, number in issued(scenario)]


def test_every_return_loops_back_to_the_right_step(scenario: Scenario) -> None:
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    scenario.return_task("shenyang_talent", "talent_cosign", "推荐理由不充分")
    assert scenario.open_steps() == ["recommend"]
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    scenario.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    scenario.complete("xinmin_party", "research_report", fill("research_report"))
    scenario.return_task("shenyang_org", "org_consent", "调研报告缺少人才数据")
    assert scenario.open_steps() == ["research_report"]
    scenario.complete("xinmin_party", "research_report", fill("research_report"))
    scenario.complete("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
    scenario.complete("shenyang_sa", "joint_request", fill("joint_request"))
    scenario.complete("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="退回"))
    assert scenario.open_steps() == ["joint_request"]
    scenario.complete("shenyang_sa", "joint_request", fill("joint_request"))
    scenario.complete("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
    evaluate(scenario, {"S001": FAIR, "S002": FAIR})
    scenario.return_task("province_office", "province_decision", "请补充县级配套经费承诺")
    assert scenario.open_steps() == ["joint_request"]
    scenario.complete("shenyang_sa", "joint_request", fill("joint_request"))
    scenario.complete("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
    evaluate(scenario, {"S001": GOOD, "S002": GOOD})
    view = scenario.complete(
        "province_office", "province_decision", fill("province_decision", province_decision="批准")
    )
    assert view.outcome == "已批复"
    returns = [(e.bpmn_id, e.payload["reason"]) for e in scenario.history() if e.command == "return"]
    assert [step for step, _ in returns] == ["talent_cosign", "org_consent", "province_decision"]
    evaluations = [e for e in scenario.history() if e.command == "complete" and e.bpmn_id == "society_evaluation"]
    assert len(evaluations) == 4


def test_a_veto_forces_not_recommended_and_the_province_rejects(scenario: Scenario) -> None:
    start(scenario)
    through_joint_request(scenario)
    evaluate(scenario, {"S001": GOOD, "S004": {**GOOD, "veto_no_funding": True}})
    assert scenario.view().data["recommendation"] == "不推荐"
    view = scenario.complete(
        "province_office", "province_decision", fill("province_decision", province_decision="不予批准")
    )
    assert (view.status, view.outcome) == ("completed", "不予批准")
    assert "approval" not in view.data


def test_middling_scores_give_a_conditional_recommendation(scenario: Scenario) -> None:
    start(scenario)
    through_joint_request(scenario)
    evaluate(scenario, {"S001": FAIR, "S002": GOOD})
    data = scenario.view().data
    assert (data["avg_score"], data["recommendation"]) == (79.5, "有条件推荐")


def test_each_society_sees_and_scores_only_its_own_evaluation(scenario: Scenario) -> None:
    start(scenario)
    through_joint_request(scenario)
    scenario.complete(
        "province_office", "assign_societies", fill("assign_societies", assigned_societies=["S003", "S005"])
    )
    mine = scenario.task("s003", "society_evaluation")
    theirs = scenario.task("s005", "society_evaluation")
    assert scenario.tasks("s001") == []
    assert [t.org_code for t in (mine, theirs)] == ["S003", "S005"]
    with pytest.raises(PermissionDenied):
        scenario.complete_id("s003", theirs.id, fill("society_evaluation", **NO_VETO, **GOOD))
    scenario.complete_id("s003", mine.id, fill("society_evaluation", **NO_VETO, **GOOD))
    assert scenario.open_steps() == ["society_evaluation"]


def test_roles_from_other_cities_and_counties_are_refused(scenario: Scenario) -> None:
    start(scenario)
    recommend = scenario.task("shenyang_sa", "recommend")
    for username in ("dalian_sa", "shenyang_talent", "xinmin_party", "province_office"):
        with pytest.raises(PermissionDenied):
            scenario.complete_id(username, recommend.id, fill("recommend"))
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    scenario.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    report = scenario.task("xinmin_party", "research_report")
    for username in ("faku_party", "xinmin_gov", "dalian_sa"):
        with pytest.raises(PermissionDenied):
            scenario.complete_id(username, report.id, fill("research_report"))
    from engine.access import load_actor
    from engine.db import read_session

    with read_session(scenario.engine.sessions) as session:
        with pytest.raises(NotFound):
            scenario.engine.get_instance(session, load_actor(session, "faku_party"), scenario.instance_id)
        with pytest.raises(NotFound):
            scenario.engine.get_task(session, load_actor(session, "dalian_sa"), report.id)


def test_invalid_recommendation_is_refused_field_by_field(scenario: Scenario) -> None:
    start(scenario)
    data = {**fill("recommend"), "recommend_contact_phone": "12345", "recommend_gdp": -5}
    del data["recommend_reason"]
    with pytest.raises(InvalidInput) as raised:
        scenario.complete("shenyang_sa", "recommend", data)
    assert set(raised.value.details) == {"recommend_contact_phone", "recommend_gdp", "recommend_reason"}
    assert all(isinstance(message, str) and message for message in raised.value.details.values())
    assert scenario.open_steps() == ["recommend"]
    assert [e.command for e in scenario.history()] == ["start"]


def test_a_late_research_report_is_escalated_to_the_city(scenario: Scenario) -> None:
    start(scenario)
    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    scenario.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    report = scenario.task("xinmin_party", "research_report")
    assert report.due_at.date() == date(2026, 4, 1)
    scenario.advance(days=29)
    assert scenario.open_steps() == ["research_report"]
    scenario.advance(days=2)
    assert scenario.open_steps() == ["research_overdue", "research_report"]
    scenario.complete("shenyang_sa", "research_overdue", fill("research_overdue"))
    scenario.complete("xinmin_party", "research_report", fill("research_report"))
    assert scenario.open_steps() == ["org_consent"]


def test_approval_numbers_have_no_gaps_or_duplicates(engine) -> None:
    numbers = []
    for county, society in (("210181", "S001"), ("210124", "S002")):
        case = Scenario(engine)
        case.start("shenyang_sa", "zone_creation", {"county_code": county})
        party, gov = {"210181": ("xinmin_party", "xinmin_gov"), "210124": ("faku_party", "faku_gov")}[county]
        case.complete("shenyang_sa", "recommend", fill("recommend"))
        case.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
        case.complete(party, "research_report", fill("research_report"))
        case.complete("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
        case.complete("shenyang_sa", "joint_request", fill("joint_request"))
        case.complete(gov, "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
        evaluate(case, {society: GOOD, "S010": GOOD})
        view = case.complete(
            "province_office", "province_decision", fill("province_decision", province_decision="批准")
        )
        numbers.append(view.data["approval"]["approval_no"])
    assert numbers == ["辽科协发〔2026〕1号", "辽科协发〔2026〕2号"]
