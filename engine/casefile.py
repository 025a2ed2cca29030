"""The case file around the workflow: comments (意见), attachments, drafts (暂存), transfer (转办) and the
bulk actions of the inbox (批量签收, 批量已阅).

Like the engine's own commands, each runs in the caller's transaction, checks the actor before it
changes anything, and appends a history event for every change to a case (drafts excepted: see
``save_draft``).
"""

from __future__ import annotations

import hashlib
import io
import json
import unicodedata
import uuid
import zipfile
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session, defer

from engine.access import Actor, check_may_act, may_read_instance
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.history import append_event
from engine.models import Attachment, Comment, Draft, HistoryEvent, Instance, OpenTask, RoleAssignment, User
from engine.roles import ROLES
from engine.runtime import Engine, InstanceView, TaskView

MAX_COMMENT_CHARS = 2000
MAX_REASON_CHARS = 500
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_FILENAME_CHARS = 200
MAX_DRAFT_BYTES = 256 * 1024
MAX_BULK = 100
_OLE2, _ZIP, _JPEG = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PK\x03\x04", b"\xff\xd8\xff"
_OOXML = "application/vnd.openxmlformats-officedocument."
# extension -> (content type, the bytes a file of that type starts with; text is checked by decoding)
_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "doc": ("application/msword", (_OLE2,)),
    "docx": (_OOXML + "wordprocessingml.document", (_ZIP,)),
    "xls": ("application/vnd.ms-excel", (_OLE2,)),
    "xlsx": (_OOXML + "spreadsheetml.sheet", (_ZIP,)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (_JPEG,)),
    "jpeg": ("image/jpeg", (_JPEG,)),
    "txt": ("text/plain", ()),
    "zip": ("application/zip", (_ZIP, b"PK\x05\x06")),
}
ALLOWED_TYPES: dict[str, str] = {extension: kind for extension, (kind, _) in _TYPES.items()}
_OOXML_PART = {"docx": "word/", "xlsx": "xl/"}


def add_comment(
    engine: Engine,
    session: Session,
    actor: Actor,
    instance_id: uuid.UUID,
    body: str,
    task_id: uuid.UUID | None = None,
) -> Comment:
    """意见 on a case, running or finished, by anyone who may read it except read-only roles (the auditor)."""
    instance = _readable_instance(session, actor, instance_id)
    if all(ROLES[role].scope == "global" for role, _ in actor.assignments):
        raise PermissionDenied(f"{actor.username} may read cases but not take part in them")
    text = body.strip() if isinstance(body, str) else ""
    if not 1 <= len(text) <= MAX_COMMENT_CHARS:
        raise InvalidInput(
            "comment must be 1-2000 characters", {"body": f"意见须为 1 到 {MAX_COMMENT_CHARS} 个字"}
        )
    where = {"task_id": task_id, "bpmn_id": _step_of_case(session, instance.id, task_id)} if task_id else {}
    comment = Comment(
        instance_id=instance.id, task_id=task_id, author=actor.username, at=engine.now(), body=text
    )
    session.add(comment)
    _record(engine, session, actor, instance, "comment", {"body": text}, **where)
    return comment


# The task page reads these on every view: built once, their SQL cache keys are computed once too.
_COMMENTS_OF_CASE = select(Comment).where(Comment.instance_id == bindparam("case_id")).order_by(Comment.id)
_ATTACHMENTS_OF_CASE = (
    select(Attachment)
    .options(defer(Attachment.content, raiseload=True))
    .where(Attachment.instance_id == bindparam("case_id"))
    .order_by(Attachment.uploaded_at, Attachment.filename)
)
_DRAFT = select(Draft.data).where(Draft.task_id == bindparam("task_id"), Draft.username == bindparam("username"))


def list_comments(engine: Engine, session: Session, actor: Actor, instance_id: uuid.UUID) -> list[Comment]:
    _readable_instance(session, actor, instance_id)
    return list(session.scalars(_COMMENTS_OF_CASE, {"case_id": instance_id}))


