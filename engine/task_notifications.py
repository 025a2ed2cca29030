"""新任务 and 退回 notifications for the user tasks a command opens.

Called from the open-task sync of every command (start, complete, return, timers), in the command's
transaction (the statements run at the command's flush): a rolled-back command notifies nobody. It is
set-based, because it runs inside every command: per opened task one ``INSERT … SELECT`` writes a
notification for every active user who may claim the task (the task's role in its org unit, as the inbox
offers it), and per command one ``INSERT … SELECT`` queues the e-mail of those who chose e-mail for the
kind (skipped when nobody was notified). Both statements are built once; no user row is loaded into
Python. E-mail goes out after the commit (``mailer.deliver_outbox``).

A command that returned the case (退回: a task completed with its ``returnField`` set to its
``returnValue``, by the 退回 button or by the form's own choice) sends 退回 with the reason instead of 新任务.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Connection, Insert, and_, bindparam, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from engine.case_rows import CaseRow
from engine.clock import LOCAL_TZ
from engine.flush_queue import run_at_flush
from engine.mailer import MAIL_FOOTER
from engine.models import Instance, Notification, NotificationPreference, OutboxMail, RoleAssignment, User
from engine.workflow import task_properties

NEW_TASK = "新任务"
RETURNED = "退回"


def notify_opened_tasks(
    session: Session,
    instance: Instance | CaseRow,
    workflow: Any,
    *,
    opened: list[Any],
    closed: Iterable[uuid.UUID],
    now: datetime,
    actor: str,
) -> None:
    """Notify the users who may claim each of the ``opened`` open-task rows (the tasks this command opened);
    ``closed`` are the ids of the tasks it closed.

    The user whose command opened the task is not told: they see their next step in the answer to it.
    """
    if not opened:
        return
    reason = _return_reason(workflow, closed)
    kind = NEW_TASK if reason is None else RETURNED
    common = {"note_kind": kind, "case_id": instance.id, "at": now, "actor": actor}
    notes = []
    for task in opened:
        claimants = {"task_id": task.id, "task_role": task.role, "task_org": task.org_code}
        notes.append({**common, **claimants, "note_message": _message(kind, task, reason)})

    def write(connection: Connection) -> None:
        # Often nobody but the acting user holds the next step's role: then there is no mail to queue either.
        if sum(connection.execute(NOTIFY_CLAIMANTS, note).rowcount for note in notes):
            connection.execute(QUEUE_MAILS, common)

    run_at_flush(session, write)


def _return_reason(workflow: Any, closed: Iterable[uuid.UUID]) -> str | None:
    """The reason if this command returned the case (a task closed now with its return value), else None."""
    for task_id in closed:
        task = workflow.get_task_from_id(task_id)
        if task is None or task.state != TaskState.COMPLETED:
            continue
        props = task_properties(task)
        field = props.get("returnField")
        if field and task.data.get(field) == props.get("returnValue"):
            return _reason_given(task)
    return None


def _reason_given(task: Any) -> str:
    """The reason this completion gave (the 退回 button's); case data keeps an earlier return's reason, which
    is not this one's."""
    reason = task.data.get("return_reason")
    entered_with = task.parent.data.get("return_reason") if task.parent is not None else None
    return str(reason).strip() if reason and reason != entered_with else ""


def _message(kind: str, task: Any, reason: str | None) -> str:
    if kind == RETURNED:
        because = f"退回理由：{reason}" if reason else "请查看案卷意见"
        return f"案卷已退回：{task.case_title} — {task.name}。{because}"
    due = f"（办理期限 {task.due_at.astimezone(LOCAL_TZ):%Y-%m-%d}）" if task.due_at else ""
    return f"新任务：{task.case_title} — {task.name}{due}"


def _statements() -> tuple[Insert, Insert]:
    """The two statements, built once with bound parameters (SQLAlchemy then reuses their compiled form)."""
    claimants = (
        select(
            User.username,
            bindparam("note_kind", type_=Notification.kind.type),
            bindparam("note_message", type_=Notification.message.type),
            bindparam("case_id", type_=Notification.instance_id.type),
            bindparam("task_id", type_=Notification.task_id.type),
            bindparam("at", type_=Notification.created_at.type),
        )
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == bindparam("task_role"), RoleAssignment.org_code == bindparam("task_org"))
        .where(User.active.is_(True), User.username != bindparam("actor"))
        .distinct()  # a user holding the role twice (e.g. two assignments) is told once
    )
    columns = ["username", "kind", "message", "instance_id", "task_id", "created_at"]
    notify = insert(Notification.__table__).from_select(columns, claimants)
    # An outbox mail for each notification of this command whose user chose e-mail for its kind and has an
    # address: the subject and body of ``mailer.queue_mail_for``; never two mails for one notification.
    wanted = (
        select(
            Notification.id,
            User.email,
            literal("【") + Notification.kind + literal("】") + func.substr(Notification.message, 1, 80),
            Notification.message + literal(f"\n\n{MAIL_FOOTER}\n", type_=OutboxMail.body.type),
            literal("pending"),
            literal(0),
            Notification.created_at,
        )
        .join(User, User.username == Notification.username)
        .join(
            NotificationPreference,
            and_(
                NotificationPreference.username == Notification.username,
                NotificationPreference.kind == Notification.kind,
            ),
        )
        .where(
            Notification.instance_id == bindparam("case_id", type_=Notification.instance_id.type),
            Notification.created_at == bindparam("at", type_=Notification.created_at.type),
            Notification.kind == bindparam("note_kind", type_=Notification.kind.type),
            NotificationPreference.email.is_(True),
            User.active.is_(True),
            User.email.is_not(None),
            User.email != "",
            ~exists().where(OutboxMail.notification_id == Notification.id),
        )
    )
    columns = ["notification_id", "recipient", "subject", "body", "status", "attempts", "next_attempt_at"]
    return notify, insert(OutboxMail.__table__).from_select(columns, wanted)


NOTIFY_CLAIMANTS, QUEUE_MAILS = _statements()
