"""Official documents (公文) from a real case: fields, layout artefacts, identical re-generation, numbering
without gaps or duplicates (also under concurrent issuing, on SQLite and PostgreSQL), and read permissions.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from engine import AppEngine, Settings, build_engine
from engine.access import load_actor
from engine.clock import FixedClock
from engine.db import read_session, write_session
from engine.documents import (
    get_document,
    issue_document_pdf,
    issue_pdf,
    list_documents,
    regenerate_documents,
    render_document,
    rerender,
)
from engine.errors import InvalidInput, NotFound
from engine.models import Document, DocumentCounter, Instance
from engine.programme import ServiceContext
from tests.documents.helpers import BODIES, JOINT_NO, drive_to_approval, page_count, pdf_text, save_pages
from tests.support.scenario import Scenario

ISSUED = date(2026, 3, 2)
SHENYANG_COUNTIES = ("210102", "210103", "210104", "210105", "210106", "210111")


def term_data(engine: AppEngine, view: Any, **year: Any) -> dict[str, Any]:
    """The data of the zone_term case the 批复 started, with a recorded 创建年度 result."""
    with read_session(engine.sessions) as session:
        actor = load_actor(session, "auditor")
        data = engine.get_instance(session, actor, uuid.UUID(view.data["term_case"]["case_id"])).data
    return {**data, **year}


def test_the_joint_request_names_every_cosigning_body_and_asks_for_instruction(approved_case) -> None:
    _, view = approved_case
    pdf = render_document("联合请示", view.data, ISSUED, JOINT_NO)
    text = pdf_text(pdf)
    for expected in (
        JOINT_NO,
        "签发人：王建国李明赵志强",
        "关于申请创建辽宁省创新驱动助力示范区（县）的请示",
        "辽宁省科学技术协会：",
        *BODIES,
        "妥否，请批示。",
        "附件：1．主要目标任务及拟合作学会",
        "（联系人：张丽，联系电话：024-87654321）",
        "附件1主要目标任务及拟合作学会",
        "辽宁省农学会成果转移转化",
        "抄送：中共沈阳市委组织部。",
        "沈阳市科学技术协会办公室2026年3月2日印发",
    ):
        assert expected in text, expected
    assert text.count("妥否，请批示") == 1
    assert all(text.count(body) >= 2 for body in BODIES)  # 发文机关标志 and 署名
    assert page_count(pdf) >= 3  # the 附件 starts on a page of its own
    save_pages("joint_request", pdf)


def test_the_approval_has_its_number_term_partners_and_copies(approved_case) -> None:
    _, view = approved_case
    approval = view.data["approval"]
    pdf = render_document("批复", view.data, date.fromisoformat(approval["approval_date"]), approval["approval_no"])
    text = pdf_text(pdf)
    for expected in (
        "辽宁省科学技术协会文件",
        "辽科协发〔2026〕1号",
        "关于同意新民市创建辽宁省创新驱动助力示范区（县）的批复",
        "沈阳市科学技术协会、中共新民市委员会、新民市人民政府：",
        f"你们《关于申请创建辽宁省创新驱动助力示范区（县）的请示》（{JOINT_NO}）收悉",
        "创建期为三年，自2026年3月2日至2029年3月2日",
        "确定辽宁省农学会、辽宁省机械工程学会为新民市示范区（县）对接省级学会",
        "此复。",
        "（印章）",
        "辽宁省科学技术协会2026年3月2日",
        "抄送：中共辽宁省委组织部，中共沈阳市委组织部，辽宁省农学会，辽宁省机械工程学会。",
        "辽宁省科学技术协会办公室2026年3月2日印发",
        "—1—",
    ):
        assert expected in text, expected
    pages = save_pages("approval", pdf)
    assert not pages or len(pages) == page_count(pdf)


def test_the_evaluation_form_has_a_table_per_society_and_the_average(approved_case) -> None:
    _, view = approved_case
    pdf = render_document("考察评估意见表", view.data, ISSUED, "辽科协评〔2026〕1号")
    text = pdf_text(pdf)
    for expected in (
        "创新驱动助力示范区（县）考察评估意见表",
        "被考察单位：新民市（沈阳市）",
        "编号：辽科协评〔2026〕1号",
        "一、辽宁省机械工程学会",
        "二、辽宁省农学会",
        "专家组组长刘海涛（东北大学，教授）",
        "创建基础2523",
        "合计10089",
        "一票否决项无",
        "参评学会2家平均得分89分",
        "评估建议推荐",
        "辽宁省科学技术协会学会学术部",
    ):
        assert expected in text, expected
    save_pages("evaluation_form", pdf)


def test_the_annual_result_notice_and_the_revocation_notice(approved_case) -> None:
    engine, view = approved_case
    first = {"year_start": "2026-03-02", "year_end": "2027-03-02"}
    passed = term_data(engine, view, term_year=1, year_grade="良好", year_score=84, year_failed=False, **first)
    pdf = render_document("考核结果通知", passed, date(2027, 4, 10), "辽科协发〔2027〕3号")
    text = pdf_text(pdf)
    for expected in (
        "中共辽宁省委组织部",
        "辽科协发〔2027〕3号",
        "关于新民市示范区（县）第一个创建年度考核结果的通知",
        "中共沈阳市委组织部、沈阳市科学技术协会，中共新民市委员会、新民市人民政府：",
        "（辽科协发〔2026〕1号批复创建）第一个创建年度（2026年3月2日至2027年3月2日）",
        "考核得分84分，考核等级为“良好”。",
        "抄送：辽宁省农学会，辽宁省机械工程学会。",
    ):
        assert expected in text, expected
    save_pages("assessment_notice", pdf)

    results = [
        {"year": 1, "grade": "不合格", "score": 58, "failed": True},
        {"year": 2, "grade": "不合格", "score": 55, "failed": True},
    ]
    revoked = term_data(
        engine,
        view,
        year_results=results,
        revoke_reason="连续两个年度考核不合格",
        revocation={"document_no": "辽科协发〔2028〕3号"},
    )
    notice = pdf_text(render_document("考核结果通知", {**revoked, "term_year": 2, "year_grade": "不合格"}, ISSUED, "X"))
    assert "鉴于已连续两个创建年度考核不合格，将按规定撤销示范区（县）称号" in notice
    pdf = render_document("撤销通知", revoked, date(2028, 4, 1), "辽科协发〔2028〕3号")
    text = pdf_text(pdf)
    for expected in (
        "关于撤销新民市“辽宁省创新驱动助力示范区（县）”称号的通知",
        "新民市于2026年3月2日经辽科协发〔2026〕1号批复创建",
        "连续两个年度考核不合格（年度考核结果：第一个创建年度不合格（58分）、第二个创建年度不合格（55分））",
        "决定撤销新民市“辽宁省创新驱动助力示范区（县）”称号",
        "2028年4月1日",
    ):
        assert expected in text, expected
    save_pages("revocation_notice", pdf)


def test_the_same_data_gives_the_same_bytes(approved_case) -> None:
    _, view = approved_case
    first = render_document("批复", view.data, ISSUED, "辽科协发〔2026〕1号")
    assert render_document("批复", dict(view.data), ISSUED, "辽科协发〔2026〕1号") == first
    assert render_document("批复", view.data, date(2026, 3, 3), "辽科协发〔2026〕1号") != first
    with pytest.raises(InvalidInput):
        render_document("通知", view.data, ISSUED, "X")
    with pytest.raises(InvalidInput):
        render_document("批复", {"county_name": "新民市"}, ISSUED, "X")


def test_documents_are_numbered_stored_listed_and_issued_once(scenario: Scenario) -> None:
    engine = scenario.engine
    view = drive_to_approval(scenario)
    kinds = ("联合请示", "考察评估意见表", "批复")
    with write_session(engine.sessions) as session:
        instance = session.get(Instance, view.id)
        issued = {kind: issue_document_pdf(session, instance, kind, engine.now()) for kind in kinds}
        numbers = {kind: d.document_no for kind, d in issued.items()}
        ids = {kind: d.id for kind, d in issued.items()}
        with pytest.raises(InvalidInput):
            issue_document_pdf(session, instance, "考核结果通知", engine.now())  # no year grade in this case
    assert numbers == {
        "联合请示": JOINT_NO,
        "考察评估意见表": "辽科协评〔2026〕1号",
        "批复": view.data["approval"]["approval_no"],  # the number issue_approval took, not a new one
    }
    with write_session(engine.sessions) as session:
        instance = session.get(Instance, view.id)
        again = {kind: issue_document_pdf(session, instance, kind, engine.now()).id for kind in kinds}
        counter = session.get(DocumentCounter, ("辽科协评", 2026))
        assert again == ids and counter.last_number == 1
        for document in session.scalars(select(Document).where(Document.instance_id == view.id)):
            assert document.sha256 == hashlib.sha256(document.content).hexdigest()
            assert rerender(document) == document.content
    with read_session(engine.sessions) as session:
        listed = list_documents(session, load_actor(session, "shenyang_sa"), view.id)
        assert [d.kind for d in listed] == list(kinds)
        assert listed[2].filename == f"{numbers['批复']} 关于同意新民市创建辽宁省创新驱动助力示范区（县）的批复.pdf"
        assert get_document(session, load_actor(session, "xinmin_party"), ids["批复"]).kind == "批复"
        for outsider in ("faku_party", "dalian_sa"):
            with pytest.raises(NotFound):
                list_documents(session, load_actor(session, outsider), view.id)
            with pytest.raises(NotFound):
                get_document(session, load_actor(session, outsider), ids["批复"])
        with pytest.raises(NotFound):
            get_document(session, load_actor(session, "province_office"), uuid.uuid4())


def test_the_process_issues_its_documents_and_the_cli_helper_finds_them_unchanged(scenario: Scenario) -> None:
    engine = scenario.engine
    view = drive_to_approval(scenario)
    calls = [c for e in scenario.history() for c in e.payload.get("services", []) if c["operation"] == "issue_pdf"]
    assert [c["params"]["kind"] for c in calls] == ["联合请示", "考察评估意见表", "批复"]
    with write_session(engine.sessions) as session:
        instance = session.get(Instance, view.id)
        context = ServiceContext(session, engine.now(), instance, engine)
        result = issue_pdf(context, view.data, kind="批复")  # issuing again returns the stored one
    assert result == calls[2]["result"] == view.data["approval_document"]
    assert result["document_no"] == view.data["approval"]["approval_no"]
    with write_session(engine.sessions) as session:
        outcome = regenerate_documents(engine, session, load_actor(session, "province_office"), view.id)
    statuses = [(r.kind, r.status) for r in outcome]
    assert statuses == [("联合请示", "unchanged"), ("考察评估意见表", "unchanged"), ("批复", "unchanged")]
    assert not [e for e in scenario.history() if e.command == "document"]


def _started_cases(engine: AppEngine) -> list[uuid.UUID]:
    ids = []
    for county in SHENYANG_COUNTIES:
        case = Scenario(engine)
        case.start("shenyang_sa", "zone_creation", {"county_code": county})
        ids.append(case.instance_id)
    return ids


def _year_data(index: int) -> dict[str, Any]:
    return {"county_name": f"第{index}区", "city_name": "沈阳市", "term_year": 1, "year_grade": "合格", "year_score": 7}


def _issue(engine: AppEngine, instance_id: uuid.UUID, data: dict[str, Any]) -> str:
    with write_session(engine.sessions) as session:
        instance = session.get(Instance, instance_id)
        return issue_document_pdf(session, instance, "考核结果通知", engine.now(), data=data).document_no


def test_numbers_have_no_gaps_or_duplicates_even_when_issued_concurrently(
    engine: AppEngine, database_url: str, clock: FixedClock
) -> None:
    cases = _started_cases(engine)
    with pytest.raises(RuntimeError), write_session(engine.sessions) as session:
        first = session.get(Instance, cases[0])
        issue_document_pdf(session, first, "考核结果通知", engine.now(), data=_year_data(0))
        raise RuntimeError("the command failed after numbering")  # rolled back: the number is not used up
    other = build_engine(Settings(database_url=database_url), clock)
    numbers: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def issue_half(worker: AppEngine, half: list[tuple[int, uuid.UUID]]) -> None:
        try:
            barrier.wait()
            for index, instance_id in half:
                numbers.append(_issue(worker, instance_id, _year_data(index)))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    pairs = list(enumerate(cases))
    threads = [
        threading.Thread(target=issue_half, args=(worker, pairs[start::2]))
        for worker, start in ((engine, 0), (other, 1))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        other.db.dispose()
    assert errors == []
    assert sorted(numbers, key=lambda no: int(no.split("〕")[1][:-1])) == [
        f"辽科协发〔2026〕{n}号" for n in range(1, len(cases) + 1)
    ]
    with read_session(engine.sessions) as session:
        assert session.get(DocumentCounter, ("辽科协发", 2026)).last_number == len(cases)
        assert len(session.scalars(select(Document.id)).all()) == len(cases)


def test_a_case_started_in_the_same_transaction_can_issue_a_document(scenario: Scenario) -> None:
    """A document of a case whose row is not written yet: the case row is written first, then the document."""
    engine = scenario.engine
    view = drive_to_approval(scenario)
    with write_session(engine.sessions) as session:
        approved = session.get(Instance, view.id)
        new_id = uuid.uuid4()
        started = Instance(
            id=new_id,
            process_version_id=approved.process_version_id,
            process_id=approved.process_id,
            business_key=f"{approved.business_key}-again",
            city_code=approved.city_code,
            county_code=approved.county_code,
            status="running",
            revision=1,
            state=approved.state,
            serializer_version=approved.serializer_version,
            started_by="shenyang_sa",
            created_at=engine.now(),
            updated_at=engine.now(),
            event_count=0,
        )
        session.add(started)
        document = issue_document_pdf(session, started, "考察评估意见表", engine.now(), data=view.data)
    with read_session(engine.sessions) as session:
        stored = session.get(Document, document.id)
        assert stored is not None and stored.instance_id == new_id
        assert stored.sha256 == hashlib.sha256(stored.content).hexdigest()
        assert session.get(Instance, new_id).status == "running"