def add_attachment(
    engine: Engine,
    session: Session,
    actor: Actor,
    instance_id: uuid.UUID,
    filename: str,
    content: bytes,
    task_id: uuid.UUID | None = None,
) -> Attachment:
    """Attach a file to a running case.

    Only those handling the case now may add to its file: the actor must hold the (role, org) of one
    of its open tasks, and may act on ``task_id`` when one is named. Readers (the city while the
    county holds the case, the province, the auditor) may read the file but not add to it, and a
    finished case's file is closed.
    """
    instance = _readable_instance(session, actor, instance_id)
    if instance.status != "running":
        raise Conflict(f"case {instance.id} is {instance.status}; its file is closed")
    open_rows = list(session.scalars(select(OpenTask).where(OpenTask.instance_id == instance.id)))
    if task_id is not None:
        row = next((r for r in open_rows if r.id == task_id), None)
        if row is None:
            raise InvalidInput(
                f"task {task_id} is not open in case {instance.id}", {"task_id": "该事项不在办理中"}
            )
        check_may_act(actor, row)
    else:
        row = next((r for r in open_rows if actor.holds(r.role, r.org_code)), None)
        if row is None:
            raise PermissionDenied(f"{actor.username} handles no open step of case {instance.id}")
    name, extension = _clean_filename(filename)
    _check_content(extension, content)
    attachment = Attachment(
        id=uuid.uuid4(),
        instance_id=instance.id,
        task_id=task_id,
        filename=name,
        content_type=ALLOWED_TYPES[extension],
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by=actor.username,
        uploaded_at=engine.now(),
    )
    session.add(attachment)
    payload = {"filename": name, "size": attachment.size, "sha256": attachment.sha256}
    _record(
        engine, session, actor, instance, "attachment", payload, **_as(row, with_task=task_id is not None)
    )
    return attachment


def get_attachment(engine: Engine, session: Session, actor: Actor, attachment_id: uuid.UUID) -> Attachment:
    """The attachment with its content; NotFound, as for a wrong id, unless the actor may read the case."""
    attachment = session.get(Attachment, attachment_id)
    instance = session.get(Instance, attachment.instance_id) if attachment else None
    if instance is None or not may_read_instance(session, actor, instance):
        raise NotFound(f"attachment {attachment_id} not found")
    return attachment


def list_attachments(
    engine: Engine, session: Session, actor: Actor, instance_id: uuid.UUID
) -> list[Attachment]:
    """The case's attachments, oldest first, without their content (``get_attachment`` serves that)."""
    _readable_instance(session, actor, instance_id)
    return list(session.scalars(_ATTACHMENTS_OF_CASE, {"case_id": instance_id}))


def save_draft(engine: Engine, session: Session, actor: Actor, task_id: uuid.UUID, data: Any) -> Draft:
    """暂存 the actor's unfinished form data (not validated: it is unfinished).

    A draft is private scratch data, not a change to the case: it gets no history event and leaves
    the case's revision alone, so saving a draft never races with the case's real commands.
    """
    row = engine.find_open_task(session, task_id)  # the engine's NotFound/Conflict for a missing or done task
    check_may_act(actor, row)
    try:
        size = len(json.dumps(data, ensure_ascii=False).encode()) if isinstance(data, dict) else None
    except (TypeError, ValueError):
        size = None
    if size is None:
        raise InvalidInput("draft data must be a JSON object", {"": "暂存的数据必须是对象"})
    if size > MAX_DRAFT_BYTES:
        raise InvalidInput("draft data too large", {"": f"暂存的数据不能超过 {MAX_DRAFT_BYTES // 1024} KB"})
    draft = session.scalar(select(Draft).where(Draft.task_id == task_id, Draft.username == actor.username))
    if draft is None:
        draft = Draft(task_id=task_id, username=actor.username)
        session.add(draft)
    draft.data, draft.saved_at = dict(data), engine.now()
    engine.flush_command(session)  # a concurrent first save of the same draft becomes a Conflict here
    return draft


def load_draft(session: Session, actor: Actor, task_id: uuid.UUID) -> dict[str, Any] | None:
    data = session.scalar(_DRAFT, {"task_id": task_id, "username": actor.username})
    return dict(data) if data is not None else None


