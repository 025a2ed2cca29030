"""The tables, as typed SQLAlchemy 2.0 mappings.

Instance state is stored without its spec (the spec is stored once per ``ProcessVersion``), and the
open-task table is rewritten in the same transaction as the state, so an inbox query never has to
deserialize a workflow.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base

UtcDateTime = DateTime(timezone=True)


def canonical_json(value: Any) -> str:
    """One text per value (sorted keys, no spaces), so equal payloads hash equally."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


class CanonicalJSON(TypeDecorator):
    """JSON kept as its canonical text: the audit check hashes the stored text without decoding it,
    while the ORM still reads and writes plain Python values."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else canonical_json(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


class OrgUnit(Base):
    """Province, cities, counties/districts, high-tech parks and provincial societies."""

    __tablename__ = "org_unit"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # province | city | district | county | park | society
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("org_unit.code"), index=True)
    field: Mapped[str | None] = mapped_column(String(100))


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    email: Mapped[str | None] = mapped_column(String(200))

    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )


class RoleAssignment(Base):
    """A user holds a role for one org unit (市科协 of 沈阳市, 县委 of 新民市, …)."""

    __tablename__ = "role_assignment"
    # Who holds a task's role in its org unit is looked up by every command that opens a task.
    __table_args__ = (
        UniqueConstraint("user_id", "role", "org_code"),
        Index("ix_role_assignment_role_org", "role", "org_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    org_code: Mapped[str] = mapped_column(ForeignKey("org_unit.code"))

    user: Mapped[User] = relationship(back_populates="roles")


class ProcessVersion(Base):
    """One deployed version of a process: its sources, forms and serialized spec, stored once."""

    __tablename__ = "process_version"
    __table_args__ = (
        UniqueConstraint("process_id", "version"),
        UniqueConstraint("process_id", "content_hash", name="uq_process_version_content"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    sources: Mapped[dict[str, str]] = mapped_column(JSON)  # file name -> BPMN/DMN text
    forms: Mapped[dict[str, Any]] = mapped_column(JSON)  # form file name -> JSON Schema
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"spec": ..., "subprocess_specs": ...}
    deployed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deployed_by: Mapped[str] = mapped_column(String(64))


class Instance(Base):
    """One case. ``revision`` guards every write: a save succeeds only at the revision it loaded."""

    __tablename__ = "instance"
    # The timer worker's pass and /healthz look for running cases whose timer is due, earliest first.
    __table_args__ = (Index("ix_instance_status_next_timer_at", "status", "next_timer_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(64), index=True)
    business_key: Mapped[str] = mapped_column(String(100), index=True)
    city_code: Mapped[str | None] = mapped_column(String(16), index=True)
    county_code: Mapped[str | None] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # running | completed | error | terminated
    outcome: Mapped[str | None] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(Integer)
    next_timer_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(Text)  # serialized workflow without its spec
    serializer_version: Mapped[str] = mapped_column(String(16))
    started_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_event_hash: Mapped[str | None] = mapped_column(String(64))
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("instance.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batch.id"), index=True)
    society_code: Mapped[str | None] = mapped_column(String(16), index=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the final data, kept for reports

    __mapper_args__ = {"version_id_col": revision}


class OpenTask(Base):
    """A READY user task, offered to one role in one org unit (optionally claimed by one user)."""

    __tablename__ = "open_task"
    __table_args__ = (Index("ix_open_task_role_org", "role", "org_code"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instance.id", ondelete="CASCADE"), index=True)
    process_id: Mapped[str] = mapped_column(String(64))
    bpmn_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    org_code: Mapped[str] = mapped_column(String(16))
    form: Mapped[str | None] = mapped_column(String(200))
    returnable: Mapped[bool] = mapped_column(default=False)
    urgency: Mapped[str] = mapped_column(String(8), default="平件")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    case_title: Mapped[str] = mapped_column(String(200))

    instance: Mapped[Instance] = relationship(lazy="raise")


class HistoryEvent(Base):
    """Append-only log; each event's hash covers its content and the previous event of its case."""

    __tablename__ = "history_event"
    __table_args__ = (
        UniqueConstraint("instance_id", "seq"),  # also the index of a case's events
        Index("ix_history_event_actor", "actor", "command", "at"),  # 已办 and 办结 look events up by actor
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("instance.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))
    org_code: Mapped[str | None] = mapped_column(String(16))
    command: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    bpmn_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    instance: Mapped[Instance | None] = relationship(lazy="raise")


class AdminEvent(Base):
    """The administrators' chain: every change to users and roles, hashed like a case's history.

    One chain for the whole system (seq is unique), so two concurrent changes cannot both extend it.
    """

    __tablename__ = "admin_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(String(32))  # user_add | user_disable | role_grant | …
    target: Mapped[str] = mapped_column(String(64), index=True)  # the username changed
    payload: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A global anchor: every case's head hash and event count, and the admin chain's head, at one time.

    Checkpoints are chained too; publishing a checkpoint's hash outside the system makes deleting a
    whole case with its events, or truncating the log, detectable.
    """

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    case_count: Mapped[int] = mapped_column(Integer)
    event_count: Mapped[int] = mapped_column(Integer)
    admin_event_count: Mapped[int] = mapped_column(Integer)
    admin_head: Mapped[str | None] = mapped_column(String(64))
    cases: Mapped[list[list[Any]]] = mapped_column(CanonicalJSON)  # sorted [case id, head hash, event count]
    cases_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class DocumentCounter(Base):
    """Gap-free document numbers per issuing body and year (辽科协发〔2026〕N号)."""

    __tablename__ = "document_counter"

    prefix: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class Comment(Base):
    """意见: free text on a case, outside the workflow data (it never changes the path)."""

    __tablename__ = "comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instance.id"), index=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    author: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    body: Mapped[str] = mapped_column(Text)


class Attachment(Base):
    """A file on a case, stored in the database with its SHA-256 (served only to case readers)."""

    __tablename__ = "attachment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instance.id"), index=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Draft(Base):
    """暂存: a user's unfinished form data for one task."""

    __tablename__ = "draft"
    __table_args__ = (UniqueConstraint("task_id", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    username: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked: Mapped[bool] = mapped_column(default=False)


class LoginFailure(Base):
    """A failed sign-in, kept for the throttle's window so every server process counts the same."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_username_failed_at", "username", "failed_at"),
        Index("ix_login_failure_address_failed_at", "address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Notification(Base):
    """An in-app message to one user: a new task, 催办, 督办, a decision on a case."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_unread", "username", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # 催办 | 督办 | 通知 | 决定
    message: Mapped[str] = mapped_column(Text)
    instance_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("instance.id"), index=True)
    # The task a 新任务 or 退回 is about; no foreign key: the open-task row goes when the task is done.
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Zone(Base):
    """The programme overview: one row per candidate county, kept current by the processes."""

    __tablename__ = "zone"

    county_code: Mapped[str] = mapped_column(ForeignKey("org_unit.code"), primary_key=True)
    city_code: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16))
    approval_no: Mapped[str | None] = mapped_column(String(64))
    term_start: Mapped[str | None] = mapped_column(String(10))
    term_end: Mapped[str | None] = mapped_column(String(10))
    grades: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # term year -> grade
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NotificationPreference(Base):
    """Per user and notification kind: in-app only, or in-app and e-mail."""

    __tablename__ = "notification_preference"
    __table_args__ = (UniqueConstraint("username", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    email: Mapped[bool] = mapped_column(default=False)


class OutboxMail(Base):
    """An e-mail to send after its transaction committed; retried until sent, never sent twice."""

    __tablename__ = "outbox_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id"), unique=True)
    recipient: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending | sending | sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class Document(Base):
    """An official document (公文) generated from a case: numbered, stored with its SHA-256."""

    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("issuer", "document_no"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instance.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # 联合请示 | 批复 | 考察评估意见表 | 考核结果通知 | 撤销通知
    issuer: Mapped[str] = mapped_column(String(64))
    document_no: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    # Both NULL from the issuing command until the PDF is rendered, after that command commits
    # (engine/document_rendering.py); the index finds pending documents and a PDF by its hash.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    source: Mapped[dict[str, Any]] = mapped_column(JSON)  # the case data it was generated from
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Batch(Base):
    """申报批次: 省科协 opens a call for recommendations with a quota (10–15) and a deadline."""

    __tablename__ = "batch"
    __table_args__ = (UniqueConstraint("year", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    quota: Mapped[int] = mapped_column(Integer)
    opens_on: Mapped[date] = mapped_column(Date)
    deadline: Mapped[date] = mapped_column(Date)
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
