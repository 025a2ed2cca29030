"""Official documents (公文) on the case page and in the API: listed, served as PDF, refused outside the scope.

The module's copy of the web database has case A (新民市) driven to its 批复, so the process itself has issued
the 联合请示, the 考察评估意见表 and the 批复.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import select

from engine.db import read_session
from engine.models import Document
from tests.support.zone import GOOD, NO_VETO
from tests.web.conftest import World, act, fill, open_task, signed_in

KINDS = ["联合请示", "考察评估意见表", "批复"]


def _complete(world: World, username: str, step: str, data: dict) -> None:
    engine = world.engine()
    task = open_task(engine, world.case_a, step)
    act(engine, username, lambda s, a: engine.complete_task(s, a, task, data))


@pytest.fixture(scope="module")
def approved(shared: World) -> World:
    """This module's copy, with case A taken from 县委's research report to the 批复."""
    _complete(shared, "xinmin_party", "research_report", fill("research_report"))
    _complete(shared, "shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
    _complete(shared, "shenyang_sa", "joint_request", fill("joint_request"))
    _complete(shared, "xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
    assignment = fill("assign_societies", assigned_societies=["S001", "S002"])
    _complete(shared, "province_office", "assign_societies", assignment)
    sheet = fill("society_evaluation", **NO_VETO, **GOOD)
    engine = shared.engine()
    for society in ("s001", "s002"):
        tasks = act(engine, society, engine.list_tasks)
        task = next(t.id for t in tasks if t.step == "society_evaluation")
        # a copy each time: the evaluation's postScript adds society_code to the dict it is given
        act(engine, society, lambda s, a, task=task: engine.complete_task(s, a, task, dict(sheet)))
    _complete(shared, "province_office", "province_decision", fill("province_decision", province_decision="批准"))
    return shared


def _documents(world: World) -> list[Document]:
    with read_session(world.engine().sessions) as session:
        rows = session.scalars(select(Document).where(Document.instance_id == world.case_a)).all()
    return sorted(rows, key=lambda d: KINDS.index(d.kind))


def test_the_case_page_lists_the_documents_the_process_issued(approved: World) -> None:
    page = signed_in(approved.app, "xinmin_party").get(f"/cases/{approved.case_a}").get_data(as_text=True)
    section = page[page.index('id="documents"') :]
    section = section[: section.index("</section>")]
    documents = _documents(approved)
    assert [d.kind for d in documents] == KINDS
    for document in documents:
        assert document.kind in section and document.document_no in section and document.title in section
        assert f'href="/documents/{document.id}"' in section
        assert document.sha256[:12] in section
        issued_on = document.source["issued_on"]
        assert issued_on in section
    assert re.search(r"辽科协发〔2026〕1号", section)  # the 批复's number, taken by issue_approval
    assert section.count('data-label="') >= 6 * len(KINDS)  # every cell names its column for the phone layout


def test_a_document_is_served_inline_with_its_utf8_name_and_hash(approved: World) -> None:
    approval = _documents(approved)[2]
    response = signed_in(approved.app, "shenyang_sa").get(f"/documents/{approval.id}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF") and hashlib.sha256(response.data).hexdigest() == approval.sha256
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename=")
    assert f"filename*=UTF-8''{quote(approval.document_no)}" in disposition
    assert response.headers["X-Document-SHA256"] == approval.sha256


def test_another_city_gets_404_for_the_list_and_the_pdf(approved: World) -> None:
    approval = _documents(approved)[2]
    outsider = signed_in(approved.app, "dalian_sa")
    assert outsider.get(f"/documents/{approval.id}").status_code == 404
    assert outsider.get(f"/documents/{uuid.uuid4()}").status_code == 404
    assert outsider.get(f"/cases/{approved.case_a}").status_code == 404
    headers = {"Authorization": f"Bearer {approved.tokens['dalian_sa']}"}
    client = approved.app.test_client()
    listing = client.get(f"/api/v1/instances/{approved.case_a}/documents", headers=headers)
    assert listing.status_code == 404 and listing.get_json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/documents/{approval.id}", headers=headers).status_code == 404


def test_an_anonymous_visitor_is_sent_to_the_login(approved: World) -> None:
    approval = _documents(approved)[2]
    response = approved.app.test_client().get(f"/documents/{approval.id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert approved.app.test_client().get(f"/api/v1/documents/{approval.id}").status_code == 401


def test_the_api_lists_and_serves_the_documents(approved: World) -> None:
    client = approved.app.test_client()
    headers = {"Authorization": f"Bearer {approved.tokens['province_office']}"}
    listing = client.get(f"/api/v1/instances/{approved.case_a}/documents", headers=headers).get_json()
    documents = _documents(approved)
    assert [item["kind"] for item in listing["items"]] == KINDS
    for item, document in zip(listing["items"], documents, strict=True):
        assert (item["id"], item["document_no"], item["sha256"]) == (
            str(document.id),
            document.document_no,
            document.sha256,
        )
        assert item["size"] == len(document.content) and item["issued_on"] == document.source["issued_on"]
        pdf = client.get(f"/api/v1/documents/{item['id']}", headers=headers)
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data == document.content
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/instances/{instance_id}/documents" in paths and "/api/v1/documents/{document_id}" in paths


def test_a_case_without_documents_says_so(shared: World) -> None:
    page = signed_in(shared.app, "dalian_sa").get(f"/cases/{shared.case_b}").get_data(as_text=True)
    assert "尚未生成公文" in page
