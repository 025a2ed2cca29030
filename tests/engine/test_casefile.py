"""The case file on the real engine and a SQLite file: comments, attachments, drafts, transfer, bulk
claim and bulk acknowledgement, with the permission rules and the all-or-nothing guarantees."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import casefile
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.models import Attachment, Comment, Draft, HistoryEvent, Instance, OpenTask

FORMS = Path(__file__).parent / "forms"
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(32)


def zipped(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<xml/>")
    return buffer.getvalue()


def snapshot(desk) -> tuple:
    """Everything a refused command must leave as it was."""
    with desk.as_user("auditor") as (session, _actor):
        return (
            sorted(map(tuple, session.execute(select(Instance.id, Instance.revision, Instance.status)))),
            sorted(map(tuple, session.execute(select(OpenTask.id, OpenTask.claimed_by)))),
            session.scalar(select(func.count()).select_from(HistoryEvent)),
            session.scalar(select(func.count()).select_from(Attachment)),
            session.scalar(select(func.count()).select_from(Comment)),
            session.scalar(select(func.count()).select_from(Draft)),
        )


def last_event(desk, case: uuid.UUID) -> HistoryEvent:
    with desk.as_user("auditor") as (session, actor):
        return desk.app.history(session, actor, case)[-1]


def call(desk, username: str, fn, *args):
    with desk.as_user(username) as (session, actor):
        return fn(desk.app, session, actor, *args)


# -- comments -------------------------------------------------------------------------------------


def test_readers_comment_and_each_comment_is_in_the_history(desk) -> None:
    case = desk.start("210181").id
    fill = desk.task(case, "fill")

    call(desk, "shenyang_sa", casefile.add_comment, case, "  请于本周内完成填报  ")
    assert last_event(desk, case).command == "comment"
    assert last_event(desk, case).payload == {"body": "请于本周内完成填报"}
    call(desk, "xinmin_party", casefile.add_comment, case, "已知悉", fill.id)  # the county reads its case
    event = last_event(desk, case)
    assert (event.actor, event.task_id, event.bpmn_id) == ("xinmin_party", fill.id, "fill")

    comments = call(desk, "auditor", casefile.list_comments, case)
    assert [(c.author, c.body, c.task_id) for c in comments] == [
        ("shenyang_sa", "请于本周内完成填报", None),
        ("xinmin_party", "已知悉", fill.id),
    ]


def test_comments_are_refused_to_outsiders_and_to_the_read_only_auditor(desk) -> None:
    case = desk.start("210181").id
    other = desk.start("210124").id
    before = snapshot(desk)

    with pytest.raises(NotFound):
        call(desk, "dalian_sa", casefile.add_comment, case, "越权")
    with pytest.raises(NotFound):
        call(desk, "dalian_sa", casefile.list_comments, case)
    with pytest.raises(PermissionDenied):
        call(desk, "auditor", casefile.add_comment, case, "审计意见")
    for body in ("", "   ", "字" * 2001, None):
        with pytest.raises(InvalidInput) as raised:
            call(desk, "shenyang_sa", casefile.add_comment, case, body)
        assert set(raised.value.details) == {"body"}
    with pytest.raises(InvalidInput) as raised:  # a task of another case
        call(desk, "shenyang_sa", casefile.add_comment, case, "意见", desk.task(other, "fill").id)
    assert set(raised.value.details) == {"task_id"}
    assert snapshot(desk) == before

    call(desk, "shenyang_sa", casefile.add_comment, case, "字" * 2000)


# -- attachments ----------------------------------------------------------------------------------


def test_an_attachment_is_stored_with_its_sha256_and_recorded(desk) -> None:
    case = desk.start("210181").id

    attachment = call(desk, "shenyang_sa", casefile.add_attachment, case, "C:\\Users\\王\\申报材料.pdf", PDF)

    assert attachment.filename == "申报材料.pdf"
    assert (attachment.size, attachment.content_type) == (len(PDF), "application/pdf")
    assert attachment.sha256 == hashlib.sha256(PDF).hexdigest()
    event = last_event(desk, case)
    assert event.command == "attachment"
    assert event.payload == {"filename": "申报材料.pdf", "size": len(PDF), "sha256": attachment.sha256}
    assert (event.actor, event.role, event.org_code, event.task_id) == (
        "shenyang_sa",
        "city_sa",
        "210100",
        None,
    )

    fetched = call(desk, "xinmin_party", casefile.get_attachment, attachment.id)  # any reader of the case
    assert fetched.content == PDF
    assert [a.filename for a in call(desk, "auditor", casefile.list_attachments, case)] == ["申报材料.pdf"]


def test_an_attachment_is_hidden_from_those_who_may_not_read_the_case(desk) -> None:
    case = desk.start("210181").id
    attachment = call(desk, "shenyang_sa", casefile.add_attachment, case, "a.pdf", PDF)

    with pytest.raises(NotFound) as stranger:
        call(desk, "dalian_sa", casefile.get_attachment, attachment.id)
    with pytest.raises(NotFound) as wrong_id:
        call(desk, "dalian_sa", casefile.get_attachment, uuid.uuid4())
    assert type(stranger.value) is type(wrong_id.value)
    assert stranger.value.code == wrong_id.value.code
    with pytest.raises(NotFound):
        call(desk, "dalian_sa", casefile.list_attachments, case)


@pytest.mark.parametrize(
    ("filename", "content", "stored_as"),
    [
        ("报告.docx", zipped("[Content_Types].xml", "word/document.xml"), "报告.docx"),
        ("统计.XLSX", zipped("[Content_Types].xml", "xl/workbook.xml"), "统计.XLSX"),
        ("旧版.doc", OLE2, "旧版.doc"),
        ("旧表.xls", OLE2, "旧表.xls"),
        ("照片.JPG", b"\xff\xd8\xff\xe0" + bytes(16), "照片.JPG"),
        ("截图.png", PNG, "截图.png"),
        ("说明.txt", "县委会议纪要".encode("gbk"), "说明.txt"),
        ("说明2.txt", "县委会议纪要".encode(), "说明2.txt"),
        ("材料.zip", zipped("a.txt"), "材料.zip"),
        ("../../etc/passwd.txt", b"root", "passwd.txt"),
        ('a<b>:"c|d?.pdf', PDF, "a_b___c_d_.pdf"),
        ("\u202egpj.pdf", PDF, "gpj.pdf"),
        ("长" * 300 + ".pdf", PDF, "长" * 196 + ".pdf"),
    ],
)
def test_allowed_types_are_accepted_under_a_safe_name(
    desk, filename: str, content: bytes, stored_as: str
) -> None:
    case = desk.start("210181").id
    attachment = call(desk, "shenyang_sa", casefile.add_attachment, case, filename, content)
    assert attachment.filename == stored_as
    assert attachment.content_type == casefile.ALLOWED_TYPES[stored_as.rsplit(".", 1)[1].lower()]


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("setup.exe", b"MZ" + bytes(32)),
        ("报告", PDF),
        (".pdf", PDF),
        ("报告.pdf", PNG),  # the extension lies about the content
        ("报告.docx", zipped("a.txt")),  # a zip, but not a Word document
        ("报告.xlsx", zipped("word/document.xml")),
        ("报告.jpg", PNG),
        ("说明.txt", b"text\x00with a NUL"),
        ("报告.pdf", b""),
        ("报告.pdf", b"%PDF-" + bytes(casefile.MAX_ATTACHMENT_BYTES)),
    ],
)
def test_wrong_types_empty_and_oversized_files_are_refused(desk, filename: str, content: bytes) -> None:
    case = desk.start("210181").id
    before = snapshot(desk)
    with pytest.raises(InvalidInput) as raised:
        call(desk, "shenyang_sa", casefile.add_attachment, case, filename, content)
    assert set(raised.value.details) == {"file"}
    assert snapshot(desk) == before


def test_only_the_handlers_of_an_open_step_may_attach(desk) -> None:
    case = desk.start("210181").id
    fill = desk.task(case, "fill")
    before = snapshot(desk)

    for reader in ("xinmin_party", "province_office", "auditor"):  # may read the case, handle no step of it
        with pytest.raises(PermissionDenied):
            call(desk, reader, casefile.add_attachment, case, "a.pdf", PDF)
    with pytest.raises(PermissionDenied):
        call(desk, "xinmin_party", casefile.add_attachment, case, "a.pdf", PDF, fill.id)
    with pytest.raises(NotFound):
        call(desk, "dalian_sa", casefile.add_attachment, case, "a.pdf", PDF)
    assert snapshot(desk) == before

    attachment = call(desk, "shenyang_sa", casefile.add_attachment, case, "a.pdf", PDF, fill.id)
    assert attachment.task_id == fill.id
    assert (last_event(desk, case).task_id, last_event(desk, case).bpmn_id) == (fill.id, "fill")

    desk.complete("shenyang_sa", case, "fill", {"title": "材料"})
    call(desk, "xinmin_party", casefile.add_attachment, case, "b.pdf", PDF)  # now the county handles it


def test_a_finished_case_takes_no_more_attachments(desk) -> None:
    case = desk.to_ack("210181", "xinmin_party")
    desk.complete("shenyang_sa", case, "ack", {})
    with pytest.raises(Conflict):
        call(desk, "shenyang_sa", casefile.add_attachment, case, "a.pdf", PDF)


# -- drafts ---------------------------------------------------------------------------------------


def test_a_draft_is_saved_replaced_loaded_and_discarded(desk) -> None:
    case = desk.start("210181").id
    task = desk.task(case, "fill")
    events = snapshot(desk)[2]

    call(desk, "shenyang_sa", casefile.save_draft, task.id, {"title": "初稿"})
    call(desk, "shenyang_sa", casefile.save_draft, task.id, {"title": "二稿", "note": "待核"})

    with desk.as_user("shenyang_sa") as (session, actor):
        assert casefile.load_draft(session, actor, task.id) == {"title": "二稿", "note": "待核"}
    with desk.as_user("xinmin_party") as (session, actor):
        assert casefile.load_draft(session, actor, task.id) is None
    assert snapshot(desk)[2] == events  # a draft is private: no history event, no new revision
    assert snapshot(desk)[5] == 1

    with desk.as_user("shenyang_sa") as (session, actor):
        assert casefile.discard_drafts(session, task.id) == 1
        assert casefile.load_draft(session, actor, task.id) is None


def test_only_who_may_act_saves_a_draft_and_only_json_objects(desk) -> None:
    case = desk.start("210181").id
    task = desk.task(case, "fill")

    for username in ("xinmin_party", "auditor", "dalian_sa"):
        with pytest.raises(PermissionDenied):
            call(desk, username, casefile.save_draft, task.id, {"title": "x"})
    for data in (["title"], "title", None, {"when": object()}):
        with pytest.raises(InvalidInput):
            call(desk, "shenyang_sa", casefile.save_draft, task.id, data)
    with pytest.raises(NotFound):
        call(desk, "shenyang_sa", casefile.save_draft, uuid.uuid4(), {})
    desk.complete("shenyang_sa", case, "fill", {"title": "材料"})
    with pytest.raises(Conflict):
        call(desk, "shenyang_sa", casefile.save_draft, task.id, {"title": "迟了"})
    assert snapshot(desk)[5] == 0


# -- transfer -------------------------------------------------------------------------------------


def test_transfer_hands_the_task_to_a_colleague_in_the_same_role(desk) -> None:
    desk.add_user("shenyang_sa2", "city_sa", "210100")
    case = desk.start("210181").id
    task = desk.task(case, "fill")

    view = call(desk, "shenyang_sa", casefile.transfer_task, task.id, "shenyang_sa2", "本人出差")

    assert view.claimed_by == "shenyang_sa2"
    event = last_event(desk, case)
    assert (event.command, event.payload, event.task_id) == (
        "transfer",
        {"to": "shenyang_sa2", "reason": "本人出差"},
        task.id,
    )
    with desk.as_user("shenyang_sa") as (session, actor):
        assert desk.app.list_tasks(session, actor) == []
    with pytest.raises(PermissionDenied):
        desk.complete("shenyang_sa", case, "fill", {"title": "材料"})
    desk.complete("shenyang_sa2", case, "fill", {"title": "材料"})


def test_transfer_is_refused_to_anyone_without_the_role_and_without_a_reason(desk) -> None:
    desk.add_user("shenyang_sa2", "city_sa", "210100")
    desk.add_user("shenyang_retired", "city_sa", "210100", active=False)
    case = desk.start("210181").id
    task = desk.task(case, "fill")
    before = snapshot(desk)

    for target in ("xinmin_party", "dalian_sa", "shenyang_retired", "nobody", "shenyang_sa"):
        with pytest.raises(InvalidInput) as raised:
            call(desk, "shenyang_sa", casefile.transfer_task, task.id, target, "出差")
        assert set(raised.value.details) == {"to"}
    for reason in ("", "  ", None, "由" * 501):
        with pytest.raises(InvalidInput) as raised:
            call(desk, "shenyang_sa", casefile.transfer_task, task.id, "shenyang_sa2", reason)
        assert set(raised.value.details) == {"reason"}
    for username in ("auditor", "dalian_sa", "xinmin_party"):
        with pytest.raises(PermissionDenied):
            call(desk, username, casefile.transfer_task, task.id, "shenyang_sa2", "出差")
    assert snapshot(desk) == before


# -- bulk actions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (None, True),
        ({}, True),
        (json.loads((FORMS / "ack.json").read_text(encoding="utf-8")), True),
        ({"type": "object", "properties": {"c": {"type": "string", "minLength": 2}}}, True),
        (json.loads((FORMS / "review.json").read_text(encoding="utf-8")), False),
        ({"type": "object", "properties": {"c": {"type": "string"}}, "required": ["c"]}, False),
        ({"type": "object", "properties": {"ok": {"type": "string", "enum": ["同意", "不同意"]}}}, False),
        ({"type": "object", "properties": {"sealed": {"type": "boolean"}}}, False),
        ({"type": "object", "properties": {"n": {"type": "integer"}}}, False),
        ({"type": "object", "minProperties": 1, "properties": {"c": {"type": "string"}}}, False),
    ],
)
def test_needs_no_input(schema: dict | None, expected: bool) -> None:
    assert casefile.needs_no_input(schema) is expected


def test_acknowledgements_are_completed_in_bulk(desk) -> None:
    cases = [desk.to_ack("210181", "xinmin_party"), desk.to_ack("210124", "faku_party")]
    tasks = [desk.task(case, "ack").id for case in cases]
    call(desk, "shenyang_sa", casefile.save_draft, tasks[0], {"ack_comment": "已阅"})

    views = call(desk, "shenyang_sa", casefile.acknowledge_tasks, tasks)

    assert [(v.id, v.status, v.outcome) for v in views] == [(c, "completed", "办结") for c in cases]
    assert snapshot(desk)[5] == 0  # the drafts of the completed tasks are gone
    assert [last_event(desk, c).command for c in cases] == ["complete", "complete"]


def test_bulk_acknowledgement_refuses_a_task_that_needs_input_and_changes_nothing(desk) -> None:
    acknowledgement = desk.task(desk.to_ack("210181", "xinmin_party"), "ack")
    needs_input = desk.task(desk.start("210124").id, "fill")
    before = snapshot(desk)

    for order in ([acknowledgement.id, needs_input.id], [needs_input.id, acknowledgement.id]):
        # Caught inside the transaction, which then commits: the refusal itself wrote nothing.
        with desk.as_user("shenyang_sa") as (session, actor), pytest.raises(InvalidInput) as raised:
            casefile.acknowledge_tasks(desk.app, session, actor, order)
        assert set(raised.value.details) == {str(needs_input.id)}
        assert "填报材料" in raised.value.details[str(needs_input.id)]
        assert snapshot(desk) == before


def test_bulk_acknowledgement_of_a_task_the_actor_may_not_act_on_changes_nothing(desk) -> None:
    mine = desk.task(desk.to_ack("210181", "xinmin_party"), "ack")
    theirs = desk.task(desk.start("210281", username="dalian_sa").id, "fill")
    before = snapshot(desk)
    with desk.as_user("shenyang_sa") as (session, actor), pytest.raises(PermissionDenied):
        casefile.acknowledge_tasks(desk.app, session, actor, [mine.id, theirs.id])
    with desk.as_user("auditor") as (session, actor), pytest.raises(PermissionDenied):
        casefile.acknowledge_tasks(desk.app, session, actor, [mine.id])
    assert snapshot(desk) == before


def test_tasks_are_claimed_in_bulk_all_or_nothing(desk) -> None:
    first, second = (desk.task(desk.start(county).id, "fill") for county in ("210181", "210124"))
    theirs = desk.task(desk.start("210281", username="dalian_sa").id, "fill")
    before = snapshot(desk)

    with desk.as_user("shenyang_sa") as (session, actor), pytest.raises(PermissionDenied):
        casefile.claim_tasks(desk.app, session, actor, [first.id, second.id, theirs.id])
    with desk.as_user("shenyang_sa") as (session, actor), pytest.raises(NotFound):
        casefile.claim_tasks(desk.app, session, actor, [first.id, uuid.uuid4()])
    with desk.as_user("shenyang_sa") as (session, actor), pytest.raises(InvalidInput):
        casefile.claim_tasks(desk.app, session, actor, [uuid.uuid4() for _ in range(casefile.MAX_BULK + 1)])
    assert snapshot(desk) == before

    views = call(desk, "shenyang_sa", casefile.claim_tasks, [first.id, second.id, first.id])
    assert [(v.id, v.claimed_by) for v in views] == [(first.id, "shenyang_sa"), (second.id, "shenyang_sa")]
    events = snapshot(desk)[2]
    call(desk, "shenyang_sa", casefile.claim_tasks, [first.id])  # already mine: nothing to record
    assert snapshot(desk)[2] == events
