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

from sqlalchemy import Select, String, Text, select, type_coerce
from sqlalchemy.orm import Session

from engine.chain import walk_chain
from engine.checkpoints import verify_checkpoints
from engine.clock import as_utc
from engine.history import hashed_fields, uuid_text
from engine.models import HistoryEvent, Instance
from engine.useradmin import verify_admin_chain

EXPORT_FIELDS = ("seq", "at", "actor", "role", "org_code", "command", "bpmn_id", "task_id", "payload", "hash")


@dataclass
class ChainBreak:
    instance_id: str  # the case's id; "admin" for the administrators' chain; "checkpoint" for the anchors
    seq: int | None
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        if self.instance_id in ("admin", "checkpoint"):
            where = f"{self.instance_id} chain" + (f" event #{self.seq}" if self.seq is not None else "")
            return f"{where}: {self.reason}"
        where = f"event #{self.seq} (id {self.event_id})" if self.seq is not None else "its last events"
        return f"case {self.instance_id}: {where}: {self.reason}"


@dataclass
class VerifyResult:
    events: int = 0
    cases: int = 0
    admin_events: int = 0
    checkpoints: int = 0
    anchor: str | None = None  # the latest checkpoint's hash, to compare with the published one
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
            "admin_events": self.admin_events,
            "checkpoints": self.checkpoints,
            "anchor": self.anchor,
            "first_break": self.first_break.__dict__ if self.first_break else None,
            "breaks": [b.__dict__ for b in self.breaks],
        }


def _check_case(instance: Any, events: list[Any], case_hex: str | None) -> ChainBreak | None:
    """``events`` are rows of `_raw_events`: stored text, hashed without decoding anything."""
    case_id = str(uuid.UUID(case_hex)) if case_hex else "(none)"

    def content(row: Any) -> tuple[str | None, ...]:
        _id, _case, seq, _prev, _hash, at, task_id, *plain = row
        return hashed_fields(case_hex, seq, at, task_id, *plain)

    walk = walk_chain(events, content, seq_at=2, prev_at=3, hash_at=4)
    if walk.broken:
        return ChainBreak(case_id, walk.broken.seq, walk.broken.row[0], walk.broken.reason)
    if instance is None:
        return ChainBreak(case_id, None, None, "events of a case that no longer exists")
    if instance.event_count != len(events) or instance.last_event_hash != walk.head:
        return ChainBreak(
            case_id, None, None, f"the case records {instance.event_count} events, the log holds {len(events)}"
        )
    return None


def _raw_events() -> Select:
    """Event rows as stored (payload text, time and ids as the database returns them, no parsing), in the
    order `_check_case` unpacks them."""
    table = HistoryEvent.__table__.c
    return select(
        table.id,
        type_coerce(table.instance_id, String).label("instance_id"),
        table.seq,
        table.prev_hash,
        table.hash,
        type_coerce(table.at, String).label("at"),
        type_coerce(table.task_id, String).label("task_id"),
        # then the plain columns, in the order `hashed_fields` hashes them
        table.actor,
        table.role,
        table.org_code,
        table.command,
        table.bpmn_id,
        type_coerce(table.payload, Text).label("payload"),
    )


def _events_by_case(session: Session) -> Iterator[tuple[str, list[Any]]]:
    # Core tuples streamed in large batches: verification reads every event once, ORM objects would dominate.
    query = _raw_events().order_by(HistoryEvent.instance_id, HistoryEvent.seq, HistoryEvent.id)
    current: str | None = None
    batch: list[Any] = []
    result = session.connection().execute(query.execution_options(stream_results=True))
    for event in (row for rows in result.tuples().partitions(20_000) for row in rows):
        case = uuid_text(event[1])
        if case != current and batch:
            yield current, batch
            batch = []
        current = case
        batch.append(event)
    if batch:
        yield current, batch


def verify_history(session: Session, progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Check every case's chain; ``progress`` is called with the number of events checked."""
    result = VerifyResult()
    instances = {
        i.id.hex: i for i in session.execute(select(Instance.id, Instance.event_count, Instance.last_event_hash)).all()
    }
    seen = set()
    for case_hex, events in _events_by_case(session):
        seen.add(case_hex)
        result.cases += 1
        result.events += len(events)
        broken = _check_case(instances.get(case_hex), events, case_hex)
        if broken:
            result.breaks.append(broken)
        if progress:
            progress(len(events))
    for case_hex, row in instances.items():
        if case_hex not in seen and row.event_count:
            result.breaks.append(ChainBreak(str(row.id), None, None, "all of its events are missing"))
    admin = verify_admin_chain(session)
    result.admin_events = admin.events
    if not admin.ok:
        result.breaks.append(ChainBreak("admin", admin.break_seq, None, admin.reason or ""))
    result.checkpoints, result.anchor, problems = verify_checkpoints(session)
    result.breaks.extend(ChainBreak(p.scope, p.seq, None, p.reason) for p in problems)
    result.first_break = result.breaks[0] if result.breaks else None
    return result


def export_events(events: list[HistoryEvent], fmt: str) -> str:
    """A case's events as JSON (a list) or CSV (payload as a JSON column)."""
    rows = [_export_row(event) for event in events]
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


def _export_row(event: HistoryEvent) -> dict[str, Any]:
    return {
        "instance_id": str(event.instance_id) if event.instance_id else None,
        "seq": event.seq,
        "at": as_utc(event.at).isoformat(),
        "actor": event.actor,
        "role": event.role,
        "org_code": event.org_code,
        "command": event.command,
        "task_id": str(event.task_id) if event.task_id else None,
        "bpmn_id": event.bpmn_id,
        "payload": event.payload,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }


def verify_case(session: Session, instance_id: uuid.UUID) -> ChainBreak | None:
    """Check one case's chain (for the auditor's case page); None when intact."""
    instance = session.get(Instance, instance_id)
    query = _raw_events().where(HistoryEvent.instance_id == instance_id).order_by(HistoryEvent.seq, HistoryEvent.id)
    return _check_case(instance, list(session.execute(query).tuples()), instance_id.hex)
