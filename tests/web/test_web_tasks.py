"""The task page: the form from its JSON Schema, server-side validation with the input kept, 暂存, 退回,
转办, 签收, comments and attachments, and one zone-creation case walked through the pages."""

from __future__ import annotations

import re

from sqlalchemy import select

from engine.models import Attachment, Draft, HistoryEvent, RoleAssignment, User
from tests.web.conftest import PDF, World, fill, form_data, form_schema, open_task, signed_in


def _submit(user, task_id, pairs, **extra):
    return user.post(f"/tasks/{task_id}", [*pairs, ("action", extra.pop("action", "submit"))], **extra)


def test_the_form_shows_every_kind_of_field(world: World) -> None:
    user = signed_in(world.app, "dalian_sa")
    page = user.get(f"/tasks/{world.recommend_b}").get_data(as_text=True)
    assert "创新驱动助力示范区（县）创建推荐表" in page
    assert '<textarea id="f-recommend_overview"' in page  # textarea
    assert 'name="f.recommend_gdp"' in page and 'inputmode="decimal"' in page  # number
    assert 'inputmode="numeric"' in page  # integer
    assert 'name="f.recommend_leading_industries.0"' in page  # repeatable text rows
    assert 'name="f.recommend_key_enterprises.0.credit_code"' in page  # table of objects
    assert "<template>" in page and "add-row" in page  # add/remove rows
    assert 'type="checkbox" name="f.recommend_cooperation_directions" value="科技攻关"' in page  # multi-select
    assert 'name="f.recommend_pledge" value="true"' in page  # boolean
    assert 'type="file" name="file.recommend_attachment"' in page  # attachment field
    assert "请会同市委组织部人才办" in page  # instructions


def test_a_refused_form_keeps_the_input_and_shows_errors_beside_the_fields(world: World) -> None:
    user = signed_in(world.app, "dalian_sa")
    data = {**fill("recommend"), "recommend_contact_phone": "12345678", "recommend_gdp": "很多"}
    del data["recommend_reason"]
    response = _submit(user, world.recommend_b, form_data(form_schema("recommend"), data))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "有 3 处需要修改" in page
    assert re.search(r'id="f-recommend_contact_phone"[^>]*aria-invalid="true"', page)
    assert 'value="12345678"' in page and 'value="很多"' in page  # the input as typed
    assert "此项为必填项" in page and "应为数字" in page
    assert "格式不正确，例如：13812345678 / 024-23456789。" in page  # the field's JSON Schema examples
    assert fill("recommend")["recommend_overview"][:10] in page  # the other fields kept too


def test_a_field_with_examples_shows_the_first_as_its_placeholder(world: World) -> None:
    page = signed_in(world.app, "dalian_sa").get(f"/tasks/{world.recommend_b}").get_data(as_text=True)
    assert re.search(r'name="f.recommend_contact_phone"[^>]*placeholder="例如：13812345678"', page)


def test_a_draft_is_saved_and_loaded_again(world: World) -> None:
    user = signed_in(world.app, "dalian_sa")
    response = _submit(user, world.recommend_b, [("f.recommend_reason", "草稿中的推荐理由")], action="draft")
    assert response.status_code == 302
    page = user.get(f"/tasks/{world.recommend_b}").get_data(as_text=True)
    assert "已载入您暂存的内容" in page and "草稿中的推荐理由" in page
    with world.engine().sessions() as session:
        draft = session.scalar(select(Draft.data).where(Draft.task_id == world.recommend_b))
    assert draft["recommend_reason"] == "草稿中的推荐理由"


