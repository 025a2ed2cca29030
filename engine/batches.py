"""申报批次: the province opens a call, recommendations are filed under it and counted against its quota.

The seed aims at 10–15 zones (§三), so a batch's quota lies in that range. A zone-creation case can
only be started while a batch is open (between its opening day and its deadline).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.errors import Conflict, InvalidInput, PermissionDenied
from engine.models import Batch, Instance

QUOTA_RANGE = (10, 15)
BATCHED_PROCESSES = frozenset({"zone_creation"})


@dataclass(frozen=True)
class BatchView:
    id: int
    year: int
    name: str
    quota: int
    opens_on: date
    deadline: date
    recommended: int
    approved: int

    def is_open(self, today: date) -> bool:
        return self.opens_on <= today <= self.deadline


def open_batch(
    session: Session, actor: Actor, year: int, quota: int, deadline: date, now: datetime, name: str | None = None
) -> Batch:
    """Open a batch (only 省科协 may); refuses a quota outside 10–15 or a deadline in the past."""
    if not actor.has_role("province_office"):
        raise PermissionDenied(f"{actor.username} may not open a batch")
    errors = {}
    if not QUOTA_RANGE[0] <= quota <= QUOTA_RANGE[1]:
        errors["quota"] = f"名额应在 {QUOTA_RANGE[0]}–{QUOTA_RANGE[1]} 个之间"
    if deadline < now.date():
        errors["deadline"] = "截止日期不能早于今天"
    if errors:
        raise InvalidInput("invalid batch", errors)
    name = name or f"{year}年度创新驱动助力示范区（县）申报"
    if session.scalar(select(Batch.id).where(Batch.year == year, Batch.name == name)):
        raise Conflict(f"batch {name!r} already exists")
    batch = Batch(
        year=year,
        name=name,
        quota=quota,
        opens_on=now.date(),
        deadline=deadline,
        opened_by=actor.username,
        opened_at=now,
    )
    session.add(batch)
    session.flush()
    return batch


# Every start of a batched process runs it: built once, so its SQL and cache key are too.
_OPEN_ON = (
    select(Batch)
    .where(Batch.opens_on <= bindparam("today"), Batch.deadline >= bindparam("today"))
    .order_by(Batch.deadline)
    .limit(1)
)


def current_batch(session: Session, today: date) -> Batch | None:
    return session.scalar(_OPEN_ON, {"today": today})


def batch_for_new_case(session: Session, process_id: str, today: date) -> Batch | None:
    """The open batch a new case belongs to; InvalidInput if the process needs one and none is open."""
    if process_id not in BATCHED_PROCESSES:
        return None
    batch = current_batch(session, today)
    if batch is None:
        raise InvalidInput("no batch is open for recommendations", {"batch": "当前没有开放的申报批次"})
    return batch


def list_batches(session: Session) -> list[BatchView]:
    counts = dict(
        session.execute(
            select(Instance.batch_id, func.count()).where(Instance.batch_id.is_not(None)).group_by(Instance.batch_id)
        )
        .tuples()
        .all()
    )
    approved = dict(
        session.execute(
            select(Instance.batch_id, func.count())
            .where(Instance.batch_id.is_not(None), Instance.outcome == "已批复")
            .group_by(Instance.batch_id)
        )
        .tuples()
        .all()
    )
    return [
        BatchView(b.id, b.year, b.name, b.quota, b.opens_on, b.deadline, counts.get(b.id, 0), approved.get(b.id, 0))
        for b in session.scalars(select(Batch).order_by(Batch.year.desc(), Batch.id.desc()))
    ]
