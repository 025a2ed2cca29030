"""What the engine shows of tasks and cases: plain dataclasses, JSON-ready, no workflow objects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from engine.clock import as_utc
from engine.models import OpenTask
from engine.roles import ROLES

# The open-task columns a TaskView is made of, in its field order (without the role's title).
TASK_VIEW_COLUMNS = (
    "id",
    "instance_id",
    "process_id",
    "bpmn_id",
    "name",
    "role",
    "org_code",
    "form",
    "returnable",
    "urgency",
    "created_at",
    "due_at",
    "claimed_by",
    "case_title",
)


@dataclass(frozen=True)
class TaskView:
    id: uuid.UUID
    instance_id: uuid.UUID
    process: str
    step: str
    name: str
    role: str
    role_title: str
    org_code: str
    form: str | None
    returnable: bool
    urgency: str
    created_at: datetime
    due_at: datetime | None
    claimed_by: str | None
    case_title: str

    @classmethod
    def of(cls, row: OpenTask) -> TaskView:
        return cls(
            row.id,
            row.instance_id,
            row.process_id,
            row.bpmn_id,
            row.name,
            row.role,
            ROLES[row.role].title,
            row.org_code,
            row.form,
            row.returnable,
            row.urgency,
            row.created_at,
            row.due_at,
            row.claimed_by,
            row.case_title,
        )

    @classmethod
    def from_columns(cls, columns: Any) -> TaskView:
        """From a row of ``TASK_VIEW_COLUMNS``, by position: an inbox makes many, and looking up each
        column of a row by name cost more than the rest of the listing."""
        task_id, instance_id, process, step, name, role, org_code, *rest = columns
        return cls(task_id, instance_id, process, step, name, role, ROLES[role].title, org_code, *rest)

    def is_overdue(self, now: datetime) -> bool:
        return self.due_at is not None and as_utc(self.due_at) < now

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "instance": str(self.instance_id),
            "process": self.process,
            "step": self.step,
            "name": self.name,
            "role": self.role,
            "role_title": self.role_title,
            "org_code": self.org_code,
            "form": self.form,
            "returnable": self.returnable,
            "urgency": self.urgency,
            "created_at": iso_or_none(self.created_at),
            "due_at": iso_or_none(self.due_at),
            "claimed_by": self.claimed_by,
            "case_title": self.case_title,
        }


@dataclass
class TaskDetail:
    task: TaskView
    schema: dict[str, Any]
    instructions: str
    data: dict[str, Any]


@dataclass
class InstanceView:
    id: uuid.UUID
    process: str
    version: int
    business_key: str
    status: str
    outcome: str | None
    county_code: str | None
    city_code: str | None
    revision: int
    created_at: datetime
    completed_at: datetime | None
    next_timer_at: datetime | None
    open_tasks: list[TaskView] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "process": self.process,
            "version": self.version,
            "business_key": self.business_key,
            "status": self.status,
            "outcome": self.outcome,
            "county_code": self.county_code,
            "city_code": self.city_code,
            "revision": self.revision,
            "created_at": iso_or_none(self.created_at),
            "completed_at": iso_or_none(self.completed_at),
            "next_timer_at": iso_or_none(self.next_timer_at),
            "open_tasks": [t.to_dict() for t in self.open_tasks],
            "data": self.data,  # made JSON-able when the view was built (Engine._view)
        }


def iso_or_none(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if not callable(v)}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