def discard_drafts(session: Session, task_id: uuid.UUID) -> int:
    """Delete every draft of a task (called once the task is done); return how many there were."""
    return session.execute(delete(Draft).where(Draft.task_id == task_id)).rowcount or 0


def transfer_task(
    engine: Engine, session: Session, actor: Actor, task_id: uuid.UUID, to_username: str, reason: str
) -> TaskView:
    """转办: hand a task to a colleague holding the same role in the same org unit (it becomes theirs)."""
    row = engine.find_open_task(session, task_id)
    check_may_act(actor, row)
    text = reason.strip() if isinstance(reason, str) else ""
    if not 1 <= len(text) <= MAX_REASON_CHARS:
        raise InvalidInput(
            "a reason of 1-500 characters is required", {"reason": "转办须填写理由（500 字以内）"}
        )
    if to_username == actor.username:
        raise InvalidInput("cannot transfer a task to oneself", {"to": "不能转办给自己"})
    target = session.scalar(
        select(User.username)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(
            User.username == to_username,
            User.active.is_(True),
            RoleAssignment.role == row.role,
            RoleAssignment.org_code == row.org_code,
        )
    )
    if target is None:
        raise InvalidInput(
            f"{to_username!r} is not an active user holding {row.role} for {row.org_code}",
            {"to": "只能转办给本单位同一岗位的在职人员"},
        )
    row.claimed_by = target
    instance = session.get(Instance, row.instance_id)
    _record(engine, session, actor, instance, "transfer", {"to": target, "reason": text}, **_as(row))
    return TaskView.of(row)


def needs_no_input(schema: dict[str, Any] | None) -> bool:
    """True for a form that may be submitted empty and asks for nothing but optional free text (已阅).

    Bulk completion submits ``{}``, so it must never skip a decision: any choice (enum, const, boolean,
    number, list, object) counts as input even when it is optional.
    """
    if not schema:
        return True
    properties = schema.get("properties", {})
    free_text = all(
        isinstance(p, dict) and p.get("type") == "string" and "enum" not in p and "const" not in p
        for p in properties.values()
    )
    return free_text and Draft202012Validator(schema).is_valid({})


def acknowledge_tasks(
    engine: Engine, session: Session, actor: Actor, task_ids: Iterable[uuid.UUID]
) -> list[InstanceView]:
    """批量已阅: complete each task with ``{}``; refuse all of them if any needs input."""
    rows = _actionable(engine, session, actor, task_ids)
    for row in rows:
        version_id = session.scalar(select(Instance.process_version_id).where(Instance.id == row.instance_id))
        schema = engine.store.version(session, version_id).forms.get(row.form or "")
        if not needs_no_input(schema):
            raise InvalidInput(
                f"task {row.id} ({row.name}) needs input and cannot be acknowledged in bulk",
                {str(row.id): f"「{row.name}」需要填写表单，不能批量办理"},
            )
    views = []
    for row in rows:
        views.append(engine.complete_task(session, actor, row.id, {}))
        discard_drafts(session, row.id)
    return views


def claim_tasks(
    engine: Engine, session: Session, actor: Actor, task_ids: Iterable[uuid.UUID]
) -> list[TaskView]:
    """批量签收: claim every task, or none; a task the actor already holds is left as it is."""
    rows = _actionable(engine, session, actor, task_ids)
    return [
        TaskView.of(row) if row.claimed_by == actor.username else engine.claim_task(session, actor, row.id)
        for row in rows
    ]


def _actionable(
    engine: Engine, session: Session, actor: Actor, task_ids: Iterable[uuid.UUID]
) -> list[OpenTask]:
    # Every task is checked before any is touched, so a refusal writes nothing even if the caller
    # went on to commit; the caller's rollback covers failures inside the engine's commands.
    ids = list(dict.fromkeys(task_ids))
    if len(ids) > MAX_BULK:
        raise InvalidInput(f"at most {MAX_BULK} tasks at once", {"task_ids": f"一次最多办理 {MAX_BULK} 项"})
    rows = [engine.find_open_task(session, task_id) for task_id in ids]
    for row in rows:
        check_may_act(actor, row)
    return rows


