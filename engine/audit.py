"""Auditors' checks on the history: verify every hash chain, export a case's events.

Each case's events form a chain (seq 1, 2, …; each hash covers the content and the previous hash)
and the case row keeps the newest hash and the count, so an edited, deleted, inserted or reordered
event — or a truncated tail — breaks the chain at a place we can name.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.history import event_content, event_hash
from engine.models import HistoryEvent, Instance

EXPORT_FIELDS = ("seq", "at", "actor", "role", "org_code", "command", "bpmn_id", "task_id", "payload", "hash")


@dataclass
class ChainBreak:
    instance_id: str
    seq: int | None
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event #{self.seq} (id {self.event_id})" if self.seq is not None else "its last events"
        return f"case {self.instance_id}: {where}: {self.reason}"


@dataclass
class VerifyResult:
    events: int = 0
    cases: int = 0
    first_break: ChainBreak | None = None
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "cases": self.cases,
            "first_break": self.first_break.__dict__ if self.first_break else None,
            "breaks": [b.__dict__ for b in self.breaks],
        }


def _check_case(instance: Any, events: list[HistoryEvent], case_id: str) -> ChainBreak | None:
    previous = None
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            return ChainBreak(case_id, event.seq, event.id, f"sequence number {event.seq}, expected {expected_seq}")
        if event.prev_hash != previous:
            return ChainBreak(case_id, event.seq, event.id, "does not link to the previous event")
        if event.hash != event_hash(previous, event_content(event)):
            return ChainBreak(case_id, event.seq, event.id, "content does not match its hash (altered)")
        previous = event.hash
    if instance is None:
        return ChainBreak(case_id, None, None, "events of a case that no longer exists")
    if instance.event_count != len(events) or instance.last_event_hash != previous:
        return ChainBreak(
            case_id, None, None, f"the case records {instance.event_count} events, the log holds {len(events)}"
        )
    return None


def _events_by_case(session: Session) -> Iterator[tuple[uuid.UUID, list[HistoryEvent]]]:
    # Plain rows, not ORM objects: verification reads every event once and ORM bookkeeping would dominate.
    query = select(*HistoryEvent.__table__.c).order_by(HistoryEvent.instance_id, HistoryEvent.seq, HistoryEvent.id)
    current: uuid.UUID | None = None
    batch: list[HistoryEvent] = []
    for event in session.execute(query.execution_options(yield_per=5000)):
        if event.instance_id != current and batch:
            yield current, batch
            batch = []
        current = event.instance_id
        batch.append(event)
    if batch:
        yield current, batch


def verify_history(session: Session, progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Check every case's chain; ``progress`` is called with the number of events checked."""
    result = VerifyResult()
    instances = {
        i.id: i for i in session.execute(select(Instance.id, Instance.event_count, Instance.last_event_hash)).all()
    }
    seen = set()
    for case_id, events in _events_by_case(session):
        seen.add(case_id)
        result.cases += 1
        result.events += len(events)
        broken = _check_case(instances.get(case_id), events, str(case_id))
        if broken:
            result.breaks.append(broken)
        if progress:
            progress(len(events))
    for case_id, row in instances.items():
        if case_id not in seen and row.event_count:
            result.breaks.append(ChainBreak(str(case_id), None, None, "all of its events are missing"))
    result.first_break = result.breaks[0] if result.breaks else None
    return result


def export_events(events: list[HistoryEvent], fmt: str) -> str:
    """A case's events as JSON (a list) or CSV (payload as a JSON column)."""
    rows = [{**event_content(event), "hash": event.hash, "prev_hash": event.prev_hash} for event in events]
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}: use json or csv")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "payload": json.dumps(row["payload"], ensure_ascii=False)})
    return out.getvalue()


def verify_case(session: Session, instance_id: uuid.UUID) -> ChainBreak | None:
    """Check one case's chain (for the auditor's case page); None when intact."""
    instance = session.get(Instance, instance_id)
    events = list(
        session.scalars(
            select(HistoryEvent)
            .where(HistoryEvent.instance_id == instance_id)
            .order_by(HistoryEvent.seq, HistoryEvent.id)
        )
    )
    return _check_case(instance, events, str(instance_id))
