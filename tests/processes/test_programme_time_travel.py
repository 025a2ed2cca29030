"""The whole programme in seconds, with the injectable clock (seed §五 and §六).

新民市 is recommended, approved and runs its three-year term: plans, consultations with agreed items,
a matched project that completes and feeds the year's figures, one 不合格 year followed by
rectification, two 优秀 years and the end-of-term acceptance. 法库县 fails two years running and its
title is revoked. Afterwards every case replays to its stored state and the history verifies.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from engine import AppEngine, Settings, build_engine
from engine.access import load_actor
from engine.audit import verify_history
from engine.db import read_session, write_session
from engine.models import Document, Instance, Notification
from engine.overview import build_overview
from engine.replay import replay_instance
from engine.runtime import InstanceView, TaskView
from tests.support.scenario import Scenario
from tests.support.zone import GOOD, evaluate, fill

EXCELLENT = {
    "scoring_org": 14,
    "scoring_platform": 18,
    "scoring_service": 23,
    "scoring_output": 27,
    "scoring_funding": 9,
    "scoring_bonus": 0,
    "scoring_deduction": 0,
}
FAILING = {
    "scoring_org": 8,
    "scoring_platform": 10,
    "scoring_service": 12,
    "scoring_output": 15,
    "scoring_funding": 5,
    "scoring_bonus": 0,
    "scoring_deduction": 0,
}
COUNTIES = {  # county: (county party, county government, zone office)
    "210181": ("xinmin_party", "xinmin_gov", "xinmin_office"),
    "210124": ("faku_party", "faku_gov", "faku_office"),
}


class Programme:
    """Acts on whichever case of a county has the wanted step open."""

    def __init__(self, engine: AppEngine) -> None:
        self.engine = engine

    def task(self, username: str, step: str, county: str) -> TaskView:
        with read_session(self.engine.sessions) as session:
            tasks = self.engine.list_tasks(session, load_actor(session, username))
            cases = dict(session.execute(select(Instance.id, Instance.county_code)).tuples().all())
        matches = [t for t in tasks if t.step == step and cases[t.instance_id] == county]
        assert matches, f"{username} has no open {step} for {county}: {[t.step for t in tasks]}"
        return matches[0]

    def do(self, username: str, step: str, county: str, **overrides: Any) -> InstanceView:
        task = self.task(username, step, county)
        with write_session(self.engine.sessions) as session:
            return self.engine.complete_task(
                session, load_actor(session, username), task.id, fill(task.form.removesuffix(".json"), **overrides)
            )

    def advance_to(self, iso_date: str) -> None:
        from engine.clock import parse_instant

        self.engine.clock.set(parse_instant(f"{iso_date}T09:00:00+08:00"))
        with write_session(self.engine.sessions) as session:
            self.engine.fire_due_timers(session)

    def start(self, username: str, process: str, data: dict[str, Any]) -> uuid.UUID:
        with write_session(self.engine.sessions) as session:
            return self.engine.start_instance(session, load_actor(session, username), process, data).id


def approve(engine: AppEngine, county: str) -> None:
    party, gov, _office = COUNTIES[county]
    case = Scenario(engine)
    case.start("shenyang_sa", "zone_creation", {"county_code": county})
    case.complete("shenyang_sa", "recommend", fill("recommend"))
    case.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    case.complete(party, "research_report", fill("research_report"))
    case.complete("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
    case.complete("shenyang_sa", "joint_request", fill("joint_request"))
    case.complete(gov, "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
    evaluate(case, {"S001": GOOD, "S002": GOOD})
    view = case.complete("province_office", "province_decision", fill("province_decision", province_decision="批准"))
    assert view.outcome == "已批复"


def register(p: Programme, county: str) -> None:
    party, _gov, office = COUNTIES[county]
    p.do(office, "group_registration", county)
    p.do("shenyang_org", "talent_city", county)
    p.do(party, "talent_county", county)


def plan_and_consult(p: Programme, county: str) -> None:
    office = COUNTIES[county][2]
    p.do(office, "annual_plan", county, plan_meeting_count=2)
    for _meeting in range(2):
        p.do(office, "consult_meeting", county)
    for _item in range(2):  # each meeting's sample minutes give the zone office one agreed item
        p.do(office, "agreed_item_task", county)


def assess(p: Programme, county: str, year_end: str, scores: dict[str, int]) -> InstanceView:
    office = COUNTIES[county][2]
    p.advance_to(year_end)
    p.do(office, "self_assessment", county)
    p.do("shenyang_sa", "first_review", county, firstreview_decision="通过")
    return p.do("province_office", "scoring", county, **scores)


def matched_project(p: Programme, county: str) -> uuid.UUID:
    office = COUNTIES[county][2]
    project = p.start(office, "project_matching", fill("project_matching.start", county_code=county))
    p.do(office, "match_society", county, match_decision="指派学会", society_code="S001")
    p.do("s001", "accept_project", county, accept_decision="接受")
    p.do("s001", "agreement", county)
    p.do("s001", "report_progress", county, report_status="进行中")
    return project


@pytest.fixture
def programme(sqlite_url: str, clock) -> Programme:
    engine = build_engine(Settings(database_url=sqlite_url), clock)
    yield Programme(engine)
    engine.db.dispose()


def test_three_years_of_the_programme(programme: Programme) -> None:
    p, xinmin, faku = programme, "210181", "210124"
    approve(p.engine, xinmin)
    approve(p.engine, faku)
    register(p, xinmin)
    register(p, faku)

    # Year 1 (2026-03-02 – 2027-03-02): a project is matched, reported late, and completed.
    plan_and_consult(p, xinmin)
    plan_and_consult(p, faku)
    matched_project(p, xinmin)
    p.advance_to("2026-06-01")  # the next progress report is overdue: 催办 to the society, 督办 to the zone
    with read_session(p.engine.sessions) as session:
        kinds = {(n.username, n.kind) for n in session.scalars(select(Notification))}
    assert ("s001", "催办") in kinds and ("xinmin_office", "督办") in kinds and ("shenyang_sa", "督办") in kinds
    p.do("s001", "report_progress", xinmin, report_status="已完成", report_percent=100)
    p.do(
        "xinmin_office",
        "confirm_completion",
        xinmin,
        problems_solved=3,
        patents=2,
        people_trained=40,
        contract_value=120.5,
        achievements_transferred=1,
    )

    assess(p, faku, "2027-03-03", FAILING)
    p.do("faku_office", "rectification", faku)
    p.do("province_office", "recheck", faku, recheck_decision="通过")
    graded = assess(p, xinmin, "2027-03-03", FAILING)
    assert graded.status == "running"
    recorded = [t for t in graded.open_tasks if t.step == "rectification"]
    assert recorded, graded.open_tasks
    with read_session(p.engine.sessions) as session:
        detail = p.engine.get_task(session, load_actor(session, "xinmin_office"), recorded[0].id)
    assert detail.data["recorded_figures"]["projects_completed"] == 1
    assert detail.data["recorded_figures"]["patents"] == 2
    p.do("xinmin_office", "rectification", xinmin)
    p.do("province_office", "recheck", xinmin, recheck_decision="通过")

    # Year 2: 新民市 excellent; 法库县 fails again and loses its title.
    plan_and_consult(p, xinmin)
    plan_and_consult(p, faku)
    assess(p, xinmin, "2028-03-03", EXCELLENT)
    assess(p, faku, "2028-03-03", FAILING)

    # Year 3 and the end-of-term acceptance for 新民市.
    plan_and_consult(p, xinmin)
    assess(p, xinmin, "2029-03-03", EXCELLENT)
    p.do("xinmin_office", "term_summary", xinmin)
    view = p.do("province_office", "term_acceptance", xinmin, acceptance_decision="通过")
    assert (view.status, view.outcome) == ("completed", "期满通过")

    with read_session(p.engine.sessions) as session:
        overview = build_overview(session, load_actor(session, "province_office"), p.engine.now())
        zones = {z.county_code: z for z in overview.zones}
        assert zones[xinmin].status == "期满通过"
        assert zones[xinmin].grades == {"1": "不合格", "2": "优秀", "3": "优秀"}
        assert zones[faku].status == "已撤销"
        assert zones[faku].grades == {"1": "不合格", "2": "不合格"}
        revoked = session.scalar(
            select(Instance).where(Instance.county_code == faku, Instance.process_id == "zone_term")
        )
        assert (revoked.status, revoked.outcome) == ("completed", "已撤销")
        assert revoked.result["revocation"]["document_no"].startswith("辽科协发〔2028〕")
        documents = {
            (county, kind, document.source.get("variant", "")): document
            for county, kind, document in session.execute(
                select(Instance.county_code, Document.kind, Document)
                .join(Instance, Document.instance_id == Instance.id)
                .where(Instance.process_id == "zone_term")
            ).tuples()
        }
        assert sorted((county, kind, variant) for county, kind, variant in documents) == [
            (faku, "撤销通知", ""),
            (faku, "考核结果通知", "第1年度"),
            (faku, "考核结果通知", "第2年度"),
            (xinmin, "考核结果通知", "第1年度"),
            (xinmin, "考核结果通知", "第2年度"),
            (xinmin, "考核结果通知", "第3年度"),
        ]
        assert documents[(faku, "撤销通知", "")].document_no == revoked.result["revocation"]["document_no"]
        notice = documents[(faku, "撤销通知", "")]
        assert revoked.result["revocation_document"]["document_id"] == str(notice.id)
        # Rendered by the issuing command (inline in tests): stored, and matching its hash.
        assert notice.content.startswith(b"%PDF") and notice.sha256 == hashlib.sha256(notice.content).hexdigest()
        numbers = [d.document_no for d in documents.values()]
        assert len(set(numbers)) == len(numbers) and all(n.startswith("辽科协发〔") for n in numbers)
        decided = session.scalars(select(Notification).where(Notification.kind == "决定"))
        decisions = {(n.username, n.message) for n in decided}
        assert ("xinmin_office", "新民市示范区（县）创建期满验收通过。") in decisions
        assert ("shenyang_sa", "新民市示范区（县）创建期满验收通过。") in decisions

        assert verify_history(session).ok
        for case_id in session.scalars(select(Instance.id)):
            result = replay_instance(p.engine.store, session, case_id)
            assert result.matches, result.difference