def test_an_upload_in_a_file_field_is_attached_to_the_case(world: World) -> None:
    user = signed_in(world.app, "dalian_sa")
    pairs = form_data(form_schema("recommend"), fill("recommend"))
    data = {
        **dict(pairs),
        "action": "submit",
        "file.recommend_attachment": (__import__("io").BytesIO(PDF), "推荐表.pdf"),
    }
    data["csrf_token"] = user.csrf()
    multi = [(k, v) for k, v in pairs if k not in data]  # the repeated checkbox values
    from werkzeug.datastructures import MultiDict

    body = MultiDict(list(data.items()) + multi)
    response = user.client.post(f"/tasks/{world.recommend_b}", data=body, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    with world.engine().sessions() as session:
        attachment = session.scalar(select(Attachment).where(Attachment.instance_id == world.case_b))
        submitted = session.scalar(
            select(HistoryEvent.payload).where(
                HistoryEvent.instance_id == world.case_b, HistoryEvent.command == "complete"
            )
        )
    assert attachment.filename == "推荐表.pdf"
    assert submitted["data"]["recommend_attachment"] == str(attachment.id)
    case = user.get(f"/cases/{world.case_b}").get_data(as_text=True)
    assert f"/attachments/{attachment.id}" in case


def test_return_needs_a_reason_and_sends_the_case_back(world: World) -> None:
    engine = world.engine()
    user = signed_in(world.app, "shenyang_sa")
    # move case A on to 市委组织部's consent, which offers 退回
    xinmin = signed_in(world.app, "xinmin_party")
    schema = form_schema("research_report")
    assert _submit(xinmin, world.research_task, form_data(schema, fill("research_report"))).status_code == 302
    consent = open_task(engine, world.case_a, "org_consent")
    org = signed_in(world.app, "shenyang_org")
    page = org.get(f"/tasks/{consent}").get_data(as_text=True)
    assert "退回修改" in page
    refused = org.post(f"/tasks/{consent}/return", {"reason": "  "})
    assert refused.status_code == 400 and "退回须填写理由" in refused.get_data(as_text=True)
    done = org.post(f"/tasks/{consent}/return", {"reason": "缺少人才数据"})
    assert done.status_code == 302
    assert open_task(engine, world.case_a, "research_report")
    timeline = user.get(f"/cases/{world.case_a}").get_data(as_text=True)
    assert "缺少人才数据" in timeline and "退回" in timeline


def test_a_task_without_return_offers_no_return_and_refuses_one(world: World) -> None:
    user = signed_in(world.app, "dalian_sa")
    assert "退回修改" not in user.get(f"/tasks/{world.recommend_b}").get_data(as_text=True)
    assert user.post(f"/tasks/{world.recommend_b}/return", {"reason": "x"}).status_code == 409


def test_transfer_to_a_colleague_of_the_same_role_and_unit(world: World) -> None:
    with world.engine().sessions() as session, session.begin():
        user = User(
            username="dalian_sa2",
            display_name="大连市科协 王科员",
            password_hash="x",
            active=True,
            created_at=world.engine().now(),
        )
        user.roles.append(RoleAssignment(role="city_sa", org_code="210200"))
        session.add(user)
    first = signed_in(world.app, "dalian_sa")
    page = first.get(f"/tasks/{world.recommend_b}").get_data(as_text=True)
    assert "大连市科协 王科员" in page and "转办" in page
    refused = first.post(f"/tasks/{world.recommend_b}/transfer", {"to": "shenyang_sa", "reason": "出差"})
    assert refused.status_code == 400 and "请选择本单位同一岗位的同事" in refused.get_data(as_text=True)
    assert first.post(f"/tasks/{world.recommend_b}/transfer", {"to": "dalian_sa2", "reason": "出差"}).status_code == 302
    assert f"/tasks/{world.recommend_b}" not in first.get("/inbox").get_data(as_text=True)
    assert first.get(f"/tasks/{world.recommend_b}").status_code == 200  # may still look at it
    with world.engine().sessions() as session:
        event = session.scalar(select(HistoryEvent).where(HistoryEvent.command == "transfer"))
    assert event.payload == {"to": "dalian_sa2", "reason": "出差"} and event.actor == "dalian_sa"


def test_claim_and_release(world: World) -> None:
    user = signed_in(world.app, "dalian_sa")
    assert user.post(f"/tasks/{world.recommend_b}/claim").status_code == 302
    assert "已签收" in user.get("/inbox").get_data(as_text=True)
    assert user.post(f"/tasks/{world.recommend_b}/unclaim").status_code == 302
    assert "未签收" in user.get("/inbox").get_data(as_text=True)


def test_comments_and_attachments_on_the_task_page(world: World) -> None:
    user = signed_in(world.app, "xinmin_party")
    back = f"/tasks/{world.research_task}"
    response = user.post(
        f"/cases/{world.case_a}/comments", {"body": "已启动调研", "task_id": str(world.research_task), "next": back}
    )
    assert response.status_code == 302 and response.headers["Location"] == back
    upload = user.post(
        f"/cases/{world.case_a}/attachments",
        {"file": (__import__("io").BytesIO(b"not a pdf"), "x.pdf"), "next": back},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 302
    page = user.get(back).get_data(as_text=True)
    assert "已启动调研" in page and "请县委抓紧调研" in page
    assert "文件内容与扩展名 .pdf 不符" in page  # the refusal, flashed
    assert "调研提纲.pdf" in page
    download = user.get(f"/attachments/{world.attachment}")
    assert download.status_code == 200 and download.data == PDF
    assert "attachment;" in download.headers["Content-Disposition"]
    assert "filename*=UTF-8''%E8%B0%83" in download.headers["Content-Disposition"]


def test_a_handled_task_leads_to_its_case(world: World) -> None:
    user = signed_in(world.app, "dalian_sa")
    assert _submit(user, world.recommend_b, form_data(form_schema("recommend"), fill("recommend"))).status_code == 302
    again = user.get(f"/tasks/{world.recommend_b}")
    assert again.status_code == 302 and again.headers["Location"] == f"/cases/{world.case_b}"
    assert "填报推荐表" in user.get("/inbox/done").get_data(as_text=True)


def test_one_case_from_recommendation_to_approval_through_the_pages(world: World) -> None:
    """Every form of zone_creation, posted as the page names its fields, by the right user."""
    engine, case = world.engine(), world.case_a
    steps = [
        ("xinmin_party", "research_report", fill("research_report")),
        ("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意")),
        ("shenyang_sa", "joint_request", fill("joint_request")),
        ("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意")),
        ("province_office", "assign_societies", fill("assign_societies", assigned_societies=["S001", "S002"])),
    ]
    for username, step, data in steps:
        user = signed_in(world.app, username)
        form = {"research_report": "research_report"}.get(step, step)
        response = _submit(user, open_task(engine, case, step), form_data(form_schema(form), data))
        assert response.status_code == 302, (step, response.get_data(as_text=True)[:2000])
    sheet = fill(
        "society_evaluation",
        veto_falsified=False,
        veto_no_leading_industry=False,
        veto_no_funding=False,
        veto_major_incident=False,
        score_foundation=23,
        score_demand=22,
        score_targets=18,
        score_support=17,
        score_materials=9,
    )
    for username in ("s001", "s002"):
        society = signed_in(world.app, username)
        evaluation = society.get("/inbox").get_data(as_text=True).split("/tasks/")[1][:36]
        assert _submit(society, evaluation, form_data(form_schema("society_evaluation"), sheet)).status_code == 302
    province = signed_in(world.app, "province_office")
    decision = open_task(engine, case, "province_decision")
    response = _submit(
        province,
        decision,
        form_data(form_schema("province_decision"), fill("province_decision", province_decision="批准")),
    )
    assert response.status_code == 302
    assert "案件已办结：已批复" in province.get("/inbox").get_data(as_text=True)
    finished = province.get("/inbox/finished").get_data(as_text=True)
    assert "已批复" in finished and "新民市" in finished
    page = province.get(f"/cases/{case}").get_data(as_text=True)
    assert "办结：已批复" in page and "研究决定" in page