def _readable_instance(session: Session, actor: Actor, instance_id: uuid.UUID) -> Instance:
    instance = session.get(Instance, instance_id)
    if instance is None or not may_read_instance(session, actor, instance):
        raise NotFound(f"instance {instance_id} not found")
    return instance


def _step_of_case(session: Session, instance_id: uuid.UUID, task_id: uuid.UUID) -> str:
    """The step of a task of this case, open or done; InvalidInput for any other task id."""
    open_step = select(OpenTask.bpmn_id).where(OpenTask.id == task_id, OpenTask.instance_id == instance_id)
    done_step = select(HistoryEvent.bpmn_id).where(
        HistoryEvent.task_id == task_id, HistoryEvent.instance_id == instance_id
    )
    step = session.scalar(open_step.union_all(done_step).limit(1))
    if step is None:
        raise InvalidInput(f"task {task_id} is not in case {instance_id}", {"task_id": "该事项不属于本案件"})
    return step


def _record(
    engine: Engine,
    session: Session,
    actor: Actor,
    instance: Instance,
    command: str,
    payload: Any,
    **where: Any,
) -> None:
    # The event touches the case row, whose revision check turns a concurrent change into a Conflict.
    now = engine.now()
    instance.updated_at = now
    append_event(session, instance, at=now, actor=actor.username, command=command, payload=payload, **where)
    engine.flush_command(session)


def _as(row: OpenTask, *, with_task: bool = True) -> dict[str, Any]:
    """The role and org the actor acted in, for the event (and the task, unless the act is on the case)."""
    task = {"task_id": row.id, "bpmn_id": row.bpmn_id} if with_task else {}
    return {"role": row.role, "org_code": row.org_code, **task}


def _clean_filename(filename: str) -> tuple[str, str]:
    """A safe display name (no path, control or direction characters) and its allowed extension."""
    name = unicodedata.normalize("NFC", filename if isinstance(filename, str) else "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # browsers on Windows may send the full path
    # Category C covers control and format characters, e.g. U+202E, which can disguise "gpj.exe".
    name = "".join("_" if ch in '<>:"|?*' else ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".").strip()
    stem, dot, extension = name.rpartition(".")
    extension = extension.lower()
    if not dot or not stem.strip() or extension not in ALLOWED_TYPES:
        raise InvalidInput(
            f"file type of {filename!r} is not allowed",
            {"file": "只能上传 pdf、doc、docx、xls、xlsx、png、jpg、txt 或 zip 文件"},
        )
    if len(name) > MAX_FILENAME_CHARS:
        name = f"{stem[: MAX_FILENAME_CHARS - len(extension) - 1]}.{name.rpartition('.')[2]}"
    return name, extension


def _check_content(extension: str, content: bytes) -> None:
    if not isinstance(content, bytes) or not content:
        raise InvalidInput("the file is empty", {"file": "文件为空"})
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise InvalidInput(
            f"file larger than {MAX_ATTACHMENT_BYTES} bytes",
            {"file": f"文件不能超过 {MAX_ATTACHMENT_BYTES >> 20} MB"},
        )
    if extension == "txt":
        matches = b"\x00" not in content and _decodes(content)
    else:
        matches = content.startswith(_TYPES[extension][1])
        if matches and extension in _OOXML_PART:
            matches = _zip_has(content, _OOXML_PART[extension])
    if not matches:
        raise InvalidInput(
            f"content is not a .{extension} file", {"file": f"文件内容与扩展名 .{extension} 不符"}
        )


def _decodes(content: bytes) -> bool:
    # Plain text from Chinese offices is UTF-8 or GBK (GB 18030 covers both GBK and GB2312).
    for encoding in ("utf-8", "gb18030"):
        try:
            content.decode(encoding)
            return True
        except UnicodeDecodeError:
            continue
    return False


def _zip_has(content: bytes, prefix: str) -> bool:
    # Reads only the zip's central directory: cheap, and nothing is extracted.
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return any(name.startswith(prefix) for name in archive.namelist())
    except zipfile.BadZipFile:
        return False
